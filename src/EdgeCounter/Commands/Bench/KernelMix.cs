using System.Text.Json;
using EdgeCounter.Detection;
using Microsoft.ML.OnnxRuntime;

namespace EdgeCounter.Commands.Bench;

/// <summary>Which kernels ONNX Runtime runs for a graph after its optimisations (from its own profiler): an INT8 graph
/// must run integer convolutions (QLinearConv), not dequantise its weights and run float ones.</summary>
public static class KernelMix
{
    /// <summary>Per operator: its nodes and their time per run (milliseconds, mean of runs 2-4 of a width x height
    /// input, or the graph's own size when it is fixed; the first run is a warm-up), CPU.</summary>
    public static IReadOnlyDictionary<string, (int Nodes, double Ms)> Of(string modelPath, int width, int height, int threads)
    {
        var prefix = Path.Combine(Path.GetTempPath(), $"edgecounter-kernels-{Environment.ProcessId}-{Guid.NewGuid():N}");
        string? profile = null;
        try
        {
            using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = threads };
            // The prefix first: ONNX Runtime takes it when profiling is switched on (else the profile lands in the
            // working directory, and stays there when a run fails).
            options.ProfileOutputPathPrefix = prefix;
            options.EnableProfiling = true;
            using var session = new InferenceSession(modelPath, options);
            var (input, metadata) = session.InputMetadata.Single();
            // [1, 3, H, W], or [3, H, W] for a graph without a batch dimension (torchvision's Faster R-CNN export);
            // a graph of a fixed size (a YOLO export) runs at its own size.
            var layout = new ModelInput(ModelInput.FixedSizeOf(metadata), BatchDimension: metadata.Dimensions.Length != 3);
            (width, height) = layout.FixedSize ?? (width, height);
            using var value = OrtValue.CreateTensorValueFromMemory(new float[3 * width * height], layout.ShapeFor(width, height));
            using var run = new RunOptions();
            const int runs = 4;
            for (var i = 0; i < runs; i++)
                using (session.Run(run, [input], [value], session.OutputMetadata.Keys.ToArray())) { }
            profile = session.EndProfiling();
            using var doc = JsonDocument.Parse(File.ReadAllText(profile));
            var kernels = new List<(string Node, string Op, long Us)>();
            foreach (var e in doc.RootElement.EnumerateArray())
            {
                if (e.GetProperty("cat").GetString() != "Node" || !e.GetProperty("name").GetString()!.EndsWith("_kernel_time", StringComparison.Ordinal)) continue;
                if (!e.TryGetProperty("args", out var a) || !a.TryGetProperty("op_name", out var op)) continue;
                kernels.Add((e.GetProperty("name").GetString()!, op.GetString()!, e.GetProperty("dur").GetInt64()));
            }
            // Each run executes every node once, in order: the first run's share is the first quarter.
            var perRun = kernels.Count / runs;
            return kernels.Skip(perRun).GroupBy(k => k.Op, StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => (g.Count() / (runs - 1), g.Sum(k => k.Us) / 1000.0 / (runs - 1)), StringComparer.Ordinal);
        }
        finally
        {
            if (profile is not null && File.Exists(profile)) File.Delete(profile);
        }
    }

    /// <summary>"QLinearConv 39 (12.1 ms), Conv 2 (3.0 ms), ..." the slowest first.</summary>
    public static string Describe(IReadOnlyDictionary<string, (int Nodes, double Ms)> ops) =>
        string.Join(", ", ops.OrderByDescending(p => p.Value.Ms).ThenBy(p => p.Key, StringComparer.Ordinal)
            .Select(p => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{p.Key} {p.Value.Nodes} ({p.Value.Ms:0.0} ms)")));
}
