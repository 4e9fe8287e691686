using Microsoft.ML.OnnxRuntime;

namespace EdgeCounter.Detection;

/// <summary>
/// Ultralytics YOLOv8/v11 detection exports: one output [1, 4 + classes, anchors] (or transposed, [1, anchors,
/// 4 + classes]) holding per anchor the box centre x, y, width, height in input pixels and one score per class
/// (already sigmoid); input letterboxed (grey 114, centred), RGB 0..1. The graph has no NMS: the core's class-wise NMS
/// runs on the best class of each anchor, as Ultralytics' own <c>non_max_suppression</c> does.
/// </summary>
public sealed class YoloFamily : IDetectorFamily
{
    public const string FamilyName = "yolo";

    public static readonly FamilyInputDefaults Defaults = new("images", SizeMultiple: 32, Letterbox: true, PadValue: 114, HasSubtypeHead: false);

    private string[] _inputNames = [];
    private string[] _outputNames = [];
    private int _classes;

    public string Name => FamilyName;

    public ModelInput Bind(InferenceSession session, RunOptions runOptions, ModelLabels labels, string modelPath)
    {
        var input = DetectorFamilies.CheckImageInput(session, labels, modelPath, Name, batchDimension: true);
        _classes = labels.Classes.Count;
        if (session.OutputMetadata.Count != 1)
            throw DetectorFamilies.Mismatch(modelPath, Name, $"expected one output [1, 4 + classes, anchors], found {DetectorFamilies.Quoted(session.OutputMetadata.Keys)} (a segmentation or pose export?)");
        var (name, output) = session.OutputMetadata.First();
        if (!output.IsTensor || output.ElementType != typeof(float)) throw DetectorFamilies.Mismatch(modelPath, Name, $"output '{name}' must be a float32 tensor");
        if (output.Dimensions.Length != 3) throw DetectorFamilies.Mismatch(modelPath, Name, $"output '{name}' has rank {output.Dimensions.Length}, expected 3 [1, 4 + classes, anchors]");
        long rows = 4 + _classes, d1 = output.Dimensions[1], d2 = output.Dimensions[2];
        if (d1 != -1 && d1 != rows && d2 != -1 && d2 != rows)
            throw DetectorFamilies.Mismatch(modelPath, Name, $"output '{name}' is [{string.Join(", ", output.Dimensions)}]: neither side is 4 + {_classes} (box + one score per class in the sidecar)");
        _inputNames = [labels.InputName];
        _outputNames = [name];
        var bound = new ModelInput(ModelInput.FixedSizeOf(input), BatchDimension: true);
        DetectorFamilies.WarmUp(session, runOptions, bound, 2 * labels.SizeMultiple, _inputNames, _outputNames, modelPath, Name,
            (results, _, _) => Layout(results[0], out _));
        return bound;
    }

    /// <summary>Anchors of the output, and whether it is [1, anchors, 4 + classes].</summary>
    private int Layout(OrtValue value, out bool transposed)
    {
        var shape = value.GetTensorTypeAndShape().Shape;
        var rows = 4 + _classes;
        if (shape.Length != 3 || shape[0] != 1 || (shape[1] != rows && shape[2] != rows))
            throw new InvalidDataException($"output is [{string.Join(", ", shape)}], expected [1, {rows}, anchors]");
        // [1, rows, rows] is ambiguous; Ultralytics' own layout (rows first) wins.
        transposed = shape[1] != rows;
        return (int)(transposed ? shape[1] : shape[2]);
    }

    public void Infer(InferenceSession session, RunOptions runOptions, OrtValue input, InputGeometry geometry, ReadOnlySpan<float> thresholds, List<RawDetection> output)
    {
        using var results = session.Run(runOptions, _inputNames, [input], _outputNames);
        var anchors = Layout(results[0], out var transposed);
        Decode(results[0].GetTensorDataAsSpan<float>(), anchors, _classes, transposed, thresholds, output);
    }

    /// <summary>Appends, per anchor, its best class when that score is above the class's threshold (strictly).</summary>
    public static void Decode(ReadOnlySpan<float> values, int anchors, int classes, bool transposed, ReadOnlySpan<float> thresholds, List<RawDetection> output)
    {
        var rows = 4 + classes;
        if (values.Length < rows * anchors) throw new ArgumentException($"output holds {values.Length} values, expected {rows * anchors}");
        if (thresholds.Length < classes) throw new ArgumentException("one threshold per class is needed");
        // Element (row r, anchor a): [rows, anchors] or [anchors, rows].
        int rowStep = transposed ? 1 : anchors, anchorStep = transposed ? rows : 1;
        for (var a = 0; a < anchors; a++)
        {
            var at = a * anchorStep;
            int best = -1;
            var score = float.NegativeInfinity;
            for (var c = 0; c < classes; c++)
            {
                var s = values[at + (4 + c) * rowStep];
                if (s > score) { score = s; best = c; }
            }
            if (best < 0 || !(score > thresholds[best])) continue;
            float cx = values[at], cy = values[at + rowStep], w = values[at + 2 * rowStep], h = values[at + 3 * rowStep];
            output.Add(new RawDetection(best, -1, score, new BoxF(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)));
        }
    }
}
