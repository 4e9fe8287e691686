using Microsoft.ML.OnnxRuntime;

namespace EdgeCounter.Detection;

/// <summary>
/// EdgeCounter's own graphs (docs/model-contract.md): a peak-filtered class heatmap with size and offset maps at the
/// sidecar's stride, and an optional white-cell subtype map. The outputs are bound to buffers pooled per instance, so
/// a steady stream of same-sized frames allocates nothing.
/// </summary>
public sealed class CenterNetFamily : IDetectorFamily
{
    public const string FamilyName = "centernet";
    public const string HeatmapOutput = "heatmap";
    public const string SizeOutput = "size";
    public const string OffsetOutput = "offset";
    public const string SubtypeOutput = "subtype";

    public static readonly FamilyInputDefaults Defaults = new("image", SizeMultiple: 32, Letterbox: false, PadValue: 0, HasSubtypeHead: true);

    private ModelLabels _labels = null!;
    private string[] _inputNames = [];
    private string[] _outputNames = [];
    private bool _hasSubtypes;
    private float[] _heatmap = [];
    private float[] _size = [];
    private float[] _offset = [];
    private float[] _subtype = [];

    public string Name => FamilyName;

    public ModelInput Bind(InferenceSession session, RunOptions runOptions, ModelLabels labels, string modelPath)
    {
        _labels = labels;
        _hasSubtypes = labels.SubtypeOf is not null;
        var input = DetectorFamilies.CheckImageInput(session, labels, modelPath, Name, batchDimension: true);
        void Output(string name, int channels, string meaning)
        {
            if (!session.OutputMetadata.TryGetValue(name, out var o))
                throw DetectorFamilies.Mismatch(modelPath, Name, $"output '{name}' is missing (outputs: {DetectorFamilies.Quoted(session.OutputMetadata.Keys)})");
            if (!o.IsTensor || o.ElementType != typeof(float)) throw DetectorFamilies.Mismatch(modelPath, Name, $"output '{name}' must be a float32 tensor");
            if (o.Dimensions.Length != 4) throw DetectorFamilies.Mismatch(modelPath, Name, $"output '{name}' has rank {o.Dimensions.Length}, expected 4");
            if (o.Dimensions[1] != -1 && o.Dimensions[1] != channels)
                throw DetectorFamilies.Mismatch(modelPath, Name, $"output '{name}' has {o.Dimensions[1]} channels, expected {channels} ({meaning})");
        }
        Output(HeatmapOutput, labels.Classes.Count, "one per class in the sidecar");
        Output(SizeOutput, 2, "width, height");
        Output(OffsetOutput, 2, "x, y");
        if (_hasSubtypes) Output(SubtypeOutput, labels.Subtypes.Count, "one per subtype in the sidecar");
        _inputNames = [labels.InputName];
        _outputNames = _hasSubtypes ? [HeatmapOutput, SizeOutput, OffsetOutput, SubtypeOutput] : [HeatmapOutput, SizeOutput, OffsetOutput];
        var bound = new ModelInput(ModelInput.FixedSizeOf(input), BatchDimension: true);
        // The dynamic dimensions against the sidecar (stride, channels).
        DetectorFamilies.WarmUp(session, runOptions, bound, 2 * labels.SizeMultiple, _inputNames, _outputNames, modelPath, Name, (results, width, height) =>
        {
            int[] channels = [labels.Classes.Count, 2, 2, labels.Subtypes.Count];
            for (var i = 0; i < results.Count; i++)
            {
                var shape = results[i].GetTensorTypeAndShape().Shape;
                long[] expected = [1, channels[i], height / labels.Stride, width / labels.Stride];
                if (!shape.SequenceEqual(expected))
                    throw new InvalidDataException(
                        $"output '{_outputNames[i]}' is [{string.Join(", ", shape)}] for a {width}x{height} input, expected [{string.Join(", ", expected)}] (stride {labels.Stride})");
            }
        });
        return bound;
    }

    public void Infer(InferenceSession session, RunOptions runOptions, OrtValue input, InputGeometry geometry, ReadOnlySpan<float> thresholds, List<RawDetection> output)
    {
        var stride = _labels.Stride;
        var grid = new OutputGeometry(_labels.Classes.Count, _labels.Subtypes.Count, geometry.PaddedHeight / stride, geometry.PaddedWidth / stride, stride);
        var plane = grid.Plane;
        EnsureCapacity(ref _heatmap, grid.Classes * plane);
        EnsureCapacity(ref _size, 2 * plane);
        EnsureCapacity(ref _offset, 2 * plane);
        if (_hasSubtypes) EnsureCapacity(ref _subtype, grid.Subtypes * plane);
        var memory = OrtMemoryInfo.DefaultInstance;
        using (var heatmap = OrtValue.CreateTensorValueFromMemory(memory, _heatmap.AsMemory(0, grid.Classes * plane), [1, grid.Classes, grid.Height, grid.Width]))
        using (var size = OrtValue.CreateTensorValueFromMemory(memory, _size.AsMemory(0, 2 * plane), [1, 2, grid.Height, grid.Width]))
        using (var offset = OrtValue.CreateTensorValueFromMemory(memory, _offset.AsMemory(0, 2 * plane), [1, 2, grid.Height, grid.Width]))
        using (var subtype = _hasSubtypes ? OrtValue.CreateTensorValueFromMemory(memory, _subtype.AsMemory(0, grid.Subtypes * plane), [1, grid.Subtypes, grid.Height, grid.Width]) : null)
        {
            OrtValue[] outputs = subtype is null ? [heatmap, size, offset] : [heatmap, size, offset, subtype];
            session.Run(runOptions, _inputNames, [input], _outputNames, outputs);
        }
        HeatmapDecoder.Decode(
            _heatmap.AsSpan(0, grid.Classes * plane), _size.AsSpan(0, 2 * plane), _offset.AsSpan(0, 2 * plane),
            _hasSubtypes ? _subtype.AsSpan(0, grid.Subtypes * plane) : default,
            grid, thresholds, _labels.SubtypeClassIndex, output);
    }

    private static void EnsureCapacity(ref float[] buffer, int length)
    {
        if (buffer.Length < length) buffer = new float[length];
    }
}
