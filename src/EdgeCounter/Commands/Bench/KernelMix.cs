using System.Text.Json;
using Microsoft.ML.OnnxRuntime;

namespace EdgeCounter.Commands.Bench;

/// <summary>Which kernels ONNX Runtime runs for a graph after its optimisations (from its own profiler): an INT8 graph
/// must run integer convolutions (QLinearConv), not dequantise its weights and run float ones.</summary>
public static class KernelMix
{
    /// <summary>Node executions by operator over one run of a width x height input, CPU.</summary>
    public static IReadOnlyDictionary<string, int> Of(string modelPath, int width, int height, int threads)
    {
        var prefix = Path.Combine(Path.GetTempPath(), $"edgecounter-kernels-{Environment.ProcessId}-{Guid.NewGuid():N}");
        string? profile = null;
        try
        {
            using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = threads };
            options.EnableProfiling = true;
            options.ProfileOutputPathPrefix = prefix;
            using var session = new InferenceSession(modelPath, options);
            var input = session.InputMetadata.Keys.Single();
            using var value = OrtValue.CreateTensorValueFromMemory(new float[3 * width * height], [1, 3, height, width]);
            using var run = new RunOptions();
            using (session.Run(run, [input], [value], session.OutputMetadata.Keys.ToArray())) { }
            profile = session.EndProfiling();
            using var doc = JsonDocument.Parse(File.ReadAllText(profile));
            var counts = new SortedDictionary<string, int>(StringComparer.Ordinal);
            foreach (var e in doc.RootElement.EnumerateArray())
            {
                if (e.GetProperty("cat").GetString() != "Node" || !e.GetProperty("name").GetString()!.EndsWith("_kernel_time", StringComparison.Ordinal)) continue;
                if (!e.TryGetProperty("args", out var a) || !a.TryGetProperty("op_name", out var op)) continue;
                var name = op.GetString()!;
                counts[name] = counts.GetValueOrDefault(name) + 1;
            }
            return counts;
        }
        finally
        {
            if (profile is not null && File.Exists(profile)) File.Delete(profile);
        }
    }

    /// <summary>"QLinearConv 40, Conv 5, ..." most frequent first.</summary>
    public static string Describe(IReadOnlyDictionary<string, int> counts) =>
        string.Join(", ", counts.OrderByDescending(p => p.Value).ThenBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key} {p.Value}"));
}
