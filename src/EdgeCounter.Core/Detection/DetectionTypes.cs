namespace EdgeCounter.Detection;

/// <summary>An axis-aligned box in image pixels, corners inclusive-exclusive.</summary>
public readonly record struct BoxF(float X1, float Y1, float X2, float Y2)
{
    public float Width => MathF.Max(0, X2 - X1);
    public float Height => MathF.Max(0, Y2 - Y1);
    public float Area => Width * Height;
    public float CenterX => (X1 + X2) / 2;
    public float CenterY => (Y1 + Y2) / 2;

    /// <summary>A box within this many pixels of the image edge is taken as (possibly) cut by it: detectors do not
    /// always draw a cut cell's box to the very edge.</summary>
    public const float EdgeMargin = 3;

    /// <summary>Whether the box may be cut by the edge of a <paramref name="width"/> x <paramref name="height"/> image
    /// (within <see cref="EdgeMargin"/>): it then shows only part of its cell.</summary>
    public bool IsCutBy(float width, float height) => IsCutBy(0, 0, width, height);

    /// <summary>Whether the box may be cut by the edge of the image lying at (<paramref name="left"/>,
    /// <paramref name="top"/>), <paramref name="width"/> x <paramref name="height"/> (a letterboxed input).</summary>
    public bool IsCutBy(float left, float top, float width, float height) =>
        X1 <= left + EdgeMargin || Y1 <= top + EdgeMargin || X2 >= left + width - EdgeMargin || Y2 >= top + height - EdgeMargin;

    public float IoU(in BoxF other)
    {
        var iw = MathF.Min(X2, other.X2) - MathF.Max(X1, other.X1);
        var ih = MathF.Min(Y2, other.Y2) - MathF.Max(Y1, other.Y1);
        if (iw <= 0 || ih <= 0) return 0;
        var inter = iw * ih;
        return inter / (Area + other.Area - inter);
    }

    /// <summary>The fraction of this box's area that lies inside <paramref name="other"/> (0 for an empty box).</summary>
    public float FractionInside(in BoxF other)
    {
        var iw = MathF.Min(X2, other.X2) - MathF.Max(X1, other.X1);
        var ih = MathF.Min(Y2, other.Y2) - MathF.Max(Y1, other.Y1);
        if (iw <= 0 || ih <= 0 || Area <= 0) return 0;
        return iw * ih / Area;
    }

    public BoxF Scale(float sx, float sy) => new(X1 * sx, Y1 * sy, X2 * sx, Y2 * sy);
}

/// <summary>One detected cell.</summary>
/// <param name="Label">The finest label the model gives (a WBC subtype such as "neutrophil", or "RBC").</param>
/// <param name="Class">The detector class the box came from ("WBC", "RBC", "Platelets").</param>
/// <param name="Score">Detection confidence, 0..1.</param>
/// <param name="Box">Box in the pixels of the image given to the detector.</param>
public sealed record Detection(string Label, string Class, float Score, BoxF Box);

/// <summary>The detections of one image and the time each step took.</summary>
public sealed record DetectionResult(
    IReadOnlyList<Detection> Detections,
    double PreprocessMs,
    double InferenceMs,
    double PostprocessMs)
{
    public double TotalMs => PreprocessMs + InferenceMs + PostprocessMs;
}

/// <summary>What the loaded model is and what it can say.</summary>
/// <param name="Labels">Every label a detection can carry, in report order.</param>
/// <param name="Groups">Report groups: group name to the labels it adds up (e.g. WBC = the five subtypes).</param>
/// <param name="DifferentialLabels">Labels whose shares make up the white-cell differential.</param>
public sealed record ModelInfo(
    string Name,
    string Version,
    IReadOnlyList<string> Labels,
    IReadOnlyDictionary<string, IReadOnlyList<string>> Groups,
    IReadOnlyList<string> DifferentialLabels);

/// <summary>Finds cells in an image. One real implementation (ONNX Runtime); tests use it with real models.</summary>
public interface ICellDetector : IDisposable
{
    ModelInfo Model { get; }

    /// <summary>"CUDA" or "CPU": the execution provider actually in use.</summary>
    string ExecutionProvider { get; }

    /// <summary>The pixel scale in use and where it comes from (may be read from any thread).</summary>
    PixelScaleStatus PixelScale { get; }

    /// <summary>Detects cells in a BGR 8-bit image. Not thread-safe: one caller at a time.</summary>
    DetectionResult Detect(OpenCvSharp.Mat bgrImage);
}
