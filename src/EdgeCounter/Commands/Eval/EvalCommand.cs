using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeCounter.Detection;
using Microsoft.Extensions.Logging;
using OpenCvSharp;
using LogLevel = Microsoft.Extensions.Logging.LogLevel;

namespace EdgeCounter.Commands;

/// <summary>
/// <c>eval</c>: runs the detector over a labelled set (boxes, points or single-cell crops) or over every shared set
/// (<c>--suite</c>) and prints the figures; <c>--json</c> writes them too.
/// </summary>
public static class EvalCommand
{
    public const string Usage = """
        eval: evaluate the detector on a labelled set
          EdgeCounter eval --voc DIR | --points DIR | --crops DIR | --suite [options]
            --voc DIR            boxes, Pascal VOC layout (Annotations/, JPEGImages/, ImageSets/Main/), e.g.
                                 ../shared/datasets/bccd: COCO AP, AP50, AP75, per-class AP50, precision/recall,
                                 count error, recall of cells cut by the image's edge / whole, WBC subtype accuracy
            --points DIR         cell centres (images/N.jpg, points/N.txt with "x y type" lines, splits/NAME.txt),
                                 e.g. ../shared/datasets/chula-rbc12: recall per class and per point type (a point
                                 is found inside a detected box of its class, one point per box, best score first)
            --crops DIR          single-cell crops (CLASS/FILE.jpg + labels.csv), e.g. ../shared/datasets/lisc-crops:
                                 white-cell subtype of the cell nearest each crop's centre: accuracy, recall,
                                 confusion matrix, unidentified rate
            --suite              every shared set in one table: BCCD test (input scale 0.75 and --auto-scale),
                                 draaslan, Chula test, LISC crops, held-out simulator fields (seed 99); for a
                                 model with plasma_cell also SegPC val (unresized and auto-scaled) and held-out
                                 simulated marrow fields (per lineage, synthetic fields only)
          options:
            --split NAME         VOC: ImageSets/Main/NAME.txt (default: test if present, else all);
                                 points: splits/NAME.txt (default: test if present, else all)
            --only CLASS,...     evaluate these dataset classes only; detections of the others are ignored
                                 (e.g. --only WBC,RBC where platelets are not labelled)
            --point-class NAME   the class the points label (default RBC)
            --auto-scale         estimate the pixel scale from the red cells' size (the set is one slide scale:
                                 its first images calibrate it); the estimate is printed and in the JSON.
                                 --crops does this unless --input-scale is given (crops come from cameras
                                 of unknown scale, and the service estimates it by default)
            --input-scale F      resize images by F before inference instead (boxes mapped back; default: 1)
            --score-threshold F  one operating threshold for every class instead of the model's (the paper's 0.7)
            --model PATH         ONNX model (default: models/cellnet.onnx beside the executable or in the repository)
            --labels PATH        sidecar labels (default: model path with .labels.json)
            --map M=D,...        fold model classes/labels/groups M into dataset classes D (e.g. neutrophil=WBC);
                                 names matching the dataset's classes pair automatically (Platelet/Platelets)
            --subtypes CSV       VOC: per-image WBC subtype list (BCCD's wbc_subtypes.csv) for subtype accuracy
            --json FILE          also write the figures as JSON (perClass.<class>.AP50/.recall/.countErrorPct,
                                 subtypes.accuracy, scale.micrometresPerPixel, ...; --suite: every report)
            --markdown FILE      --suite: also write the table as Markdown
            --datasets DIR       --suite: where the shared sets are (default: ../shared/datasets beside the repository)
            --synthetic-fields N --suite: held-out simulator fields to generate (default 120, as the model card)
            --name-precursors    the subtype stage names immature granulocytes and erythroblasts (as in
                                 Counting:Mode marrow) instead of calling them unidentified; crops then pair
                                 them with PBC's ig and erythroblast folders
            --held-out K         --crops: every K-th crop of each class in file order only (the crops the
                                 training recipe held out with val_every K, e.g. 10 for PBC)
            --min-score F        score floor for the AP curves and max recall (default 0.01; operating thresholds
                                 come from the model)
            --max-dets N         COCO maxDets per image and class (default 100)
            --provider P         auto | cuda | cpu (default auto)
            --threads N          ONNX Runtime intra-op threads (default: number of cores)
        """;

    public static async Task<int> RunAsync(CommandLine args, CancellationToken cancellationToken)
    {
        var voc = args.String("voc");
        var points = args.String("points");
        var crops = args.String("crops");
        var suite = args.Flag("suite");
        var kinds = new[] { voc is not null, points is not null, crops is not null, suite }.Count(k => k);
        if (kinds != 1) throw new CommandLineException("give one of --voc DIR, --points DIR, --crops DIR or --suite");
        var jsonPath = args.String("json");

        using var loggerFactory = CreateLoggerFactory();
        if (suite)
        {
            var datasets = args.String("datasets");
            var markdown = args.String("markdown");
            var syntheticFields = args.Int("synthetic-fields", EvalSuite.SyntheticFields);
            if (syntheticFields < 1) throw new CommandLineException("--synthetic-fields must be at least 1");
            var baseSettings = EvalSettings.From(args, forSuite: true);
            args.ThrowOnUnknown();
            return await EvalSuite.RunAsync(baseSettings, datasets, syntheticFields, jsonPath, markdown, loggerFactory, Console.Out, cancellationToken);
        }
        var settings = EvalSettings.From(args, forSuite: false);
        // Crops come from cameras of unknown scale, and the service itself finds the scale from the red cells by
        // default: a crop set is measured the way the service would see its cells, unless a scale is given.
        if (crops is not null && args.String("input-scale") is null) settings = settings with { AutoScale = true };
        if (args.String("held-out") is not null)
        {
            if (crops is null) throw new CommandLineException("--held-out is for --crops");
            settings = settings with { HeldOutEvery = args.Int("held-out", 0) is var k && k >= 2 ? k : throw new CommandLineException("--held-out must be 2 or more") };
        }
        if (args.String("markdown") is not null) throw new CommandLineException("--markdown is for --suite");
        args.ThrowOnUnknown();

        JsonObject? report;
        try
        {
            report = voc is not null ? await VocEvaluation.RunAsync(voc, settings, loggerFactory, Console.Out, cancellationToken)
                : points is not null ? await PointEvaluation.RunAsync(points, settings, loggerFactory, Console.Out, cancellationToken)
                : await CropEvaluation.RunAsync(crops!, settings, loggerFactory, Console.Out, cancellationToken);
        }
        catch (EvalException e) { Console.Error.WriteLine($"eval: {e.Message}"); return 1; }
        if (jsonPath is not null) await WriteJsonAsync(jsonPath, report, cancellationToken);
        return 0;
    }

    internal static async Task WriteJsonAsync(string path, JsonNode json, CancellationToken cancellationToken)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null) Directory.CreateDirectory(directory);
        await File.WriteAllTextAsync(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }), cancellationToken);
        Console.WriteLine($"JSON written to {path}");
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
        if (args.String("score-threshold") is not null) options.ScoreThreshold = (float)args.Double("score-threshold", 0);
        if (args.Flag("name-precursors")) options.NamePrecursors = true;
        try { options.Validate(); }
        catch (ArgumentException e) { throw new CommandLineException(e.Message); }
        return options;
    }

    /// <summary>--auto-scale, which replaces a resize factor given by hand.</summary>
    internal static bool AutoScaleFrom(CommandLine args)
    {
        var auto = args.Flag("auto-scale");
        if (auto && args.String("input-scale") is not null) throw new CommandLineException("--auto-scale and --input-scale exclude each other: the first estimates what the second fixes");
        return auto;
    }

    /// <summary>The detector, wrapped in automatic pixel-scale calibration when asked.</summary>
    /// <exception cref="ModelLoadException">The model cannot be used (or, with auto-scale, has no red-cell class).</exception>
    internal static ICellDetector CreateDetector(DetectorOptions options, bool autoScale, ILoggerFactory loggerFactory) =>
        CellDetectorFactory.Create(options, loggerFactory, autoScale ? AutoScaleMode.Required : AutoScaleMode.Off);

    /// <summary>The detector of one evaluation; a model that cannot be used fails the evaluation (exit 1).</summary>
    internal static ICellDetector OpenDetector(EvalSettings settings, ILoggerFactory loggerFactory)
    {
        try { return CreateDetector(settings.Detector, settings.AutoScale, loggerFactory); }
        catch (ModelLoadException e) { throw new EvalException(e.Message, e); }
    }

    /// <summary>A report's first lines: the model, the set (<paramref name="datasetLine"/>) and the pixel scale.</summary>
    internal static void PrintHeader(TextWriter o, OnnxCellDetector detector, PixelScaleStatus scale, string datasetLine)
    {
        o.WriteLine($"Model {detector.Model.Name} {detector.Model.Version} on {detector.ExecutionProvider}, input scale {F(scale.InputScale, "0.###")}");
        o.WriteLine(datasetLine);
        o.WriteLine(Describe(scale));
        o.WriteLine();
    }

    internal static JsonObject ModelJson(OnnxCellDetector detector, PixelScaleStatus scale) => new()
    {
        ["name"] = detector.Model.Name, ["version"] = detector.Model.Version, ["executionProvider"] = detector.ExecutionProvider, ["inputScale"] = Round(scale.InputScale),
    };

    /// <summary>Reads each image and runs the detector on it, in order (the first images calibrate an automatic
    /// scale); an unreadable image is skipped with a warning. Red-cell sizes go to <paramref name="redCells"/>.</summary>
    internal static async IAsyncEnumerable<(T Item, Size Size, DetectionResult Result)> DetectEachAsync<T>(
        IEnumerable<T> items, Func<T, string> imagePath, ICellDetector detector, RedCellSizes redCells, ILogger logger,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        foreach (var item in items)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var path = imagePath(item);
            using var mat = Cv2.ImRead(path, ImreadModes.Color);
            if (mat.Empty()) { logger.LogWarning("Cannot read image {Path}: skipped", path); continue; }
            var result = detector.Detect(mat);
            redCells.Add(result.Detections, mat.Cols, mat.Rows);
            yield return (item, new Size(mat.Cols, mat.Rows), result);
            await Task.Yield(); // keep Ctrl+C responsive on long sets
        }
    }

    /// <summary>The ONNX detector itself, under its automatic scale if it has one.</summary>
    internal static OnnxCellDetector Onnx(ICellDetector detector) => detector switch
    {
        OnnxCellDetector onnx => onnx,
        AutoScalingDetector auto => auto.Inner,
        _ => throw new ArgumentException($"not an ONNX detector: {detector.GetType().Name}", nameof(detector)),
    };

    /// <summary>One line on the pixel scale in use.</summary>
    internal static string Describe(PixelScaleStatus scale)
    {
        var mpp = scale.MicrometresPerPixel is { } m ? $"{m.ToString("0.####", CultureInfo.InvariantCulture)} um/px, " : "";
        var factor = scale.InputScale.ToString("0.###", CultureInfo.InvariantCulture);
        return scale.Source switch
        {
            PixelScaleSource.Estimated =>
                $"Pixel scale estimated: {mpp}input scale {factor}, from {scale.RedCells} red cells in {scale.Fields} image(s), median {scale.RedCellDiameterPx.ToString("0.#", CultureInfo.InvariantCulture)} px" +
                (scale.Estimations > 1 ? $"; estimated {scale.Estimations} times as the cells' size drifted, input scales {string.Join(", ", scale.Estimates!.Select(e => e.ToString("0.###", CultureInfo.InvariantCulture)))}" : ""),
            PixelScaleSource.Estimating when scale.RedCells > 0 =>
                $"Pixel scale estimated from fewer red cells than wanted ({scale.RedCells} in {scale.Fields} image(s), median {scale.RedCellDiameterPx.ToString("0.#", CultureInfo.InvariantCulture)} px): {mpp}input scale {factor}",
            PixelScaleSource.Estimating => $"Pixel scale not estimated: no confident red cells found; input scale {factor}",
            PixelScaleSource.Configured => $"Pixel scale configured: {mpp}input scale {factor}",
            _ => $"Pixel scale: the model's own ({mpp}input scale {factor})",
        };
    }

    /// <summary>The pixel scale for a JSON report; <paramref name="redCellDiameterPx"/> is the set's median red-cell
    /// box side in model input pixels (what a sidecar's redCellDiameterPx is, when measured at the model's scale).</summary>
    internal static JsonObject ScaleJson(PixelScaleStatus scale, double redCellDiameterPx, int redCellsMeasured) => new()
    {
        ["source"] = scale.Source.ToString().ToLowerInvariant(),
        ["inputScale"] = Round(scale.InputScale),
        ["micrometresPerPixel"] = scale.MicrometresPerPixel is { } m ? Round(m) : null,
        ["estimatedFromRedCells"] = scale.RedCells,
        ["estimates"] = new JsonArray((scale.Estimates ?? []).Select(e => Round(e)).ToArray()),
        ["estimatedMicrometresPerPixel"] = new JsonArray((scale.Estimates ?? []).Select(e => scale.MicrometresPerPixel is { } m ? Round(m / scale.InputScale * e) : null).ToArray()),
        ["redCellDiameterPx"] = Round(redCellDiameterPx),
        ["redCellsMeasured"] = redCellsMeasured,
    };

    internal static JsonNode? Round(double v) => double.IsFinite(v) ? JsonValue.Create(Math.Round(v, 6)) : null;

    internal static string F(double v, string format = "0.000") => double.IsNaN(v) ? "n/a" : v.ToString(format, CultureInfo.InvariantCulture);

    internal static ILoggerFactory CreateLoggerFactory() => LoggerFactory.Create(b => b
        .AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = null; })
        .AddFilter("Microsoft", LogLevel.Warning)
        .SetMinimumLevel(LogLevel.Information)
        .Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace));
}

/// <summary>A set that cannot be evaluated (missing, empty, unreadable): eval says why and exits 1.</summary>
public sealed class EvalException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The options every kind of evaluation shares.</summary>
internal sealed record EvalSettings(
    DetectorOptions Detector, bool AutoScale, IReadOnlyList<string>? Only, string? Split, string? MapSpec, string? SubtypesCsv,
    string PointClass, float MinScore, int MaxDets)
{
    /// <summary>--held-out K (crops): every K-th crop of each class only; 0: all.</summary>
    public int HeldOutEvery { get; init; }

    public static EvalSettings From(CommandLine args, bool forSuite)
    {
        var split = args.String("split");
        var only = args.String("only")?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var map = args.String("map");
        var subtypes = args.String("subtypes");
        var pointClass = args.String("point-class") ?? "RBC";
        var minScore = (float)args.Double("min-score", 0.01);
        var maxDets = args.Int("max-dets", 100);
        var detector = EvalCommand.DetectorOptionsFrom(args);
        var autoScale = EvalCommand.AutoScaleFrom(args);
        if (minScore is < 0 or > 1) throw new CommandLineException("--min-score must be in [0, 1]");
        if (maxDets <= 0) throw new CommandLineException("--max-dets must be positive");
        if (only is { Length: 0 }) throw new CommandLineException("--only needs at least one class");
        if (pointClass.Trim().Length == 0) throw new CommandLineException("--point-class needs a class name");
        var perSet = new[] { "split", "only", "map", "subtypes", "point-class", "input-scale", "auto-scale" }.Where(args.Flag).ToList();
        if (forSuite && perSet.Count > 0)
            throw new CommandLineException($"--suite sets each set's options itself: {string.Join(", ", perSet.Select(o => "--" + o))} cannot be given with it");
        // The AP curves need the low-score detections too; the operating thresholds are applied afterwards.
        detector.EvaluationScoreFloor = minScore;
        return new EvalSettings(detector, autoScale, only, split, map, subtypes, pointClass.Trim(), minScore, maxDets);
    }

    /// <summary>The classes to evaluate among <paramref name="available"/> (all, or those named by --only: each must be
    /// one of them, case-insensitively).</summary>
    public IReadOnlyList<string> Evaluated(IReadOnlyList<string> available)
    {
        if (Only is null) return available;
        var chosen = new List<string>();
        foreach (var name in Only)
        {
            var match = available.FirstOrDefault(a => string.Equals(a, name, StringComparison.OrdinalIgnoreCase))
                ?? throw new CommandLineException($"--only: '{name}' is not a class of this set ({string.Join(", ", available)})");
            if (!chosen.Contains(match)) chosen.Add(match);
        }
        return chosen;
    }

    /// <summary>"--only WBC,RBC" for the report header, or "".</summary>
    public string OnlyText => Only is null ? "" : $" (--only {string.Join(",", Only)})";
}
