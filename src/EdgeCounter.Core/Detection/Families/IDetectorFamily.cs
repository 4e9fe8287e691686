using Microsoft.ML.OnnxRuntime;

namespace EdgeCounter.Detection;

/// <summary>
/// What one kind of detection graph needs from the session core (<see cref="OnnxCellDetector"/>): the graph is
/// checked against the sidecar once at load, and each run's outputs become detections in input pixels. Pre-processing
/// (colour order, range, mean/std, padding) is the sidecar's, with the family's defaults
/// (<see cref="FamilyInputDefaults"/>); geometry, NMS and the size rule are the core's, shared by every family.
/// One instance per detector; not thread-safe, as the detector.
/// </summary>
public interface IDetectorFamily
{
    /// <summary>The sidecar's <c>family</c> value.</summary>
    string Name { get; }

    /// <summary>Checks the graph's inputs and outputs against <paramref name="labels"/> and runs it once on a small
    /// input (warm-up, and the dynamic shapes checked); returns how frames go in.</summary>
    /// <exception cref="ModelLoadException">The graph does not fit: the message names the model and the mismatch.</exception>
    ModelInput Bind(InferenceSession session, RunOptions runOptions, ModelLabels labels, string modelPath);

    /// <summary>Runs <paramref name="input"/> (laid out as <see cref="Bind"/> said) and appends each detection whose
    /// score is above its class's threshold, its box in input pixels (padding included).</summary>
    void Infer(InferenceSession session, RunOptions runOptions, OrtValue input, InputGeometry geometry,
        ReadOnlySpan<float> thresholds, List<RawDetection> output);
}

/// <summary>How frames go into a bound graph.</summary>
/// <param name="FixedSize">The graph's fixed input (width, height), or null when it takes any size (a multiple of
/// the sidecar's <c>sizeMultiple</c>).</param>
/// <param name="BatchDimension">Input is [1, 3, H, W] (true) or [3, H, W] (torchvision's detection exports).</param>
public sealed record ModelInput((int Width, int Height)? FixedSize, bool BatchDimension)
{
    /// <summary>The fixed (width, height) of an input [.., 3, H, W] whose last two dimensions are set, else null.</summary>
    public static (int Width, int Height)? FixedSizeOf(NodeMetadata input)
    {
        var d = input.Dimensions;
        return d.Length >= 2 && d[^1] > 0 && d[^2] > 0 ? (d[^1], d[^2]) : null;
    }

    /// <summary>The tensor shape of one width x height image for this input.</summary>
    public long[] ShapeFor(int width, int height) => BatchDimension ? [1, 3, height, width] : [3, height, width];
}

/// <summary>A family's input conventions where the sidecar sets none.</summary>
/// <param name="HasSubtypeHead">The graph itself can name white-cell subtypes (else a subtype stage must).</param>
public sealed record FamilyInputDefaults(string InputName, int SizeMultiple, bool Letterbox, int PadValue, bool HasSubtypeHead);

/// <summary>The registry of detector families, chosen by the sidecar's <c>family</c>. A new family is one class here
/// plus its tests.</summary>
public static class DetectorFamilies
{
    public const string Default = CenterNetFamily.FamilyName;

    private static readonly Dictionary<string, (FamilyInputDefaults Defaults, Func<IDetectorFamily> Create)> Registry = new(StringComparer.Ordinal)
    {
        [CenterNetFamily.FamilyName] = (CenterNetFamily.Defaults, () => new CenterNetFamily()),
        [YoloFamily.FamilyName] = (YoloFamily.Defaults, () => new YoloFamily()),
        [FasterRcnnFamily.FamilyName] = (FasterRcnnFamily.Defaults, () => new FasterRcnnFamily()),
    };

    public static IReadOnlyCollection<string> Names => Registry.Keys;

    public static FamilyInputDefaults InputDefaultsOf(string family) => Registry[family].Defaults;

    /// <exception cref="ModelLoadException">No such family.</exception>
    public static IDetectorFamily Create(string family) =>
        Registry.TryGetValue(family, out var entry) ? entry.Create()
            : throw new ModelLoadException($"Unknown detector family '{family}'; known: {string.Join(", ", Names)}");

    /// <summary>Throws a <see cref="ModelLoadException"/> naming the model and what does not fit.</summary>
    internal static Exception Mismatch(string modelPath, string family, string what) =>
        new ModelLoadException($"Model {modelPath} does not fit the contract of the '{family}' family: {what}");

    internal static string Quoted(IEnumerable<string> names) => "[" + string.Join(", ", names.Select(n => $"'{n}'")) + "]";

    /// <summary>Checks the one image input: float32, rank 4 [1|-1, 3, H, W] or, when <paramref name="batchDimension"/>
    /// is false, rank 3 [3, H, W].</summary>
    internal static NodeMetadata CheckImageInput(InferenceSession session, ModelLabels labels, string modelPath, string family, bool batchDimension)
    {
        if (session.InputMetadata.Count != 1 || !session.InputMetadata.TryGetValue(labels.InputName, out var input))
            throw Mismatch(modelPath, family, $"expected one input named '{labels.InputName}' (sidecar input.name), found {Quoted(session.InputMetadata.Keys)}");
        var rank = batchDimension ? 4 : 3;
        var layout = batchDimension ? "[1, 3, H, W]" : "[3, H, W]";
        if (!input.IsTensor || input.ElementType != typeof(float)) throw Mismatch(modelPath, family, $"input '{labels.InputName}' must be a float32 tensor");
        if (input.Dimensions.Length != rank) throw Mismatch(modelPath, family, $"input '{labels.InputName}' has rank {input.Dimensions.Length}, expected {rank} {layout}");
        if (input.Dimensions[rank - 3] is not (3 or -1)) throw Mismatch(modelPath, family, $"input '{labels.InputName}' has {input.Dimensions[rank - 3]} channels, expected 3");
        if (batchDimension && input.Dimensions[0] is not (1 or -1)) throw Mismatch(modelPath, family, $"input '{labels.InputName}' has batch {input.Dimensions[0]}, expected 1");
        return input;
    }

    /// <summary>
    /// The load's one run: a zero image of the graph's fixed size, else <paramref name="side"/> square, whose outputs
    /// <paramref name="check"/> reads (with the width and height run). A run ONNX Runtime refuses, or a check that
    /// throws <see cref="InvalidDataException"/>, is a <see cref="ModelLoadException"/> naming the model.
    /// </summary>
    internal static void WarmUp(InferenceSession session, RunOptions runOptions, ModelInput input, int side, string[] inputNames, string[] outputNames,
        string modelPath, string family, Action<IReadOnlyList<OrtValue>, int, int> check)
    {
        var (width, height) = input.FixedSize ?? (side, side);
        using var zeros = OrtValue.CreateTensorValueFromMemory(new float[3 * width * height], input.ShapeFor(width, height));
        try
        {
            using var results = session.Run(runOptions, inputNames, [zeros], outputNames);
            check(results, width, height);
        }
        catch (OnnxRuntimeException e) { throw new ModelLoadException($"Model {modelPath} fails on a {width}x{height} input: {e.Message}", e); }
        catch (InvalidDataException e) { throw Mismatch(modelPath, family, e.Message); }
    }
}
