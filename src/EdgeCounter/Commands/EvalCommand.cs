using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeCounter.Detection;
using Microsoft.Extensions.Logging;
using OpenCvSharp;
using LogLevel = Microsoft.Extensions.Logging.LogLevel;

namespace EdgeCounter.Commands;

/// <summary>
/// <c>eval</c>: runs the detector over a Pascal VOC set and prints COCO AP (0.50:0.95, 0.50, 0.75, by size),
/// per-class AP50, precision/recall at the operating thresholds, per-image count error and WBC subtype accuracy.
/// </summary>
public static class EvalCommand
{
    public const string Usage = """
        eval: evaluate the detector on a Pascal VOC layout set (COCO metrics)
          EdgeCounter eval --voc DIR [options]
            --voc DIR            VOC set (Annotations/, JPEGImages/, ImageSets/Main/), e.g. ../shared/datasets/bccd
            --split NAME         split file ImageSets/Main/NAME.txt (default: test if present, else all)
            --model PATH         ONNX model (default: models/cellnet.onnx beside the executable or in the repository)
            --labels PATH        sidecar labels (default: model path with .labels.json)
            --input-scale F      resize images by F before inference (boxes mapped back; default: 1)
            --map M=D,...        fold model classes/labels/groups M into dataset classes D (e.g. neutrophil=WBC);
                                 names matching the dataset's classes pair automatically (Platelet/Platelets)
            --subtypes CSV       per-image WBC subtype list (BCCD's wbc_subtypes.csv) for subtype accuracy
            --json FILE          also write the figures as JSON (AP, AP50, AP75, perClass.<name>.AP50/.recall, ...)
            --min-score F        score floor for the AP curves (default 0.01; operating thresholds come from the model)
            --max-dets N         COCO maxDets per image and class (default 100)
            --provider P         auto | cuda | cpu (default auto)
            --threads N          ONNX Runtime intra-op threads (default: number of cores)
        """;

    public static async Task<int> RunAsync(CommandLine args, CancellationToken cancellationToken)
    {
        var vocDir = args.RequiredString("voc");
        var split = args.String("split");
        var jsonPath = args.String("json");
        var subtypesCsv = args.String("subtypes");
        var mapSpec = args.String("map");
        var minScore = (float)args.Double("min-score", 0.01);
        var maxDets = args.Int("max-dets", 100);
        var options = DetectorOptionsFrom(args);
        args.ThrowOnUnknown();
        if (minScore is < 0 or > 1) throw new CommandLineException("--min-score must be in [0, 1]");
        if (maxDets <= 0) throw new CommandLineException("--max-dets must be positive");

        using var loggerFactory = CreateLoggerFactory();
        var logger = loggerFactory.CreateLogger("eval");

        VocDataset dataset;
        try { dataset = VocDataset.Load(vocDir, split); }
        catch (IOException e) { Console.Error.WriteLine($"eval: {e.Message}"); return 1; }
        foreach (var w in dataset.Warnings) logger.LogWarning("VOC: {Warning}", w);
        if (dataset.Images.Count == 0) { Console.Error.WriteLine($"eval: split '{dataset.Split}' of {vocDir} holds no images"); return 1; }

        // The AP curves need the low-score detections too; the operating thresholds are applied afterwards.
        options.EvaluationScoreFloor = minScore;
        OnnxCellDetector detector;
        try { detector = new OnnxCellDetector(options, loggerFactory.CreateLogger<OnnxCellDetector>()); }
        catch (ModelLoadException e) { Console.Error.WriteLine($"eval: {e.Message}"); return 1; }
        var operating = detector.Labels.ScoreThresholds.ToArray();

        using (detector)
        {
            LabelPairing pairing;
            try { pairing = LabelPairing.Create(detector.Model, detector.Labels.Classes, dataset.ClassNames, mapSpec); }
            catch (ArgumentException e) { throw new CommandLineException(e.Message); }
            var report = await EvaluateAsync(dataset, detector, operating, pairing, subtypesCsv, maxDets, logger, cancellationToken);
            report.Print(Console.Out);
            if (jsonPath is not null)
            {
                var directory = Path.GetDirectoryName(Path.GetFullPath(jsonPath));
                if (directory is not null) Directory.CreateDirectory(directory);
                await File.WriteAllTextAsync(jsonPath, report.ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }), cancellationToken);
                Console.WriteLine($"JSON written to {jsonPath}");
            }
        }
        return 0;
    }

    internal static DetectorOptions DetectorOptionsFrom(CommandLine args)
    {
        var provider = args.String("provider") ?? "auto";
        var options = new DetectorOptions
        {
            ModelPath = args.String("model") ?? ModelLocator.FindDefaultModel(),
            LabelsPath = args.String("labels"),
            IntraOpThreads = args.Int("threads", 0),
            ExecutionProvider = Enum.TryParse<ExecutionProviderPreference>(provider, ignoreCase: true, out var p) && Enum.IsDefined(p) && !char.IsDigit(provider[0])
                ? p : throw new CommandLineException($"--provider must be auto, cuda or cpu, not '{provider}'"),
        };
        var scale = args.String("input-scale");
        if (scale is not null) options.InputScale = args.Double("input-scale", 1.0);
        try { options.Validate(); }
        catch (ArgumentException e) { throw new CommandLineException(e.Message); }
        return options;
    }

    internal static ILoggerFactory CreateLoggerFactory() => LoggerFactory.Create(b => b
        .AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = null; })
        .AddFilter("Microsoft", LogLevel.Warning)
        .SetMinimumLevel(LogLevel.Information)
        .Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace));

    private static async Task<EvalReport> EvaluateAsync(VocDataset dataset, OnnxCellDetector detector, float[] operating,
        LabelPairing pairing, string? subtypesCsv, int maxDets, ILogger logger, CancellationToken cancellationToken)
    {
        var classes = pairing.DatasetClasses;
        var evaluated = Enumerable.Range(0, classes.Count).Where(i => !pairing.UnpairedDatasetClasses.Contains(classes[i])).ToList();
        foreach (var name in pairing.UnpairedDatasetClasses)
            logger.LogWarning("Dataset class {Class} pairs with no model class, label or group: left out (use --map)", name);
        foreach (var (model, data) in pairing.Pairs) logger.LogInformation("Pairing model {Model} -> dataset {Dataset}", model, data);
        var evaluatedNames = evaluated.Select(i => classes[i]).ToList();
        var coco = new CocoEvaluator(evaluatedNames, maxDets);
        var atOperating = evaluated.Select(_ => new OperatingPointCounts()).ToArray();
        var countError = new double[evaluated.Count];
        var countBias = new double[evaluated.Count];
        var truthPerImage = new double[evaluated.Count];
        var classIndex = detector.Labels.Classes.Select((c, i) => (c, i)).ToDictionary(x => x.c, x => x.i);
        var subtypes = SubtypeTruth.Create(dataset, detector.Labels, pairing, subtypesCsv, logger);
        var times = new List<DetectionResult>(dataset.Images.Count);
        var wall = Stopwatch.StartNew();
        var difficult = dataset.Images.Sum(i => i.Objects.Count(o => o.Difficult));
        if (difficult > 0)
            logger.LogInformation("{Count} objects are marked difficult: ignored in AP and precision/recall (VOC protocol), kept in the count errors", difficult);

        foreach (var image in dataset.Images)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var mat = Cv2.ImRead(image.ImagePath, ImreadModes.Color);
            if (mat.Empty()) { logger.LogWarning("Cannot read image {Path}: skipped", image.ImagePath); continue; }
            var result = detector.Detect(mat);
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
                BoxMatcher.Accumulate(atOperating[c], op, t.Select(x => x.Box).ToList(), ignore: t.Select(x => x.Difficult).ToList());
                countError[c] += Math.Abs(op.Count - t.Count);
                countBias[c] += op.Count - t.Count;
                truthPerImage[c] += t.Count;
            }
            subtypes?.Add(image, result.Detections.Where(d => d.Score >= operating[classIndex[d.Class]]).ToList());
            await Task.Yield(); // keep Ctrl+C responsive on long sets
        }
        wall.Stop();
        var n = Math.Max(1, times.Count);
        return new EvalReport(dataset, detector, coco.Evaluate(), evaluatedNames,
            atOperating, countError.Select(e => e / n).ToArray(), countBias.Select(e => e / n).ToArray(), truthPerImage.Select(e => e / n).ToArray(),
            evaluated.Select(i => ThresholdFor(classes[i], pairing, detector, operating)).ToArray(),
            subtypes, times, wall.Elapsed, maxDets);
    }

    private static int IndexOfName(IReadOnlyList<string> names, string name)
    {
        for (var i = 0; i < names.Count; i++) if (names[i] == name) return i;
        return -1;
    }

    /// <summary>The operating threshold behind a dataset class, when the detector classes feeding it share one.</summary>
    private static float? ThresholdFor(string datasetClass, LabelPairing pairing, OnnxCellDetector detector, float[] operating)
    {
        var labels = detector.Labels;
        bool Feeds(string label, string cls) => pairing.DatasetClassOf(label, cls) is var k && k >= 0 && pairing.DatasetClasses[k] == datasetClass;
        var feeding = labels.Classes.Select((c, i) => (c, i))
            .Where(x => Feeds(x.c, x.c) || (x.c == labels.SubtypeOf && labels.Subtypes.Any(s => Feeds(s, x.c))))
            .Select(x => operating[x.i]).Distinct().ToList();
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
        }

        public ConfusionMatrix Confusion { get; }
        public int Missed => MissedByTruth.Sum();
        public int[] MissedByTruth { get; }
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
                var predicted = SubtypeIndex(_labels, best.d.Label);
                if (predicted >= 0) Confusion.Add(truth, predicted);
            }
        }
    }

    private sealed record EvalReport(
        VocDataset Dataset, OnnxCellDetector Detector, CocoSummary Coco, IReadOnlyList<string> Classes,
        OperatingPointCounts[] AtOperating, double[] CountMae, double[] CountBias, double[] TruthPerImage, float?[] Thresholds,
        SubtypeTruth? Subtypes, IReadOnlyList<DetectionResult> Times, TimeSpan Wall, int MaxDets)
    {
        private static string F(double v, string format = "0.000") => double.IsNaN(v) ? "n/a" : v.ToString(format, CultureInfo.InvariantCulture);

        private static double Mean(IEnumerable<double> values) { var l = values.ToList(); return l.Count == 0 ? double.NaN : l.Average(); }

        private static double Median(IEnumerable<double> values) => new Bench.Samples(values.ToList()).Median;

        public void Print(TextWriter o)
        {
            var m = Detector.Model;
            o.WriteLine($"Model {m.Name} {m.Version} on {Detector.ExecutionProvider}, input scale {F(Detector.InputScale, "0.###")}");
            o.WriteLine($"Dataset {Dataset.Root} split '{Dataset.Split}': {Times.Count} images, classes {string.Join(", ", Classes)}");
            o.WriteLine();
            o.WriteLine($"COCO bbox (maxDets {MaxDets}):");
            o.WriteLine($"  AP @[.50:.95] {F(Coco.AP)}   AP50 {F(Coco.AP50)}   AP75 {F(Coco.AP75)}");
            o.WriteLine($"  AP small {F(Coco.APSmall)}   AP medium {F(Coco.APMedium)}   AP large {F(Coco.APLarge)}   AR100 {F(Coco.AR100)}");
            o.WriteLine();
            o.WriteLine("Per class            GT    AP   AP50   AP75 | thr   precision recall | count MAE  bias  GT/img");
            for (var c = 0; c < Classes.Count; c++)
            {
                var p = Coco.PerClass[c];
                var op = AtOperating[c];
                o.WriteLine($"  {Classes[c],-16} {p.GroundTruth,5} {F(p.AP),5} {F(p.AP50),6} {F(p.AP75),6} | {(Thresholds[c] is { } t ? F(t, "0.00") : "mix"),-5} {F(op.Precision),9} {F(op.Recall),6} | {F(CountMae[c], "0.00"),9} {F(CountBias[c], "+0.00;-0.00"),5} {F(TruthPerImage[c], "0.0"),7}");
            }
            o.WriteLine($"  mean count MAE per image: {F(Mean(CountMae), "0.00")}");
            if (Subtypes is { } s)
            {
                var cm = s.Confusion;
                o.WriteLine();
                o.WriteLine($"WBC subtypes (truth from {s.Source}): accuracy {F(cm.Accuracy)} on {cm.Total} matched cells, {s.Missed} not detected");
                var names = cm.Categories;
                o.WriteLine("  truth \\ predicted  " + string.Join(" ", names.Select(n => Abbrev(n).PadLeft(6))) + "  missed");
                for (var t = 0; t < names.Count; t++)
                    o.WriteLine($"  {names[t],-18} " + string.Join(" ", Enumerable.Range(0, names.Count).Select(p => cm[t, p].ToString(CultureInfo.InvariantCulture).PadLeft(6))) + $"  {s.MissedByTruth[t],6}");
            }
            o.WriteLine();
            o.WriteLine($"Time per image ({Detector.ExecutionProvider}): mean {F(Mean(Times.Select(t => t.TotalMs)), "0.0")} ms, median {F(Median(Times.Select(t => t.TotalMs)), "0.0")} ms " +
                        $"(pre {F(Mean(Times.Select(t => t.PreprocessMs)), "0.0")}, inference {F(Mean(Times.Select(t => t.InferenceMs)), "0.0")}, post {F(Mean(Times.Select(t => t.PostprocessMs)), "0.0")}); " +
                        $"wall {Wall.TotalSeconds:0.0} s including image decoding; decoded down to the AP score floor, so post-processing is slower than in service");
        }

        private static string Abbrev(string s) => s.Length <= 6 ? s : s[..6];

        private static JsonNode? N(double v) => double.IsFinite(v) ? JsonValue.Create(Math.Round(v, 6)) : null;

        public JsonObject ToJson()
        {
            var perClass = new JsonObject();
            for (var c = 0; c < Classes.Count; c++)
            {
                var p = Coco.PerClass[c];
                perClass[Classes[c]] = new JsonObject
                {
                    ["groundTruth"] = p.GroundTruth,
                    ["AP"] = N(p.AP), ["AP50"] = N(p.AP50), ["AP75"] = N(p.AP75),
                    ["maxRecall50"] = N(p.Recall50),
                    ["scoreThreshold"] = Thresholds[c] is { } t ? N(t) : null,
                    ["precision"] = N(AtOperating[c].Precision), ["recall"] = N(AtOperating[c].Recall),
                    ["truePositives"] = AtOperating[c].TruePositives, ["falsePositives"] = AtOperating[c].FalsePositives, ["missed"] = AtOperating[c].Missed,
                    ["countMAE"] = N(CountMae[c]), ["countBias"] = N(CountBias[c]), ["groundTruthPerImage"] = N(TruthPerImage[c]),
                };
            }
            var json = new JsonObject
            {
                ["model"] = new JsonObject { ["name"] = Detector.Model.Name, ["version"] = Detector.Model.Version, ["executionProvider"] = Detector.ExecutionProvider, ["inputScale"] = Detector.InputScale },
                ["dataset"] = new JsonObject { ["root"] = Dataset.Root, ["split"] = Dataset.Split, ["images"] = Times.Count, ["skippedBoxes"] = Dataset.Warnings.Count },
                ["maxDets"] = MaxDets,
                ["AP"] = N(Coco.AP), ["AP50"] = N(Coco.AP50), ["AP75"] = N(Coco.AP75),
                ["APsmall"] = N(Coco.APSmall), ["APmedium"] = N(Coco.APMedium), ["APlarge"] = N(Coco.APLarge), ["AR100"] = N(Coco.AR100),
                ["countMAE"] = N(Mean(CountMae)),
                ["perClass"] = perClass,
                ["timing"] = new JsonObject
                {
                    ["meanMs"] = N(Mean(Times.Select(t => t.TotalMs))), ["medianMs"] = N(Median(Times.Select(t => t.TotalMs))),
                    ["preprocessMs"] = N(Mean(Times.Select(t => t.PreprocessMs))), ["inferenceMs"] = N(Mean(Times.Select(t => t.InferenceMs))),
                    ["postprocessMs"] = N(Mean(Times.Select(t => t.PostprocessMs))),
                },
            };
            if (Subtypes is { } s)
            {
                var cm = s.Confusion;
                json["subtypes"] = new JsonObject
                {
                    ["source"] = s.Source,
                    ["accuracy"] = N(cm.Accuracy), ["matched"] = cm.Total, ["missed"] = s.Missed,
                    ["labels"] = new JsonArray(cm.Categories.Select(c => (JsonNode?)JsonValue.Create(c)).ToArray()),
                    ["confusion"] = new JsonArray(Enumerable.Range(0, cm.Categories.Count)
                        .Select(t => (JsonNode?)new JsonArray(Enumerable.Range(0, cm.Categories.Count).Select(p => (JsonNode?)JsonValue.Create(cm[t, p])).ToArray())).ToArray()),
                };
            }
            return json;
        }
    }
}
