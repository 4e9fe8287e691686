using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;
using OpenCvSharp;

namespace EdgeCounter.Detection;

/// <summary>
/// The sidecar of a subtype stage (<c>cellnet-subtypes.labels.json</c>, docs/model-contract.md): a classifier that
/// looks at each white cell again, in a square crop around its box, and names its subtype, or says it is not sure.
/// </summary>
public sealed record SubtypeStageLabels
{
    public string Name { get; init; } = "";
    public string Version { get; init; } = "";
    public string InputName { get; init; } = "crop";
    public string OutputName { get; init; } = "probabilities";
    /// <summary>Side of the square crop the network takes, in pixels.</summary>
    public int Size { get; init; } = 96;
    /// <summary>The crop's side as a multiple of the box's longer side (the cell and some of its surroundings).</summary>
    public double Context { get; init; } = 1.5;
    /// <summary>The classifier's classes, in output order (the differential's and others, e.g. "platelet").</summary>
    public IReadOnlyList<string> Classes { get; init; } = [];
    /// <summary>The classes a cell may be given; a cell most like any other class is unidentified.</summary>
    public IReadOnlyList<string> Differential { get; init; } = [];
    /// <summary>Calibrated probability below which the cell is unidentified rather than guessed.</summary>
    public float UnidentifiedBelow { get; init; } = 0.5f;

    /// <summary>Classes that are real cells outside the white-cell differential, with the label a marrow count gives them
    /// (sidecar <c>precursors</c>, e.g. "ig": "immature_granulocyte"); unidentified unless precursors are named.</summary>
    public IReadOnlyDictionary<string, string> Precursors { get; init; } = new Dictionary<string, string>();

    /// <summary>Name <see cref="Precursors"/> instead of calling them unidentified (Detector:NamePrecursors).</summary>
    public bool NamePrecursors { get; init; }

    public static SubtypeStageLabels Load(string path)
    {
        if (!File.Exists(path)) throw new ModelLoadException($"Subtype stage sidecar not found: {path}");
        Dto? dto;
        try { dto = JsonSerializer.Deserialize<Dto>(File.ReadAllText(path), new JsonSerializerOptions { PropertyNameCaseInsensitive = true }); }
        catch (Exception e) when (e is JsonException or IOException) { throw new ModelLoadException($"Subtype stage sidecar {path} cannot be read: {e.Message}", e); }
        string Fail(string problem) => throw new ModelLoadException($"Subtype stage sidecar {path}: {problem}");
        if (dto is null) Fail("empty");
        var classes = dto!.Classes ?? [];
        if (classes.Count == 0) Fail("\"classes\" is missing or empty");
        var differential = dto.Differential ?? [];
        if (differential.Count == 0) Fail("\"differential\" is missing or empty");
        foreach (var d in differential)
            if (!classes.Contains(d, StringComparer.Ordinal)) Fail($"\"differential\" names '{d}', which is not one of the classes");
        var input = dto.Input ?? new InputDto();
        if (input.Size is <= 0 or > 1024) Fail("\"input.size\" must be in 1..1024");
        if (input.Context is { } c && !(c >= 1 && c <= 4)) Fail("\"input.context\" must be in [1, 4]");
        if (input.Colour is { } colour && !colour.Equals("RGB", StringComparison.OrdinalIgnoreCase)) Fail($"\"input.colour\" is '{colour}'; only RGB is supported");
        if (dto.UnidentifiedBelow is { } u && !(u >= 0 && u <= 1)) Fail("\"unidentifiedBelow\" must be in [0, 1]");
        var precursors = dto.Precursors ?? [];
        foreach (var (cls, label) in precursors)
        {
            if (!classes.Contains(cls, StringComparer.Ordinal) || differential.Contains(cls, StringComparer.Ordinal))
                Fail($"\"precursors\" names '{cls}', which is not a class outside the differential");
            if (string.IsNullOrWhiteSpace(label) || differential.Contains(label, StringComparer.Ordinal) || label == ModelLabels.UnidentifiedLabel)
                Fail($"\"precursors\" gives '{cls}' the label '{label}', which is empty or already a label");
        }
        return new SubtypeStageLabels
        {
            Name = dto.Name ?? "", Version = dto.Version ?? "",
            InputName = input.Name ?? "crop", OutputName = dto.Output ?? "probabilities",
            Size = input.Size ?? 96, Context = input.Context ?? 1.5,
            Classes = classes, Differential = differential,
            UnidentifiedBelow = dto.UnidentifiedBelow ?? 0.5f,
            Precursors = precursors,
        };
    }

    private sealed class Dto
    {
        public string? Name { get; set; }
        public string? Version { get; set; }
        public InputDto? Input { get; set; }
        public string? Output { get; set; }
        public List<string>? Classes { get; set; }
        public List<string>? Differential { get; set; }
        public float? UnidentifiedBelow { get; set; }
        public Dictionary<string, string>? Precursors { get; set; }
    }

    private sealed class InputDto
    {
        public string? Name { get; set; }
        public string? Colour { get; set; }
        public int? Size { get; set; }
        public double? Context { get; set; }
    }
}

/// <summary>
/// The second stage of the white-cell differential: each white-cell detection of a frame is cropped (a square of
/// <see cref="SubtypeStageLabels.Context"/> times its box, resized to the network's size, black outside the frame),
/// all crops of the frame go through the classifier in one batch, and each cell gets the most probable subtype of
/// the differential, or <see cref="ModelLabels.UnidentifiedLabel"/> when the calibrated probability is below
/// the sidecar's threshold or the cell looks most like something else (a platelet clump, an erythroblast).
/// Not thread-safe, like the detector that owns it.
/// </summary>
public sealed class SubtypeClassifier : IDisposable
{
    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions = new();
    private readonly Mat _crop = new();
    private float[] _input = [];
    private float[] _output = [];
    private bool _disposed;

    public SubtypeClassifier(string modelPath, SubtypeStageLabels labels, ExecutionProviderPreference provider, int threads, bool allowSpinning, bool cpuMemoryArena, ILogger logger)
    {
        Labels = labels;
        if (!File.Exists(modelPath)) throw new ModelLoadException($"Subtype stage model not found: {modelPath}");
        try
        {
            (_session, ExecutionProvider) = OnnxSessions.Create(modelPath, provider, threads, allowSpinning, cpuMemoryArena, logger);
            if (!_session.InputMetadata.TryGetValue(labels.InputName, out var input) || input.Dimensions.Length != 4 || input.Dimensions[1] != 3)
                throw new ModelLoadException($"Subtype stage {modelPath} does not fit its sidecar: expected input '{labels.InputName}' [N, 3, {labels.Size}, {labels.Size}]");
            if (!_session.OutputMetadata.TryGetValue(labels.OutputName, out var output) || output.Dimensions.Length != 2 ||
                (output.Dimensions[1] != -1 && output.Dimensions[1] != labels.Classes.Count))
                throw new ModelLoadException($"Subtype stage {modelPath} does not fit its sidecar: expected output '{labels.OutputName}' [N, {labels.Classes.Count}]");
        }
        catch
        {
            _session?.Dispose();
            _runOptions.Dispose();
            _crop.Dispose();
            throw;
        }
    }

    public SubtypeStageLabels Labels { get; }

    public string ExecutionProvider { get; }

    /// <summary>The labels a cell can get: the differential's, then the unidentified label.</summary>
    public IReadOnlyList<string> OutputLabels => [.. Labels.Differential, ModelLabels.UnidentifiedLabel, .. NamedPrecursors(Labels)];

    /// <summary>The precursor labels the stage gives (none unless <see cref="SubtypeStageLabels.NamePrecursors"/>).</summary>
    public static IReadOnlyList<string> NamedPrecursors(SubtypeStageLabels labels) => labels.NamePrecursors ? labels.Precursors.Values.Distinct().ToArray() : [];

    /// <summary>Replaces the label of each detection of <paramref name="subtypeClass"/> scoring at least
    /// <paramref name="minScore"/> by the stage's verdict. Boxes are in the pixels of <paramref name="bgrFrame"/>.
    /// Returns the time it took, in milliseconds.</summary>
    public double Relabel(Mat bgrFrame, List<Detection> detections, string subtypeClass, float minScore = 0)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var start = Stopwatch.GetTimestamp();
        var cells = new List<int>();
        for (var i = 0; i < detections.Count; i++)
            if (detections[i].Class == subtypeClass && detections[i].Score >= minScore) cells.Add(i);
        if (cells.Count == 0) return 0;
        var probabilities = Run(bgrFrame, cells.Select(i => detections[i].Box).ToList());
        var classes = Labels.Classes.Count;
        for (var k = 0; k < cells.Count; k++)
            detections[cells[k]] = detections[cells[k]] with { Label = Decide(Labels, probabilities.AsSpan(k * classes, classes)) };
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    /// <summary>The stage's class probabilities for cells at <paramref name="boxes"/> (frame pixels), one row of
    /// <see cref="SubtypeStageLabels.Classes"/> per box, in batches of at most <see cref="MaxBatch"/>. The returned buffer is reused by the next call.</summary>
    public ReadOnlySpan<float> Probabilities(Mat bgrFrame, IReadOnlyList<BoxF> boxes)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return boxes.Count == 0 ? [] : Run(bgrFrame, boxes).AsSpan(0, boxes.Count * Labels.Classes.Count);
    }

    /// <summary>Cells per run of the network. ONNX Runtime's arena keeps what its largest run needed, so one batch of
    /// every white cell would raise the service's memory for good at the first crowded (marrow) field; batches of at
    /// most this many bound it from the first fields on, at no cost for the usual few cells.</summary>
    public const int MaxBatch = 16;

    private float[] Run(Mat bgrFrame, IReadOnlyList<BoxF> boxes)
    {
        int size = Labels.Size, plane = size * size, classes = Labels.Classes.Count, n = boxes.Count;
        var batch = Math.Min(n, MaxBatch);
        if (_input.Length < batch * 3 * plane) _input = new float[batch * 3 * plane];
        if (_output.Length < n * classes) _output = new float[n * classes];
        var memory = OrtMemoryInfo.DefaultInstance;
        for (var first = 0; first < n; first += batch)
        {
            var count = Math.Min(batch, n - first);
            for (var k = 0; k < count; k++)
            {
                CropCell(bgrFrame, boxes[first + k], Labels.Context, size, _crop);
                InputTensorWriter.Write(_crop, _input.AsSpan(k * 3 * plane, 3 * plane), size, size);
            }
            using var input = OrtValue.CreateTensorValueFromMemory(memory, _input.AsMemory(0, count * 3 * plane), [count, 3, size, size]);
            using var output = OrtValue.CreateTensorValueFromMemory(memory, _output.AsMemory(first * classes, count * classes), [count, classes]);
            _session.Run(_runOptions, [Labels.InputName], [input], [Labels.OutputName], [output]);
        }
        return _output;
    }

    /// <summary>The most probable class when it is one of the differential's (or a precursor, when they are named) and
    /// reaches the threshold, else unidentified.</summary>
    public static string Decide(SubtypeStageLabels labels, ReadOnlySpan<float> probabilities)
    {
        var best = 0;
        for (var c = 1; c < probabilities.Length; c++) if (probabilities[c] > probabilities[best]) best = c;
        var name = labels.Classes[best];
        if (probabilities[best] < labels.UnidentifiedBelow) return ModelLabels.UnidentifiedLabel;
        if (labels.Differential.Contains(name, StringComparer.Ordinal)) return name;
        return labels.NamePrecursors && labels.Precursors.TryGetValue(name, out var precursor) ? precursor : ModelLabels.UnidentifiedLabel;
    }

    /// <summary>The square of side context × the box's longer side around its centre, resized to size × size
    /// (bilinear, black outside the frame): the same affine warp the training recipe uses (subtypes.cell_crop).</summary>
    public static void CropCell(Mat bgrFrame, BoxF box, double context, int size, Mat destination)
    {
        var side = Math.Max(1e-3, Math.Max(box.Width, box.Height) * context);
        var s = size / side;
        using var m = new Mat(2, 3, MatType.CV_64FC1);
        m.Set(0, 0, s); m.Set(0, 1, 0.0); m.Set(0, 2, size / 2.0 - s * box.CenterX);
        m.Set(1, 0, 0.0); m.Set(1, 1, s); m.Set(1, 2, size / 2.0 - s * box.CenterY);
        Cv2.WarpAffine(bgrFrame, destination, m, new Size(size, size), InterpolationFlags.Linear, BorderTypes.Constant, Scalar.Black);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _session.Dispose();
        _runOptions.Dispose();
        _crop.Dispose();
    }
}
