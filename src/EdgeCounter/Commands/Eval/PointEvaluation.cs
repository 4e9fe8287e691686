using System.Diagnostics;
using System.Text.Json.Nodes;
using EdgeCounter.Detection;
using Microsoft.Extensions.Logging;
using static EdgeCounter.Commands.EvalCommand;

namespace EdgeCounter.Commands;

/// <summary>
/// <c>eval --points</c>: recall of point-labelled cells (a point is found inside a detected box of its class, one point
/// per box, boxes by score), per class and per point type. Point sets such as Chula RBC-12 label only some of the cells
/// in an image, so a detection without a point may be a real cell: precision and count error are not defined there.
/// </summary>
internal static class PointEvaluation
{
    public const string NoPrecisionReason =
        "the points label only some of the cells in many images: a box without a point may be a real, unlabelled cell, so precision and count error are not defined";

    public static async Task<JsonObject> RunAsync(string dir, EvalSettings settings, ILoggerFactory loggerFactory, TextWriter output, CancellationToken cancellationToken)
    {
        var logger = loggerFactory.CreateLogger("eval");
        PointDataset dataset;
        try { dataset = PointDataset.Load(dir, settings.Split); }
        catch (Exception e) when (e is IOException or FormatException) { throw new EvalException(e.Message, e); }
        foreach (var w in dataset.Warnings) logger.LogWarning("Points: {Warning}", w);
        if (dataset.Images.Count == 0) throw new EvalException($"split '{dataset.Split}' of {dir} holds no images with points");
        var pointClass = settings.Evaluated([settings.PointClass]).Single();

        using (var detector = OpenDetector(settings, loggerFactory))
        {
            var onnx = Onnx(detector);
            LabelPairing pairing;
            try { pairing = LabelPairing.Create(onnx.Model, onnx.Labels.Classes, [pointClass], settings.MapSpec); }
            catch (ArgumentException e) { throw new CommandLineException(e.Message); }
            if (pairing.UnpairedDatasetClasses.Count > 0)
                throw new CommandLineException($"--point-class {pointClass} pairs with no model class, label or group ({string.Join(", ", onnx.Model.Labels)}); use --map");
            var thresholds = onnx.Labels.ScoreThresholds;
            var classIndex = onnx.Labels.Classes.Select((c, i) => (c, i)).ToDictionary(x => x.c, x => x.i);
            var redCells = new RedCellSizes(onnx.Labels);
            var byType = new SortedDictionary<int, (int Points, int Found)>();
            int points = 0, found = 0, foundAtFloor = 0, images = 0;
            var wall = Stopwatch.StartNew();
            await foreach (var (image, _, result) in DetectEachAsync(dataset.Images, i => i.ImagePath, detector, redCells, logger, cancellationToken))
            {
                images++;
                var ofClass = result.Detections.Where(d => pairing.DatasetClassOf(d) == 0).ToList();
                var atOperating = PointMatcher.Match(ofClass.Where(d => d.Score >= thresholds[classIndex[d.Class]]).Select(d => (d.Score, d.Box)).ToList(), image.Points);
                var atFloor = PointMatcher.Match(ofClass.Select(d => (d.Score, d.Box)).ToList(), image.Points);
                for (var p = 0; p < image.Points.Count; p++)
                {
                    var type = image.Points[p].Type;
                    var (n, f) = byType.GetValueOrDefault(type);
                    byType[type] = (n + 1, f + (atOperating[p] ? 1 : 0));
                    points++;
                    if (atOperating[p]) found++;
                    if (atFloor[p]) foundAtFloor++;
                }
            }
            wall.Stop();
            var threshold = onnx.Labels.Classes.Select((c, i) => (c, i)).Where(x => pairing.DatasetClassOf(x.c, x.c) == 0).Select(x => thresholds[x.i]).Distinct().ToList();
            var recall = points == 0 ? double.NaN : (double)found / points;
            var maxRecall = points == 0 ? double.NaN : (double)foundAtFloor / points;
            var scale = detector.PixelScale;

            PrintHeader(output, onnx, scale, $"Dataset {dataset.Root} split '{dataset.Split}': {images} images, {points} {pointClass} points{settings.OnlyText}");
            output.WriteLine($"Recall only: {NoPrecisionReason}.");
            output.WriteLine($"  {pointClass}: recall {F(recall)} ({found} of {points} points inside a {pointClass} box at the operating threshold" +
                             $"{(threshold.Count == 1 ? " " + F(threshold[0], "0.00") : "")}); at score {F(settings.MinScore, "0.00")}: {F(maxRecall)}");
            output.WriteLine("  by point type          points  found  recall");
            foreach (var (type, (n, f)) in byType)
                output.WriteLine($"    {dataset.TypeName(type),-20} {n,6} {f,6}  {F((double)f / n)}");
            output.WriteLine($"  wall {wall.Elapsed.TotalSeconds:0.0} s");

            var perType = new JsonObject();
            foreach (var (type, (n, f)) in byType)
                perType[dataset.TypeName(type)] = new JsonObject { ["code"] = type, ["points"] = n, ["found"] = f, ["recall"] = Round((double)f / n) };
            return new JsonObject
            {
                ["kind"] = "points",
                ["model"] = ModelJson(onnx, scale),
                ["dataset"] = new JsonObject { ["root"] = dataset.Root, ["split"] = dataset.Split, ["images"] = images },
                ["scale"] = ScaleJson(scale, redCells.MedianModelPx(scale.InputScale), redCells.Count),
                ["note"] = NoPrecisionReason,
                ["perClass"] = new JsonObject
                {
                    [pointClass] = new JsonObject
                    {
                        ["points"] = points, ["found"] = found,
                        ["recall"] = Round(recall), ["maxRecall"] = Round(maxRecall),
                        ["scoreThreshold"] = threshold.Count == 1 ? Round(threshold[0]) : null,
                        ["precision"] = null, ["countErrorPct"] = null,
                    },
                },
                ["perType"] = perType,
            };
        }
    }
}
