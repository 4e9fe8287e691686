using System.Globalization;
using EdgeCounter.Acquisition;
using EdgeCounter.Counting;
using EdgeCounter.Detection;
using EdgeCounter.Publishing;
using Microsoft.Extensions.Logging;
using OpenCvSharp;

namespace EdgeCounter.Commands;

/// <summary>
/// <c>count</c>: per-image cell counts of image files or folders (the paper's per-image statistics): one line per image
/// with every label, the model's groups and the white-cell differential, then the total over all images.
/// </summary>
public static class CountCommand
{
    public const string Usage = """
        count: count cells in image files or folders
          EdgeCounter count PATH... [options]
            PATH                 image files (jpg, jpeg, png, bmp, tif, tiff) or folders of them (not recursive)
            --model PATH         ONNX model (default: models/cellnet.onnx beside the executable or in the repository)
            --labels PATH        sidecar labels (default: model path with .labels.json)
            --input-scale F      resize images by F before inference (boxes mapped back; default: 1)
            --auto-scale         estimate the scale from the red cells' size instead (the images are one set:
                                 the first ones calibrate it, a drift re-estimates it); printed at the end
            --score-threshold F  one score threshold for every class instead of the model's (the paper's 0.7)
            --provider P         auto | cuda | cpu (default auto)
            --threads N          ONNX Runtime intra-op threads (default: number of cores)
            --annotate DIR       also write each image with its boxes, labels and counts to DIR (same file name)
        """;

    public static Task<int> RunAsync(CommandLine args, CancellationToken cancellationToken) => RunAsync(args, Console.Out, cancellationToken);

    /// <param name="output">Where the table goes (standard output for the command; a test's own writer, since the
    /// process-wide console also carries other hosts' log lines).</param>
    public static async Task<int> RunAsync(CommandLine args, TextWriter output, CancellationToken cancellationToken)
    {
        var options = EvalCommand.DetectorOptionsFrom(args);
        var autoScale = EvalCommand.AutoScaleFrom(args);
        var annotateDir = args.String("annotate");
        args.ThrowOnUnknown();
        if (annotateDir is not null) Directory.CreateDirectory(annotateDir);
        if (args.Positional.Count == 0) throw new CommandLineException("give at least one image file or folder");
        var files = new List<string>();
        foreach (var path in args.Positional)
        {
            if (Directory.Exists(path))
                files.AddRange(FolderFrameSource.ImageFiles(path));
            else if (File.Exists(path)) files.Add(path);
            else throw new CommandLineException($"not found: {path}");
        }
        if (files.Count == 0) { Console.Error.WriteLine("count: no images found"); return 1; }

        using var loggerFactory = EvalCommand.CreateLoggerFactory();
        var logger = loggerFactory.CreateLogger("count");
        ICellDetector detector;
        try { detector = EvalCommand.CreateDetector(options, autoScale, loggerFactory); }
        catch (ModelLoadException e) { Console.Error.WriteLine($"count: {e.Message}"); return 1; }

        using (detector)
        {
            var catalog = CountingCatalog.FromModel(detector.Model);
            var total = new DetectionTally(catalog);
            var annotator = new FieldAnnotator(detector.Model.Labels);
            var counted = 0;
            double totalMs = 0, preMs = 0, inferenceMs = 0, postMs = 0;
            var width = Math.Min(40, files.Max(f => Path.GetFileName(f).Length));
            foreach (var file in files)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var image = Cv2.ImRead(file, ImreadModes.Color);
                if (image.Empty()) { logger.LogWarning("Cannot read image {Path}: skipped", file); continue; }
                var result = detector.Detect(image);
                var tally = new DetectionTally(catalog);
                tally.Add(result.Detections);
                total.Add(tally);
                counted++;
                totalMs += result.TotalMs;
                preMs += result.PreprocessMs;
                inferenceMs += result.InferenceMs;
                postMs += result.PostprocessMs;
                output.WriteLine($"{Path.GetFileName(file).PadRight(width)}  {Format(tally)}");
                if (annotateDir is not null)
                {
                    var header = string.Join("  ", tally.Labels.Where(l => l.Count > 0).Select(l => $"{l.Label} {l.Count}"));
                    using var annotated = annotator.Annotate(image, result.Detections, [Path.GetFileName(file), header]);
                    Cv2.ImWrite(Path.Combine(annotateDir, Path.GetFileName(file)), annotated);
                }
                await Task.Yield();
            }
            output.WriteLine($"{"TOTAL".PadRight(width)}  {Format(total)}  ({counted} images)");
            if (autoScale) output.WriteLine(EvalCommand.Describe(detector.PixelScale));
            if (counted > 0)
                Console.Error.WriteLine($"count: {detector.ExecutionProvider}, mean {totalMs / counted:0.0} ms per image " +
                    $"(pre {preMs / counted:0.0}, inference {inferenceMs / counted:0.0}, post {postMs / counted:0.0}; detector only, image decoding excluded)");
        }
        return 0;
    }

    /// <summary>"label=n ... | group=n ... | diff label p% ..." (labels, groups and differential from the model).</summary>
    internal static string Format(DetectionTally tally)
    {
        var labels = string.Join(" ", tally.Labels.Select(l => $"{l.Label}={l.Count}"));
        var groups = string.Join(" ", tally.Groups.Select(g => $"{g.Group}={g.Count}"));
        var shares = tally.DifferentialPercent;
        var differential = tally.DifferentialLabels.Count == 0 ? ""
            : " | differential " + string.Join(" ", tally.DifferentialLabels.Select(label =>
                $"{label} {(shares is null ? "-" : shares[label].ToString("0.0", CultureInfo.InvariantCulture) + "%")}"));
        return $"{labels} | {groups}{differential}";
    }
}
