using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using EdgeCounter.Detection;
using Microsoft.Extensions.Logging;
using static EdgeCounter.Commands.EvalCommand;

namespace EdgeCounter.Commands;

/// <summary>
/// <c>eval --voc</c>: COCO AP (0.50:0.95, 0.50, 0.75, by size), per-class AP50, precision/recall at the operating
/// thresholds, count error (per image and over the set) and WBC subtype accuracy on a Pascal VOC set.
/// </summary>
internal static class VocEvaluation
{
    public static async Task<JsonObject> RunAsync(string vocDir, EvalSettings settings, ILoggerFactory loggerFactory, TextWriter output, CancellationToken cancellationToken)
    {
        var logger = loggerFactory.CreateLogger("eval");
        VocDataset dataset;
        try { dataset = VocDataset.Load(vocDir, settings.Split); }
        catch (IOException e) { throw new EvalException(e.Message, e); }
        foreach (var w in dataset.Warnings) logger.LogWarning("VOC: {Warning}", w);
        if (dataset.Images.Count == 0) throw new EvalException($"split '{dataset.Split}' of {vocDir} holds no images");
        var only = settings.Evaluated(dataset.ClassNames);

        using (var detector = OpenDetector(settings, loggerFactory))
        {
            var onnx = Onnx(detector);
            LabelPairing pairing;
            try { pairing = LabelPairing.Create(onnx.Model, onnx.Labels.Classes, dataset.ClassNames, settings.MapSpec); }
            catch (ArgumentException e) { throw new CommandLineException(e.Message); }
            var report = await EvaluateAsync(dataset, detector, onnx, pairing, only, settings, logger, cancellationToken);
            report.Print(output);
            return report.ToJson();
        }
    }

    private static async Task<VocReport> EvaluateAsync(VocDataset dataset, ICellDetector detector, OnnxCellDetector onnx,
        LabelPairing pairing, IReadOnlyList<string> only, EvalSettings settings, ILogger logger, CancellationToken cancellationToken)
    {
        var classes = pairing.DatasetClasses;
        foreach (var name in pairing.UnpairedDatasetClasses.Where(only.Contains))
            logger.LogWarning("Dataset class {Class} pairs with no model class, label or group: left out (use --map)", name);
        foreach (var name in classes.Except(only))
            logger.LogInformation("Dataset class {Class} left out (--only): its boxes and the detections paired with it are ignored", name);
        var evaluated = Enumerable.Range(0, classes.Count).Where(i => only.Contains(classes[i]) && !pairing.UnpairedDatasetClasses.Contains(classes[i])).ToList();
        if (evaluated.Count == 0) throw new EvalException($"no class to evaluate: {string.Join(", ", only)} pair(s) with no model class (use --map)");
        foreach (var (model, data) in pairing.Pairs.Where(p => only.Contains(p.Dataset))) logger.LogInformation("Pairing model {Model} -> dataset {Dataset}", model, data);
        var evaluatedNames = evaluated.Select(i => classes[i]).ToList();
        var coco = new CocoEvaluator(evaluatedNames, settings.MaxDets);
        var atOperating = evaluated.Select(_ => new OperatingPointCounts()).ToArray();
        var byEdge = evaluated.Select(_ => new FrameEdgeRecall()).ToArray();
        var countError = new double[evaluated.Count];
        var countBias = new double[evaluated.Count];
        var truthTotal = new double[evaluated.Count];
        var operating = onnx.Labels.ScoreThresholds;
        var classIndex = onnx.Labels.Classes.Select((c, i) => (c, i)).ToDictionary(x => x.c, x => x.i);
        var subtypes = SubtypeTruth.Create(dataset, onnx.Labels, pairing, settings.SubtypesCsv, logger);
        var redCells = new RedCellSizes(onnx.Labels);
        var times = new List<DetectionResult>(dataset.Images.Count);
        var wall = Stopwatch.StartNew();
        var difficult = dataset.Images.Sum(i => i.Objects.Count(o => o.Difficult));
        if (difficult > 0)
            logger.LogInformation("{Count} objects are marked difficult: ignored in AP and precision/recall (VOC protocol), kept in the count errors", difficult);

        await foreach (var (image, size, result) in DetectEachAsync(dataset.Images, i => i.ImagePath, detector, redCells, logger, cancellationToken))
        {
            times.Add(result);

            // VOC protocol: "difficult" objects are neither to be found nor false positives when found. They stay in
            // the per-image cell counts: a difficult cell is still a cell.
            var truth = new List<(int Class, BoxF Box, bool Difficult)>();
            foreach (var o in image.Objects)
            {
                var c = evaluated.IndexOf(IndexOfName(classes, o.Name));
                if (c >= 0) truth.Add((c, o.Box, o.Difficult));
            }
            var dets = new List<(int Class, float Score, BoxF Box, bool Operating)>();
            foreach (var d in result.Detections)
            {
                var c = evaluated.IndexOf(pairing.DatasetClassOf(d));
                if (c < 0) continue;
                dets.Add((c, d.Score, d.Box, d.Score >= operating[classIndex[d.Class]]));
            }
            coco.AddImageWithIgnore(truth, dets.Select(d => (d.Class, d.Score, d.Box)));
            for (var c = 0; c < evaluated.Count; c++)
            {
                var t = truth.Where(x => x.Class == c).ToList();
                var op = dets.Where(x => x.Class == c && x.Operating).Select(x => (x.Score, x.Box)).ToList();
                var boxes = t.Select(x => x.Box).ToList();
                var ignored = t.Select(x => x.Difficult).ToList();
                var match = BoxMatcher.Accumulate(atOperating[c], op, boxes, ignore: ignored);
                byEdge[c].Add(match, boxes, size.Width, size.Height, ignored);
                countError[c] += Math.Abs(op.Count - t.Count);
                countBias[c] += op.Count - t.Count;
                truthTotal[c] += t.Count;
            }
            subtypes?.Add(image, result.Detections.Where(d => d.Score >= operating[classIndex[d.Class]]).ToList());
        }
        wall.Stop();
        var n = Math.Max(1, times.Count);
        var counts = Enumerable.Range(0, evaluated.Count)
            .Select(c => new SetCount(countError[c] / n, countBias[c] / n, truthTotal[c] / n, CountError.Percent(truthTotal[c] + countBias[c], truthTotal[c]))).ToArray();
        return new VocReport(dataset, onnx, detector.PixelScale, redCells, coco.Evaluate(), evaluatedNames, atOperating, byEdge, counts,
            evaluated.Select(i => ThresholdFor(classes[i], pairing, onnx)).ToArray(),
            subtypes, times, wall.Elapsed, settings.MaxDets, settings.OnlyText);
    }

    private static int IndexOfName(IReadOnlyList<string> names, string name)
    {
        for (var i = 0; i < names.Count; i++) if (names[i] == name) return i;
        return -1;
    }

    /// <summary>The operating threshold behind a dataset class, when the detector classes feeding it share one.</summary>
    private static float? ThresholdFor(string datasetClass, LabelPairing pairing, OnnxCellDetector detector)
    {
        var labels = detector.Labels;
        bool Feeds(string label, string cls) => pairing.DatasetClassOf(label, cls) is var k && k >= 0 && pairing.DatasetClasses[k] == datasetClass;
        var feeding = labels.Classes.Select((c, i) => (c, i))
            .Where(x => Feeds(x.c, x.c) || (x.c == labels.SubtypeOf && labels.Subtypes.Any(s => Feeds(s, x.c))))
            .Select(x => detector.OperatingThresholds[x.i]).Distinct().ToList();
        return feeding.Count == 1 ? feeding[0] : null;
    }

    /// <summary>WBC subtype truth: BCCD's CSV (images with one WBC box) or, for synth sets, objects named by a subtype.</summary>
    private sealed class SubtypeTruth
    {
        private readonly ModelLabels _labels;
        private readonly IReadOnlyDictionary<string, string>? _csv;
        private readonly int _wbcDatasetClass;
        private readonly IReadOnlyList<string> _datasetClasses;
        private readonly ILogger _logger;
        private readonly HashSet<string> _unknown = new(StringComparer.OrdinalIgnoreCase);

        private SubtypeTruth(ModelLabels labels, IReadOnlyDictionary<string, string>? csv, int wbcDatasetClass, IReadOnlyList<string> datasetClasses, ILogger logger)
        {
            _labels = labels; _csv = csv; _wbcDatasetClass = wbcDatasetClass; _datasetClasses = datasetClasses; _logger = logger;
            Confusion = new ConfusionMatrix(labels.Subtypes);
            MissedByTruth = new int[labels.Subtypes.Count];
            UnidentifiedByTruth = new int[labels.Subtypes.Count];
        }

        public ConfusionMatrix Confusion { get; }
        public int Missed => MissedByTruth.Sum();
        public int[] MissedByTruth { get; }
        /// <summary>Detected cells the subtype stage called unidentified (a white cell, no subtype): not wrong, not decided.</summary>
        public int Unidentified => UnidentifiedByTruth.Sum();
        public int[] UnidentifiedByTruth { get; }
        public string Source { get; private set; } = "";

        public static SubtypeTruth? Create(VocDataset dataset, ModelLabels labels, LabelPairing pairing, string? csvPath, ILogger logger)
        {
            if (labels.SubtypeOf is null || labels.Subtypes.Count == 0) return null;
            var wbc = pairing.DatasetClassOf(labels.SubtypeOf, labels.SubtypeOf);
            SubtypeTruth? truth = null;
            if (csvPath is not null)
            {
                if (!File.Exists(csvPath)) throw new CommandLineException($"--subtypes: file not found: {csvPath}");
                if (wbc < 0) throw new CommandLineException($"--subtypes: no dataset class pairs with '{labels.SubtypeOf}'");
                truth = new SubtypeTruth(labels, SubtypeCsv.Parse(File.ReadLines(csvPath)), wbc, pairing.DatasetClasses, logger) { Source = Path.GetFileName(csvPath) };
            }
            else if (dataset.ClassNames.Any(n => SubtypeIndex(labels, n) >= 0))
                truth = new SubtypeTruth(labels, null, -1, pairing.DatasetClasses, logger) { Source = "object names" };
            return truth;
        }

        private static int SubtypeIndex(ModelLabels labels, string name)
        {
            var key = LabelPairing.Normalize(name);
            for (var i = 0; i < labels.Subtypes.Count; i++) if (LabelPairing.Normalize(labels.Subtypes[i]) == key) return i;
            return -1;
        }

        public void Add(VocImage image, IReadOnlyList<EdgeCounter.Detection.Detection> detections)
        {
            var cells = new List<(int Truth, BoxF Box)>();
            if (_csv is not null)
            {
                if (!_csv.TryGetValue(image.Id, out var name)) return;
                var boxes = image.Objects.Where(o => string.Equals(o.Name, _datasetClasses[_wbcDatasetClass], StringComparison.Ordinal)).ToList();
                if (boxes.Count != 1) return; // the CSV's subtype belongs to the image's single white cell
                var t = SubtypeIndex(_labels, name);
                if (t < 0) { if (_unknown.Add(name)) _logger.LogWarning("Subtype {Name} is not a model subtype: skipped", name); return; }
                cells.Add((t, boxes[0].Box));
            }
            else
            {
                foreach (var o in image.Objects)
                    if (SubtypeIndex(_labels, o.Name) is var t && t >= 0) cells.Add((t, o.Box));
            }
            var candidates = detections.Where(d => d.Class == _labels.SubtypeOf).ToList();
            foreach (var (truth, box) in cells)
            {
                // The best-overlapping white-cell detection (IoU ≥ 0.5) gives the predicted subtype.
                var best = candidates.Select(d => (d, iou: d.Box.IoU(box))).Where(x => x.iou >= 0.5).OrderByDescending(x => x.iou).FirstOrDefault();
                if (best.d is null) { MissedByTruth[truth]++; continue; }
                if (best.d.Label == ModelLabels.UnidentifiedLabel) { UnidentifiedByTruth[truth]++; continue; }
                var predicted = SubtypeIndex(_labels, best.d.Label);
                if (predicted >= 0) Confusion.Add(truth, predicted);
            }
        }
    }

    /// <summary>One class's count against the truth: per image (MAE, bias, truth) and over the set (signed %).</summary>
    private sealed record SetCount(double MaePerImage, double BiasPerImage, double TruthPerImage, double ErrorPct);

    private sealed record VocReport(
        VocDataset Dataset, OnnxCellDetector Detector, PixelScaleStatus Scale, RedCellSizes RedCells, CocoSummary Coco, IReadOnlyList<string> Classes,
        OperatingPointCounts[] AtOperating, FrameEdgeRecall[] ByEdge, SetCount[] Counts, float?[] Thresholds,
        SubtypeTruth? Subtypes, IReadOnlyList<DetectionResult> Times, TimeSpan Wall, int MaxDets, string OnlyText)
    {
        private static double Mean(IEnumerable<double> values) { var l = values.ToList(); return l.Count == 0 ? double.NaN : l.Average(); }

        private static double Median(IEnumerable<double> values) => new Bench.Samples(values.ToList()).Median;

        public void Print(TextWriter o)
        {
            PrintHeader(o, Detector, Scale, $"Dataset {Dataset.Root} split '{Dataset.Split}': {Times.Count} images, classes {string.Join(", ", Classes)}{OnlyText}");
            o.WriteLine($"COCO bbox (maxDets {MaxDets}):");
            o.WriteLine($"  AP @[.50:.95] {F(Coco.AP)}   AP50 {F(Coco.AP50)}   AP75 {F(Coco.AP75)}");
            o.WriteLine($"  AP small {F(Coco.APSmall)}   AP medium {F(Coco.APMedium)}   AP large {F(Coco.APLarge)}   AR100 {F(Coco.AR100)}");
            o.WriteLine();
            o.WriteLine("Per class            GT    AP   AP50   AP75 | thr   precision recall | count MAE  bias  GT/img  error");
            for (var c = 0; c < Classes.Count; c++)
            {
                var p = Coco.PerClass[c];
                var op = AtOperating[c];
                var k = Counts[c];
                o.WriteLine($"  {Classes[c],-16} {p.GroundTruth,5} {F(p.AP),5} {F(p.AP50),6} {F(p.AP75),6} | {(Thresholds[c] is { } t ? F(t, "0.00") : "mix"),-5} {F(op.Precision),9} {F(op.Recall),6} | " +
                            $"{F(k.MaePerImage, "0.00"),9} {F(k.BiasPerImage, "+0.00;-0.00"),5} {F(k.TruthPerImage, "0.0"),7} {F(k.ErrorPct, "+0.0;-0.0") + "%",7}");
            }
            o.WriteLine($"  mean count MAE per image: {F(Mean(Counts.Select(k => k.MaePerImage)), "0.00")}; error: counted at the operating threshold - truth, over the whole set, % of truth");
            o.WriteLine("  recall of labelled cells cut by the image's edge / whole (labs differ in labelling cut cells): " +
                        string.Join(" · ", Enumerable.Range(0, Classes.Count).Select(c =>
                            $"{Classes[c]} {F(ByEdge[c].CutRecall)} of {ByEdge[c].CutTruth} / {F(ByEdge[c].WholeRecall)} of {ByEdge[c].WholeTruth}")));
            if (Subtypes is { } s)
            {
                var cm = s.Confusion;
                o.WriteLine();
                o.WriteLine($"WBC subtypes (truth from {s.Source}): accuracy {F(cm.Accuracy)} on {cm.Total} decided cells, {s.Unidentified} unidentified, {s.Missed} not detected");
                var names = cm.Categories;
                o.WriteLine("  truth \\ predicted  " + string.Join(" ", names.Select(n => Abbrev(n).PadLeft(6))) + "  unident  missed");
                for (var t = 0; t < names.Count; t++)
                    o.WriteLine($"  {names[t],-18} " + string.Join(" ", Enumerable.Range(0, names.Count).Select(p => cm[t, p].ToString(CultureInfo.InvariantCulture).PadLeft(6))) + $"  {s.UnidentifiedByTruth[t],7}  {s.MissedByTruth[t],6}");
            }
            o.WriteLine();
            o.WriteLine($"Time per image ({Detector.ExecutionProvider}): mean {F(Mean(Times.Select(t => t.TotalMs)), "0.0")} ms, median {F(Median(Times.Select(t => t.TotalMs)), "0.0")} ms " +
                        $"(pre {F(Mean(Times.Select(t => t.PreprocessMs)), "0.0")}, inference {F(Mean(Times.Select(t => t.InferenceMs)), "0.0")}, post {F(Mean(Times.Select(t => t.PostprocessMs)), "0.0")}); " +
                        $"wall {Wall.TotalSeconds:0.0} s including image decoding; decoded down to the AP score floor, so post-processing is slower than in service" +
                        (Scale.Source is PixelScaleSource.Estimated or PixelScaleSource.Estimating ? "; the first images' times include the scale search" : ""));
        }

        private static string Abbrev(string s) => s.Length <= 6 ? s : s[..6];

        public JsonObject ToJson()
        {
            var perClass = new JsonObject();
            for (var c = 0; c < Classes.Count; c++)
            {
                var p = Coco.PerClass[c];
                var k = Counts[c];
                perClass[Classes[c]] = new JsonObject
                {
                    ["groundTruth"] = p.GroundTruth,
                    ["AP"] = Round(p.AP), ["AP50"] = Round(p.AP50), ["AP75"] = Round(p.AP75),
                    ["maxRecall50"] = Round(p.Recall50),
                    ["scoreThreshold"] = Thresholds[c] is { } t ? Round(t) : null,
                    ["precision"] = Round(AtOperating[c].Precision), ["recall"] = Round(AtOperating[c].Recall),
                    ["truePositives"] = AtOperating[c].TruePositives, ["falsePositives"] = AtOperating[c].FalsePositives, ["missed"] = AtOperating[c].Missed,
                    ["countMAE"] = Round(k.MaePerImage), ["countBias"] = Round(k.BiasPerImage), ["groundTruthPerImage"] = Round(k.TruthPerImage),
                    ["countErrorPct"] = Round(k.ErrorPct),
                    ["cutByFrame"] = new JsonObject { ["groundTruth"] = ByEdge[c].CutTruth, ["recall"] = Round(ByEdge[c].CutRecall) },
                    ["whole"] = new JsonObject { ["groundTruth"] = ByEdge[c].WholeTruth, ["recall"] = Round(ByEdge[c].WholeRecall) },
                };
            }
            var json = new JsonObject
            {
                ["kind"] = "voc",
                ["model"] = ModelJson(Detector, Scale),
                ["dataset"] = new JsonObject { ["root"] = Dataset.Root, ["split"] = Dataset.Split, ["images"] = Times.Count, ["skippedBoxes"] = Dataset.Warnings.Count },
                ["scale"] = ScaleJson(Scale, RedCells.MedianModelPx(Scale.InputScale), RedCells.Count),
                ["maxDets"] = MaxDets,
                ["AP"] = Round(Coco.AP), ["AP50"] = Round(Coco.AP50), ["AP75"] = Round(Coco.AP75),
                ["APsmall"] = Round(Coco.APSmall), ["APmedium"] = Round(Coco.APMedium), ["APlarge"] = Round(Coco.APLarge), ["AR100"] = Round(Coco.AR100),
                ["countMAE"] = Round(Mean(Counts.Select(k => k.MaePerImage))),
                ["perClass"] = perClass,
                ["timing"] = new JsonObject
                {
                    ["meanMs"] = Round(Mean(Times.Select(t => t.TotalMs))), ["medianMs"] = Round(Median(Times.Select(t => t.TotalMs))),
                    ["preprocessMs"] = Round(Mean(Times.Select(t => t.PreprocessMs))), ["inferenceMs"] = Round(Mean(Times.Select(t => t.InferenceMs))),
                    ["postprocessMs"] = Round(Mean(Times.Select(t => t.PostprocessMs))),
                },
            };
            if (Subtypes is { } s)
            {
                var cm = s.Confusion;
                json["subtypes"] = new JsonObject
                {
                    ["source"] = s.Source,
                    ["accuracy"] = Round(cm.Accuracy), ["matched"] = cm.Total, ["missed"] = s.Missed,
                    ["unidentified"] = s.Unidentified,
                    ["accuracyAllCells"] = cm.Total + s.Unidentified + s.Missed == 0 ? null
                        : Round((double)Enumerable.Range(0, cm.Categories.Count).Sum(t => cm[t, t]) / (cm.Total + s.Unidentified + s.Missed)),
                    ["labels"] = new JsonArray(cm.Categories.Select(c => (JsonNode?)JsonValue.Create(c)).ToArray()),
                    ["confusion"] = new JsonArray(Enumerable.Range(0, cm.Categories.Count)
                        .Select(t => (JsonNode?)new JsonArray(Enumerable.Range(0, cm.Categories.Count).Select(p => (JsonNode?)JsonValue.Create(cm[t, p])).ToArray())).ToArray()),
                };
            }
            return json;
        }
    }
}

/// <summary>The red-cell box sizes of a set, measured as the pixel-scale calibration measures them (for the report:
/// at the model's own scale their median is what a sidecar's redCellDiameterPx should be).</summary>
internal sealed class RedCellSizes(ModelLabels labels)
{
    private readonly RedCellRuler? _ruler = RedCellRuler.For(labels);
    private readonly List<double> _framePx = new();

    public int Count => _framePx.Count;

    public void Add(IReadOnlyList<EdgeCounter.Detection.Detection> detections, int width, int height)
    {
        if (_ruler is not null) _framePx.AddRange(_ruler.Measure(detections, width, height));
    }

    /// <summary>Median box side in model input pixels (frame pixels × the input scale), NaN without red cells.</summary>
    public double MedianModelPx(double inputScale) => RedCellRuler.Median(_framePx) * inputScale;
}
