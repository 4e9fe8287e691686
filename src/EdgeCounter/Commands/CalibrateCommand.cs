using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeCounter.Acquisition;
using EdgeCounter.Detection;
using Microsoft.ML.OnnxRuntime;
using OpenCvSharp;

namespace EdgeCounter.Commands;

/// <summary>
/// <c>calibrate</c>: the activation ranges of a graph on real fields, for INT8 quantisation (models/training/quantize.py).
/// There is no ONNX Runtime for Python here, so the recipe's probe graph (every tensor to quantise made an output) runs
/// through the service's own ONNX Runtime, with the service's own pre-processing.
/// </summary>
public static class CalibrateCommand
{
    public const string Usage = """
        calibrate: activation ranges of a probe graph on images, for INT8 quantisation (models/training/quantize.py)
          EdgeCounter calibrate PROBE.onnx --images DIR --out FILE [options]
            --images DIR         the images (jpg, png, ...; not recursive)
            --ids FILE           only the images whose name (without extension) is a line of FILE (a training split)
            --input-scale F      resize them by F first, as the service would (default 1)
            --max N              at most N images, spread evenly over the folder (default 50)
            --out FILE           JSON: per output tensor the mean over images of its minimum and maximum (min,
                                 max) and the extremes over all images (lowest, highest)
            --threads N          ONNX Runtime intra-op threads (default: number of cores)
        """;

    public static Task<int> RunAsync(CommandLine args, CancellationToken cancellationToken)
    {
        var images = args.String("images") ?? throw new CommandLineException("--images DIR is needed");
        var output = args.String("out") ?? throw new CommandLineException("--out FILE is needed");
        var scale = args.Double("input-scale", 1.0);
        var max = args.Int("max", 50);
        var threads = args.Int("threads", 0);
        var idsFile = args.String("ids");
        args.ThrowOnUnknown();
        if (args.Positional.Count != 1) throw new CommandLineException("give one probe graph");
        if (!Directory.Exists(images)) throw new CommandLineException($"not found: {images}");
        var files = FolderFrameSource.ImageFiles(images);
        if (idsFile is not null)
        {
            // Calibrating on a test image would leak it into the quantised model: a split names what may be used.
            var ids = File.ReadAllLines(idsFile).Select(l => l.Trim()).Where(l => l.Length > 0).ToHashSet(StringComparer.Ordinal);
            files = files.Where(f => ids.Contains(Path.GetFileNameWithoutExtension(f))).ToArray();
        }
        if (files.Length == 0) throw new CommandLineException($"no images in {images}");
        var step = Math.Max(1, files.Length / Math.Max(1, max));
        files = files.Where((_, i) => i % step == 0).Take(max).ToArray();

        using var options = new SessionOptions { IntraOpNumThreads = threads > 0 ? threads : Environment.ProcessorCount };
        using var session = new InferenceSession(args.Positional[0], options);
        var inputName = session.InputMetadata.Keys.Single();
        var names = session.OutputMetadata.Keys.ToArray();
        var sumMin = new double[names.Length];
        var sumMax = new double[names.Length];
        var lowest = Enumerable.Repeat(double.PositiveInfinity, names.Length).ToArray();
        var highest = Enumerable.Repeat(double.NegativeInfinity, names.Length).ToArray();
        using var resizer = new FrameResizer();
        using var run = new RunOptions();
        var tensor = Array.Empty<float>();
        foreach (var file in files)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var image = Cv2.ImRead(file, ImreadModes.Color);
            if (image.Empty()) throw new CommandLineException($"cannot read {file}");
            // The service's own pre-processing (the default graph: RGB 0..1, bottom/right to a multiple of 32).
            var g = InputGeometry.For(image.Cols, image.Rows, scale, 32);
            var length = 3 * g.PaddedWidth * g.PaddedHeight;
            if (tensor.Length < length) tensor = new float[length];
            InputTensorWriter.WriteFrame(image, g, tensor, PixelConvention.RgbUnit, resizer);
            using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, tensor.AsMemory(0, length), [1, 3, g.PaddedHeight, g.PaddedWidth]);
            using var results = session.Run(run, [inputName], [input], names);
            for (var k = 0; k < names.Length; k++)
            {
                var values = results[k].GetTensorDataAsSpan<float>();
                float lo = float.PositiveInfinity, hi = float.NegativeInfinity;
                foreach (var v in values) { if (v < lo) lo = v; if (v > hi) hi = v; }
                sumMin[k] += lo;
                sumMax[k] += hi;
                lowest[k] = Math.Min(lowest[k], lo);
                highest[k] = Math.Max(highest[k], hi);
            }
        }
        var ranges = new JsonObject();
        for (var k = 0; k < names.Length; k++)
            ranges[names[k]] = new JsonObject
            {
                ["min"] = sumMin[k] / files.Length, ["max"] = sumMax[k] / files.Length, ["lowest"] = lowest[k], ["highest"] = highest[k],
            };
        var json = new JsonObject { ["images"] = files.Length, ["folder"] = Path.GetFullPath(images), ["inputScale"] = scale, ["ranges"] = ranges };
        File.WriteAllText(output, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        Console.WriteLine($"{names.Length} tensors over {files.Length} images of {images} -> {output}");
        return Task.FromResult(0);
    }
}
