using Microsoft.ML.OnnxRuntime;

namespace EdgeCounter.Detection;

/// <summary>
/// torchvision's detection models exported to ONNX (Faster R-CNN, RetinaNet, FCOS, SSD: the same outputs): input one
/// image [3, H, W], RGB 0..1 (the graph normalises and resizes it itself and maps boxes back to the input); outputs
/// <c>boxes</c> [N, 4] (x1, y1, x2, y2 in input pixels), <c>labels</c> [N] int64 (1-based: 0 is torchvision's
/// background, so label k is the sidecar's class k - 1) and <c>scores</c> [N], after the graph's own NMS. Outputs are
/// found by those names, else by position (torchvision returns them in that order).
/// </summary>
public sealed class FasterRcnnFamily : IDetectorFamily
{
    public const string FamilyName = "fasterrcnn";

    public static readonly FamilyInputDefaults Defaults = new("images", SizeMultiple: 1, Letterbox: false, PadValue: 0, HasSubtypeHead: false);

    private string[] _inputNames = [];
    private string[] _outputNames = [];
    private int _classes;

    public string Name => FamilyName;

    public ModelInput Bind(InferenceSession session, RunOptions runOptions, ModelLabels labels, string modelPath)
    {
        var input = DetectorFamilies.CheckImageInput(session, labels, modelPath, Name, batchDimension: false);
        _classes = labels.Classes.Count;
        var outputs = session.OutputMetadata;
        string[] names = ["boxes", "labels", "scores"];
        if (!names.All(outputs.ContainsKey))
        {
            if (outputs.Count != 3)
                throw DetectorFamilies.Mismatch(modelPath, Name, $"expected outputs 'boxes', 'labels', 'scores', found {DetectorFamilies.Quoted(outputs.Keys)}");
            names = outputs.Keys.ToArray();
        }
        void Check(string name, Type type, int rank, string what)
        {
            var o = outputs[name];
            if (!o.IsTensor || o.ElementType != type || o.Dimensions.Length != rank)
                throw DetectorFamilies.Mismatch(modelPath, Name, $"output '{name}' must be {what} ({(o.IsTensor ? $"{o.ElementType.Name} of rank {o.Dimensions.Length}" : "not a tensor")})");
        }
        Check(names[0], typeof(float), 2, "float32 boxes [N, 4]");
        Check(names[1], typeof(long), 1, "int64 labels [N]");
        Check(names[2], typeof(float), 1, "float32 scores [N]");
        _inputNames = [labels.InputName];
        _outputNames = names;
        var bound = new ModelInput(ModelInput.FixedSizeOf(input), BatchDimension: false);
        DetectorFamilies.WarmUp(session, runOptions, bound, 64, _inputNames, _outputNames, modelPath, Name, (results, _, _) => Count(results));
        return bound;
    }

    private static int Count(IReadOnlyList<OrtValue> results)
    {
        var boxes = results[0].GetTensorTypeAndShape().Shape;
        var n = results[2].GetTensorTypeAndShape().Shape[0];
        if (boxes.Length != 2 || boxes[1] != 4 || boxes[0] != n || results[1].GetTensorTypeAndShape().Shape[0] != n)
            throw new InvalidDataException($"boxes [{string.Join(", ", boxes)}], labels and scores [{n}] do not agree");
        return (int)n;
    }

    public void Infer(InferenceSession session, RunOptions runOptions, OrtValue input, InputGeometry geometry, ReadOnlySpan<float> thresholds, List<RawDetection> output)
    {
        using var results = session.Run(runOptions, _inputNames, [input], _outputNames);
        Decode(results[0].GetTensorDataAsSpan<float>(), results[1].GetTensorDataAsSpan<long>(), results[2].GetTensorDataAsSpan<float>(),
            Count(results), _classes, thresholds, output);
    }

    /// <summary>Appends each detection of a known class (label 1..classes) whose score is above its threshold.</summary>
    public static void Decode(ReadOnlySpan<float> boxes, ReadOnlySpan<long> labels, ReadOnlySpan<float> scores, int count, int classes,
        ReadOnlySpan<float> thresholds, List<RawDetection> output)
    {
        for (var i = 0; i < count; i++)
        {
            var c = labels[i] - 1;
            if (c < 0 || c >= classes) continue; // background, or a class the sidecar does not name
            var score = scores[i];
            if (!(score > thresholds[(int)c])) continue;
            output.Add(new RawDetection((int)c, -1, score, new BoxF(boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2], boxes[4 * i + 3])));
        }
    }
}
