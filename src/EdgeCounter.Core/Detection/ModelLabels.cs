using System.Text.Json;
using System.Text.Json.Serialization;

namespace EdgeCounter.Detection;

/// <summary>
/// The sidecar <c>*.labels.json</c> (docs/model-contract.md): what the model's output channels mean.
/// Parsed and validated here so the detector never hard-codes a class name.
/// </summary>
public sealed class ModelLabels
{
    public string Name { get; init; } = "";
    public string Version { get; init; } = "";
    /// <summary>The model's own licence where it differs from the project's (sidecar <c>licence</c>, e.g. the marrow
    /// model's CC BY-NC-SA 4.0 inherited from SegPC-2021), or null. Logged when the model loads.</summary>
    public string? Licence { get; init; }
    /// <summary>The model family whose outputs the graph has (sidecar <c>family</c>, default <c>centernet</c>; see
    /// <see cref="DetectorFamilies"/>).</summary>
    public string Family { get; init; } = DetectorFamilies.Default;
    public string InputName { get; init; } = "image";
    /// <summary>The input's sides are a multiple of this (sidecar <c>input.sizeMultiple</c>; default the family's).</summary>
    public int SizeMultiple { get; init; } = 32;
    /// <summary>How pixels become input values (sidecar <c>input.colour</c>, <c>range</c>, <c>mean</c>, <c>std</c>,
    /// <c>padValue</c>; defaults the family's).</summary>
    public PixelConvention Pixels { get; init; } = PixelConvention.RgbUnit;
    /// <summary>Pad evenly around the image (sidecar <c>input.padding</c> "letterbox") rather than bottom/right.</summary>
    public bool Letterbox { get; init; }
    public int Stride { get; init; } = 4;
    public double? MicrometresPerPixel { get; init; }
    /// <summary>Detector classes, in heatmap channel order.</summary>
    public IReadOnlyList<string> Classes { get; init; } = [];
    /// <summary>The class whose detections carry a subtype (e.g. "WBC"), or null.</summary>
    public string? SubtypeOf { get; init; }
    /// <summary>Subtype labels, in subtype channel order.</summary>
    public IReadOnlyList<string> Subtypes { get; init; } = [];
    /// <summary>The subtype stage's model file (sidecar <c>subtypes.stage</c>, relative to the sidecar's folder), or
    /// null: a second classifier that names each white cell's subtype in place of the subtype head, and may call a
    /// cell <see cref="UnidentifiedLabel"/>.</summary>
    public string? SubtypeStage { get; init; }
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Groups { get; init; } = new Dictionary<string, IReadOnlyList<string>>();
    public IReadOnlyList<string> Differential { get; init; } = [];
    /// <summary>Operating score threshold per class, in class order.</summary>
    public IReadOnlyList<float> ScoreThresholds { get; init; } = [];
    public float NmsIou { get; init; } = 0.5f;
    /// <summary>One class per cell: a detection overlapping a higher-scoring one of another class by more than this
    /// IoU is dropped (sidecar <c>crossClassIou</c>; null: classes never suppress each other).</summary>
    public float? CrossClassIou { get; init; }
    /// <summary>Per class, in class order: whether the class takes part in the cross-class rule, which compares only
    /// pairs of two such classes (sidecar <c>crossClassOf</c>, class names; null: every pair). E.g. ["WBC", "RBC"]:
    /// a white cell is never also a red cell, while a platelet on or beside a cell is left to its own score.</summary>
    public IReadOnlyList<bool>? CrossClassOf { get; init; }
    /// <summary>One box per cell: a detection lying more than this fraction inside a higher-scoring one of its class
    /// is dropped (sidecar <c>containment</c>; null: off).</summary>
    public float? Containment { get; init; }
    /// <summary>Per class, in class order: whether its cells may also be boxed in parts (sidecar <c>partsOf</c>, class
    /// names; null: none). E.g. ["WBC"]: a white-cell box with two or more white-cell boxes inside it (each more than
    /// <see cref="Containment"/>: a segmented nucleus's lobes, scored above the cell) is one cell, kept whole.</summary>
    public IReadOnlyList<bool>? PartsOf { get; init; }
    /// <summary>Per class, in class order: a whole box smaller than this fraction of the image's median red cell is
    /// not a whole cell of that class and is dropped (sidecar <c>minSizeOfRedCell</c>, e.g. {"WBC": 0.5}; 0: no rule).
    /// Null when the sidecar sets none. See <see cref="CellSizeRule"/>.</summary>
    public IReadOnlyList<float>? MinSizeOfRedCell { get; init; }
    public int MaxDetections { get; init; } = 300;
    /// <summary>Resizes of the input that the graph itself runs and averages (informational: 1 = one pass). They set
    /// the inference cost, roughly the sum of their squares times one pass.</summary>
    public IReadOnlyList<double> TestScales { get; init; } = [1.0];

    /// <summary>The label a subtype stage gives a white cell it is not sure of: a white cell, never a subtype.</summary>
    public const string UnidentifiedLabel = "unidentified";

    /// <summary>A red cell's typical diameter: the ruler when the sidecar gives no <see cref="RedCellDiameterPx"/>.</summary>
    public const double TypicalRedCellMicrometres = 7.5;

    /// <summary>The class whose boxes are the ruler of automatic pixel-scale calibration (sidecar <c>redCellClass</c>;
    /// default: a class named RBC), or null when the model has none (no calibration then).</summary>
    public string? RedCellClass { get; init; }

    /// <summary>The model's own red-cell size at its pixel scale: the median side (√(w·h)) of its boxes of whole,
    /// confident red cells in input pixels, on input at <see cref="MicrometresPerPixel"/> (sidecar
    /// <c>redCellDiameterPx</c>; default 7.5 µm at that scale, 75 px when the scale is unknown). Automatic calibration
    /// resizes frames until the red cells come out this size.</summary>
    public double RedCellDiameterPx { get; init; } = TypicalRedCellMicrometres / 0.1;

    /// <summary>Channel index of <see cref="SubtypeOf"/> in <see cref="Classes"/>, or -1.</summary>
    public int SubtypeClassIndex => SubtypeOf is null ? -1 : IndexOf(Classes, SubtypeOf);

    /// <summary>Every label a detection can carry: each class, with the subtype class replaced by its subtypes (and
    /// the unidentified label, with a subtype stage).</summary>
    public IReadOnlyList<string> Labels => LabelsOf(Classes, SubtypeOf, Subtypes, SubtypeStage is not null);

    private static List<string> LabelsOf(IReadOnlyList<string> classes, string? subtypeOf, IReadOnlyList<string> subtypes, bool stage) =>
        classes.SelectMany(c => c == subtypeOf && subtypes.Count > 0
            ? (stage && !subtypes.Contains(UnidentifiedLabel, StringComparer.Ordinal) ? [.. subtypes, UnidentifiedLabel] : subtypes)
            : (IEnumerable<string>)[c]).ToList();

    public ModelInfo ToModelInfo() => new(Name, Version, Labels, Groups, Differential);

    public static ModelLabels Load(string path)
    {
        if (!File.Exists(path)) throw new ModelLoadException($"Model labels sidecar not found: {path}");
        string json;
        try { json = File.ReadAllText(path); }
        catch (IOException e) { throw new ModelLoadException($"Model labels sidecar {path} cannot be read: {e.Message}", e); }
        return Parse(json, path);
    }

    /// <summary>Parses and validates sidecar JSON; <paramref name="source"/> names it in error messages.</summary>
    public static ModelLabels Parse(string json, string source)
    {
        Dto? dto;
        try { dto = JsonSerializer.Deserialize<Dto>(json, JsonOptions); }
        catch (JsonException e) { throw new ModelLoadException($"Model labels {source} is not valid JSON: {e.Message}", e); }
        if (dto is null) throw new ModelLoadException($"Model labels {source} is empty");

        string Fail(string problem) => throw new ModelLoadException($"Model labels {source}: {problem}");

        var classes = dto.Classes ?? [];
        if (classes.Count == 0) Fail("\"classes\" is missing or empty");
        if (classes.Any(string.IsNullOrWhiteSpace)) Fail("\"classes\" holds an empty name");
        if (classes.Distinct(StringComparer.OrdinalIgnoreCase).Count() != classes.Count) Fail("\"classes\" holds a duplicate name");

        string? subtypeOf = dto.Subtypes?.Of;
        var subtypes = dto.Subtypes?.Labels ?? [];
        if (subtypeOf is not null && IndexOf(classes, subtypeOf) < 0) Fail($"\"subtypes.of\" names '{subtypeOf}', which is not one of the classes");
        if (subtypeOf is not null && subtypes.Count == 0) Fail("\"subtypes.labels\" is missing or empty");
        if (subtypeOf is not null) subtypeOf = classes[IndexOf(classes, subtypeOf)]; // names match case-insensitively: keep the class's spelling
        if (subtypes.Distinct(StringComparer.OrdinalIgnoreCase).Count() != subtypes.Count) Fail("\"subtypes.labels\" holds a duplicate name");

        var family = (dto.Family ?? DetectorFamilies.Default).Trim().ToLowerInvariant();
        if (!DetectorFamilies.Names.Contains(family)) Fail($"\"family\" is '{dto.Family}'; known families: {string.Join(", ", DetectorFamilies.Names)}");
        var defaults = DetectorFamilies.InputDefaultsOf(family);
        var input = dto.Input ?? new InputDto();
        if (input.SizeMultiple is <= 0) Fail("\"input.sizeMultiple\" must be positive");
        if (input.Stride is <= 0) Fail("\"input.stride\" must be positive");
        var bgr = false;
        if (input.Colour is { } colour)
        {
            bgr = colour.Equals("BGR", StringComparison.OrdinalIgnoreCase);
            if (!bgr && !colour.Equals("RGB", StringComparison.OrdinalIgnoreCase)) Fail($"\"input.colour\" is '{colour}'; expected RGB or BGR");
        }
        if (input.Layout is { } layout && !layout.Equals("NCHW", StringComparison.OrdinalIgnoreCase)) Fail($"\"input.layout\" is '{layout}'; only NCHW is supported");
        if (input.Range is { } range && (range.Count != 2 || range[0] != 0 || range[1] is not (1 or 255))) Fail("\"input.range\" must be [0, 1] or [0, 255]");
        if (input.Mean is { } mean && (mean.Count != 3 || mean.Any(m => !double.IsFinite(m)))) Fail("\"input.mean\" must list three numbers (one per channel, in the input's range)");
        if (input.Std is { } std && (std.Count != 3 || std.Any(v => !(v > 0 && double.IsFinite(v))))) Fail("\"input.std\" must list three positive numbers");
        if (input.PadValue is < 0 or > 255) Fail("\"input.padValue\" must be a pixel value in [0, 255]");
        var letterbox = defaults.Letterbox;
        if (input.Padding is { } padding)
        {
            letterbox = padding.Equals("letterbox", StringComparison.OrdinalIgnoreCase);
            if (!letterbox && !padding.Equals("bottomRight", StringComparison.OrdinalIgnoreCase)) Fail($"\"input.padding\" is '{padding}'; expected bottomRight or letterbox");
        }
        if (subtypeOf is not null && dto.Subtypes?.Stage is null && !defaults.HasSubtypeHead)
            Fail($"family '{family}' has no subtype head: \"subtypes\" needs a \"stage\" model to name them");
        var pixels = new PixelConvention(bgr, input.Range?[1] ?? 1, input.Mean, input.Std, input.PadValue ?? defaults.PadValue);

        var stage = dto.Subtypes?.Stage;
        if (stage is not null && (subtypeOf is null || string.IsNullOrWhiteSpace(stage))) Fail("\"subtypes.stage\" needs \"subtypes.of\" and a model file name");
        var labels = LabelsOf(classes, subtypeOf, subtypes, stage is not null);
        var groups = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var (group, members) in dto.Groups ?? [])
        {
            foreach (var m in members)
                if (IndexOf(labels, m) < 0) Fail($"group '{group}' names '{m}', which is not a label");
            groups[group] = members.Select(m => labels[IndexOf(labels, m)]).ToList(); // the labels' own spelling
        }
        var differential = (dto.Differential ?? []).ToList();
        foreach (var d in differential)
            if (IndexOf(labels, d) < 0) Fail($"\"differential\" names '{d}', which is not a label");
        differential = differential.Select(d => labels[IndexOf(labels, d)]).ToList();
        // The session's target counts these cells: without them no count can end (a lab's own model must say).
        if (differential.Count == 0) Fail("\"differential\" is missing or empty: name the labels whose shares make up the white-cell differential, which a session's target counts (e.g. [\"WBC\"])");

        var thresholds = new float[classes.Count];
        for (var c = 0; c < classes.Count; c++)
        {
            float? t = null;
            foreach (var (k, v) in dto.ScoreThresholds ?? [])
                if (string.Equals(k, classes[c], StringComparison.OrdinalIgnoreCase)) t = v;
            if (t is null) Fail($"\"scoreThresholds\" has no entry for class '{classes[c]}'");
            if (t is < 0 or > 1) Fail($"\"scoreThresholds.{classes[c]}\" must be in [0, 1]");
            thresholds[c] = t!.Value;
        }
        foreach (var k in (dto.ScoreThresholds ?? []).Keys)
            if (IndexOf(classes, k) < 0) Fail($"\"scoreThresholds\" names '{k}', which is not a class");
        if (dto.NmsIou is < 0 or > 1) Fail("\"nmsIou\" must be in [0, 1]");
        if (dto.MaxDetections is <= 0) Fail("\"maxDetections\" must be positive");
        if (dto.CrossClassIou is < 0 or > 1) Fail("\"crossClassIou\" must be in [0, 1]");
        if (dto.Containment is <= 0 or > 1) Fail("\"containment\" must be in (0, 1]");
        // Per class, in class order: whether a rule's list (class names) names it; null when the sidecar has no list.
        bool[]? ClassFlags(string key, List<string>? names)
        {
            if (names is null) return null;
            var flags = new bool[classes.Count];
            foreach (var n in names)
            {
                var c = IndexOf(classes, n);
                if (c < 0) Fail($"\"{key}\" names '{n}', which is not a class");
                flags[c] = true;
            }
            return flags;
        }
        var crossClassOf = ClassFlags("crossClassOf", dto.CrossClassOf);
        if (dto.PartsOf is not null && dto.Containment is null) Fail("\"partsOf\" needs \"containment\" (how far inside a box its parts lie)");
        var partsOf = ClassFlags("partsOf", dto.PartsOf);
        var testScales = dto.TestScales ?? [1.0];
        if (testScales.Count == 0 || testScales.Any(f => !(f > 0) || double.IsInfinity(f))) Fail("\"testScales\" must list positive numbers");
        if (input.MicrometresPerPixel is { } mpp && !(mpp > 0 && double.IsFinite(mpp))) Fail("\"input.micrometresPerPixel\" must be positive");
        var redCellClass = dto.RedCellClass is { } named
            ? (IndexOf(classes, named) is var r && r >= 0 ? classes[r] : Fail($"\"redCellClass\" names '{named}', which is not one of the classes"))
            : (IndexOf(classes, "RBC") is var rbc && rbc >= 0 ? classes[rbc] : null);
        if (dto.RedCellDiameterPx is { } diameter && !(diameter > 0 && double.IsFinite(diameter))) Fail("\"redCellDiameterPx\" must be a positive number of pixels");
        float[]? minSizeOfRedCell = null;
        if (dto.MinSizeOfRedCell is { Count: > 0 } minSizes)
        {
            if (redCellClass is null) Fail("\"minSizeOfRedCell\" needs a red-cell class (\"redCellClass\") to measure against");
            minSizeOfRedCell = new float[classes.Count];
            foreach (var (name, fraction) in minSizes)
            {
                var c = IndexOf(classes, name);
                if (c < 0) Fail($"\"minSizeOfRedCell\" names '{name}', which is not a class");
                if (!(fraction >= 0 && fraction < 1)) Fail($"\"minSizeOfRedCell.{name}\" must be in [0, 1)");
                minSizeOfRedCell[c] = fraction;
            }
        }

        return new ModelLabels
        {
            Name = dto.Name ?? "",
            Version = dto.Version ?? "",
            Licence = string.IsNullOrWhiteSpace(dto.Licence) ? null : dto.Licence,
            Family = family,
            InputName = input.Name ?? defaults.InputName,
            SizeMultiple = input.SizeMultiple ?? defaults.SizeMultiple,
            Pixels = pixels,
            Letterbox = letterbox,
            Stride = input.Stride ?? 4,
            MicrometresPerPixel = input.MicrometresPerPixel,
            Classes = classes,
            SubtypeOf = subtypeOf,
            Subtypes = subtypes,
            SubtypeStage = stage,
            Groups = groups,
            Differential = differential,
            ScoreThresholds = thresholds,
            NmsIou = dto.NmsIou ?? 0.5f,
            CrossClassIou = dto.CrossClassIou,
            CrossClassOf = crossClassOf,
            Containment = dto.Containment,
            PartsOf = partsOf,
            MinSizeOfRedCell = minSizeOfRedCell,
            MaxDetections = dto.MaxDetections ?? 300,
            TestScales = testScales,
            RedCellClass = redCellClass,
            RedCellDiameterPx = dto.RedCellDiameterPx ?? TypicalRedCellMicrometres / (input.MicrometresPerPixel ?? 0.1),
        };
    }

    /// <summary>Thresholds in class order: the sidecar's, or <paramref name="forAll"/> for every class, with overrides
    /// (class name, case-insensitive) applied.</summary>
    public float[] ThresholdsWith(IDictionary<string, float>? overrides, float? forAll = null)
    {
        var t = forAll is { } all ? Enumerable.Repeat(all, Classes.Count).ToArray() : ScoreThresholds.ToArray();
        if (overrides is null) return t;
        foreach (var (name, value) in overrides)
        {
            var c = IndexOf(Classes, name);
            if (c < 0) throw new ArgumentException($"Score threshold override names '{name}', which is not a model class ({string.Join(", ", Classes)})");
            t[c] = value;
        }
        return t;
    }

    private static int IndexOf(IReadOnlyList<string> list, string name)
    {
        for (var i = 0; i < list.Count; i++)
            if (string.Equals(list[i], name, StringComparison.OrdinalIgnoreCase)) return i;
        return -1;
    }

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNameCaseInsensitive = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    private sealed class Dto
    {
        public string? Name { get; set; }
        public string? Version { get; set; }
        public string? Licence { get; set; }
        public string? Family { get; set; }
        public InputDto? Input { get; set; }
        public List<string>? Classes { get; set; }
        public SubtypesDto? Subtypes { get; set; }
        public Dictionary<string, List<string>>? Groups { get; set; }
        public List<string>? Differential { get; set; }
        public Dictionary<string, float>? ScoreThresholds { get; set; }
        public float? NmsIou { get; set; }
        public float? CrossClassIou { get; set; }
        public List<string>? CrossClassOf { get; set; }
        public float? Containment { get; set; }
        public List<string>? PartsOf { get; set; }
        public Dictionary<string, float>? MinSizeOfRedCell { get; set; }
        public int? MaxDetections { get; set; }
        public List<double>? TestScales { get; set; }
        public string? RedCellClass { get; set; }
        public double? RedCellDiameterPx { get; set; }
    }

    private sealed class InputDto
    {
        public string? Name { get; set; }
        public string? Layout { get; set; }
        public string? Colour { get; set; }
        public List<double>? Range { get; set; }
        public List<double>? Mean { get; set; }
        public List<double>? Std { get; set; }
        public string? Padding { get; set; }
        public int? PadValue { get; set; }
        public int? SizeMultiple { get; set; }
        public double? MicrometresPerPixel { get; set; }
        public int? Stride { get; set; }
    }

    private sealed class SubtypesDto
    {
        public string? Of { get; set; }
        public List<string>? Labels { get; set; }
        public string? Stage { get; set; }
    }
}
