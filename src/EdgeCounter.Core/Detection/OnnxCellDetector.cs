using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;
using OpenCvSharp;

namespace EdgeCounter.Detection;

/// <summary>
/// The cell detector on ONNX Runtime (docs/model-contract.md): CUDA when it loads, else CPU. Input and output
/// buffers are pooled per instance and reused across calls, so a steady stream of same-sized frames allocates
/// almost nothing. Not thread-safe: one caller at a time (as <see cref="ICellDetector"/> says).
/// </summary>
public sealed class OnnxCellDetector : ICellDetector
{
    public const string HeatmapOutput = "heatmap";
    public const string SizeOutput = "size";
    public const string OffsetOutput = "offset";
    public const string SubtypeOutput = "subtype";

    /// <summary>Model metadata keys that may carry the sidecar JSON when no sidecar file exists.</summary>
    public static readonly string[] LabelsMetadataKeys = ["labels", "labels.json", "edgecounter.labels"];

    private readonly ILogger _logger;
    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions = new();
    private readonly ModelLabels _labels;
    private readonly float[] _thresholds;
    private readonly string[] _labelOfClass;
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;
    private readonly bool _hasSubtypes;
    private readonly bool _evaluationMode;
    // Evaluation decodes down to a low score floor; a cell is still kept once only by detections the service would
    // report (at their operating thresholds), so the figures at the operating point are the service's.
    private readonly float[]? _suppressorFloor;
    /// <summary>The service's thresholds, also in evaluation mode (which decodes below them).</summary>
    private readonly float[] _operatingThresholds;
    private readonly int _redClassIndex;
    private readonly List<RawDetection> _raw = new(512);
    private readonly Mat _converted = new();
    private readonly Mat _resized = new();
    private readonly SubtypeClassifier? _subtypeStage;
    private readonly float _stageMinScore;
    private float[] _input = [];
    private float[] _heatmap = [];
    private float[] _size = [];
    private float[] _offset = [];
    private float[] _subtype = [];
    private bool _disposed;

    /// <summary>Loads the model and its labels, picks the execution provider and checks the contract.</summary>
    /// <exception cref="ModelLoadException">The model file or sidecar is missing or invalid, or the model does not fit the contract.</exception>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public OnnxCellDetector(DetectorOptions options, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));
        options.Validate();

        var modelPath = ModelLocator.Resolve(options.ModelPath);
        if (!File.Exists(modelPath)) throw new ModelLoadException($"Model file not found: {modelPath}");

        // Read the sidecar before the (slow) session so a bad labels file fails fast.
        var labelsPath = options.LabelsPath is null ? DetectorOptions.DefaultLabelsPath(modelPath) : ModelLocator.Resolve(options.LabelsPath);
        ModelLabels? labels = File.Exists(labelsPath) ? ModelLabels.Load(labelsPath) : null;
        if (labels is null && options.LabelsPath is not null)
            throw new ModelLoadException($"Model labels sidecar not found: {labelsPath}");

        var threads = options.EffectiveIntraOpThreads;
        try
        {
            // Inside the try: a model ONNX Runtime refuses must not leave the run options and Mats to the finalizer.
            (_session, ExecutionProvider) = OnnxSessions.Create(modelPath, options.ExecutionProvider, threads, options.AllowSpinning, _logger);
            labels ??= LabelsFromMetadata(_session, modelPath, labelsPath);
            _labels = labels;
            _hasSubtypes = labels.SubtypeOf is not null;
            _evaluationMode = options.EvaluationScoreFloor is not null;
            try
            {
                _thresholds = options.EvaluationScoreFloor is { } floor
                    ? Enumerable.Repeat(floor, labels.Classes.Count).ToArray()
                    : labels.ThresholdsWith(options.ScoreThresholdOverrides);
            }
            catch (ArgumentException e) { throw new ModelLoadException(e.Message, e); }
            if (_evaluationMode) _suppressorFloor = labels.ThresholdsWith(options.ScoreThresholdOverrides);
            _operatingThresholds = _suppressorFloor ?? _thresholds;
            _redClassIndex = labels.RedCellClass is { } red ? labels.Classes.ToList().IndexOf(red) : -1;
            ValidateContract(_session, labels, modelPath);
            _inputNames = [labels.InputName];
            _outputNames = _hasSubtypes ? [HeatmapOutput, SizeOutput, OffsetOutput, SubtypeOutput] : [HeatmapOutput, SizeOutput, OffsetOutput];
            _labelOfClass = labels.Classes.ToArray();
            InputScale = options.ResolveInputScale(labels.MicrometresPerPixel);
            PixelScale = PixelScaleStatus.Fixed(InputScale, labels.MicrometresPerPixel, options.HasConfiguredScale);
            Model = labels.ToModelInfo();
            Labels = labels;
            CheckOutputShapes(modelPath);
            if (labels.SubtypeStage is not null && options.UseSubtypeStage)
            {
                _subtypeStage = LoadSubtypeStage(labels, labelsPath, modelPath, options, threads);
                // Only cells the count will keep are looked at again (evaluation decodes far below the operating point).
                _stageMinScore = labels.ScoreThresholds[labels.SubtypeClassIndex];
            }
        }
        catch
        {
            _subtypeStage?.Dispose();
            _session?.Dispose();
            _runOptions.Dispose();
            _converted.Dispose();
            _resized.Dispose();
            throw;
        }

        _logger.LogInformation(
            "Detector {ModelName} {ModelVersion} loaded from {ModelPath} on {ExecutionProvider} ({Threads} threads), input scale {InputScale:0.###}, test scales {TestScales} in the graph, classes {Classes}, thresholds {Thresholds}",
            Model.Name, Model.Version, modelPath, ExecutionProvider, threads, InputScale,
            string.Join("/", labels.TestScales.Select(f => f.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture))),
            string.Join(",", labels.Classes), string.Join(",", _thresholds.Select(t => t.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture))));
    }

    public ModelInfo Model { get; }

    /// <summary>The white-cell subtype stage in use, or null (the detector's own subtype head names the subtypes).</summary>
    public SubtypeStageLabels? SubtypeStage => _subtypeStage?.Labels;

    /// <summary>The parsed sidecar (classes, subtypes, thresholds, size rule).</summary>
    public ModelLabels Labels { get; }

    public string ExecutionProvider { get; }

    /// <summary>The resize factor in use (frame pixels × factor = model pixels).</summary>
    public double InputScale { get; }

    /// <summary>The fixed scale of this detector (<see cref="AutoScalingDetector"/> estimates one).</summary>
    public PixelScaleStatus PixelScale { get; }

    /// <summary>The score thresholds in use, per class in <see cref="ModelLabels.Classes"/> order.</summary>
    public IReadOnlyList<float> ScoreThresholds => _thresholds;

    public DetectionResult Detect(Mat bgrImage) => Detect(bgrImage, InputScale);

    /// <summary>Detects at another resize factor than <see cref="InputScale"/> (automatic pixel-scale calibration
    /// tries several); boxes are in frame pixels as always.</summary>
    public DetectionResult Detect(Mat bgrImage, double inputScale)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(bgrImage);
        if (bgrImage.Empty()) throw new ArgumentException("the image is empty", nameof(bgrImage));
        if (!(inputScale > 0 && inputScale <= DetectorOptions.MaxInputScale))
            throw new ArgumentOutOfRangeException(nameof(inputScale), inputScale, $"the input scale must be in (0, {DetectorOptions.MaxInputScale}]");

        var start = Stopwatch.GetTimestamp();
        var geometry = InputGeometry.For(bgrImage.Cols, bgrImage.Rows, inputScale, _labels.SizeMultiple);
        var frame = ToBgr8(bgrImage);
        var source = frame;
        if (geometry.NeedsResize)
        {
            var interpolation = geometry.ResizedWidth < geometry.FrameWidth ? InterpolationFlags.Area : InterpolationFlags.Linear;
            Cv2.Resize(source, _resized, new Size(geometry.ResizedWidth, geometry.ResizedHeight), 0, 0, interpolation);
            source = _resized;
        }
        int H = geometry.PaddedHeight, W = geometry.PaddedWidth, stride = _labels.Stride;
        var output = new OutputGeometry(_labels.Classes.Count, _labels.Subtypes.Count, H / stride, W / stride, stride);
        var plane = output.Plane;
        EnsureCapacity(ref _input, 3 * H * W);
        EnsureCapacity(ref _heatmap, output.Classes * plane);
        EnsureCapacity(ref _size, 2 * plane);
        EnsureCapacity(ref _offset, 2 * plane);
        if (_hasSubtypes) EnsureCapacity(ref _subtype, output.Subtypes * plane);
        InputTensorWriter.Write(source, _input, W, H);
        var preprocessed = Stopwatch.GetTimestamp();

        var memory = OrtMemoryInfo.DefaultInstance;
        using (var input = OrtValue.CreateTensorValueFromMemory(memory, _input.AsMemory(0, 3 * H * W), [1, 3, H, W]))
        using (var heatmap = OrtValue.CreateTensorValueFromMemory(memory, _heatmap.AsMemory(0, output.Classes * plane), [1, output.Classes, output.Height, output.Width]))
        using (var size = OrtValue.CreateTensorValueFromMemory(memory, _size.AsMemory(0, 2 * plane), [1, 2, output.Height, output.Width]))
        using (var offset = OrtValue.CreateTensorValueFromMemory(memory, _offset.AsMemory(0, 2 * plane), [1, 2, output.Height, output.Width]))
        using (var subtype = _hasSubtypes ? OrtValue.CreateTensorValueFromMemory(memory, _subtype.AsMemory(0, output.Subtypes * plane), [1, output.Subtypes, output.Height, output.Width]) : null)
        {
            OrtValue[] outputs = subtype is null ? [heatmap, size, offset] : [heatmap, size, offset, subtype];
            _session.Run(_runOptions, _inputNames, [input], _outputNames, outputs);
        }
        var inferred = Stopwatch.GetTimestamp();

        var detections = Decode(geometry, output);
        var stageMs = _subtypeStage is null ? 0 : _subtypeStage.Relabel(frame, detections, _labels.SubtypeOf!, _stageMinScore);
        var done = Stopwatch.GetTimestamp();
        // The subtype stage is a second network: its time counts as inference.
        return new DetectionResult(detections,
            Stopwatch.GetElapsedTime(start, preprocessed).TotalMilliseconds,
            Stopwatch.GetElapsedTime(preprocessed, inferred).TotalMilliseconds + stageMs,
            Stopwatch.GetElapsedTime(inferred, done).TotalMilliseconds - stageMs);
    }

    private List<Detection> Decode(InputGeometry geometry, OutputGeometry output)
    {
        _raw.Clear();
        var plane = output.Plane;
        HeatmapDecoder.Decode(
            _heatmap.AsSpan(0, output.Classes * plane), _size.AsSpan(0, 2 * plane), _offset.AsSpan(0, 2 * plane),
            _hasSubtypes ? _subtype.AsSpan(0, output.Subtypes * plane) : default,
            output, _thresholds, _labels.SubtypeClassIndex, _raw);
        MultiClassNms.Apply(_raw, _labels.NmsIou, _labels.MaxDetections, limitPerClass: _evaluationMode,
            crossClassIou: _labels.CrossClassIou, containment: _labels.Containment, suppressorFloor: _suppressorFloor,
            crossClassOf: _labels.CrossClassOf);
        if (_labels.MinSizeOfRedCell is { } minSizes && _redClassIndex >= 0)
            CellSizeRule.Apply(_raw, minSizes, _redClassIndex, _operatingThresholds[_redClassIndex], geometry.ResizedWidth, geometry.ResizedHeight);
        var detections = new List<Detection>(_raw.Count);
        foreach (var r in _raw)
        {
            var box = geometry.ToFrame(r.Box);
            if (box.Width <= 0 || box.Height <= 0) continue; // wholly in the padding
            var cls = _labelOfClass[r.ClassIndex];
            var label = r.SubtypeIndex >= 0 ? _labels.Subtypes[r.SubtypeIndex] : cls;
            detections.Add(new Detection(label, cls, r.Score, box));
        }
        return detections;
    }

    private SubtypeClassifier LoadSubtypeStage(ModelLabels labels, string labelsPath, string modelPath, DetectorOptions options, int threads)
    {
        // Beside the sidecar; else beside the model (a sidecar given with --labels from elsewhere, or read from the
        // model's metadata).
        var besideLabels = Path.Combine(Path.GetDirectoryName(File.Exists(labelsPath) ? labelsPath : modelPath) ?? "", labels.SubtypeStage!);
        var besideModel = Path.Combine(Path.GetDirectoryName(modelPath) ?? "", labels.SubtypeStage!);
        var stagePath = File.Exists(besideLabels) || !File.Exists(besideModel) ? besideLabels : besideModel;
        var stageLabels = SubtypeStageLabels.Load(DetectorOptions.DefaultLabelsPath(stagePath));
        foreach (var d in stageLabels.Differential)
            if (!labels.Subtypes.Contains(d, StringComparer.Ordinal))
                throw new ModelLoadException($"Subtype stage {stagePath} names '{d}', which is not a subtype of {labelsPath} ({string.Join(", ", labels.Subtypes)})");
        var stage = new SubtypeClassifier(stagePath, stageLabels, options.ExecutionProvider, threads, options.AllowSpinning, _logger);
        _logger.LogInformation("Subtype stage {Name} {Version} loaded from {Path} on {Provider}: {Classes}; unidentified below {Threshold:0.##}",
            stageLabels.Name, stageLabels.Version, stagePath, stage.ExecutionProvider, string.Join(",", stageLabels.Classes), stageLabels.UnidentifiedBelow);
        return stage;
    }

    private Mat ToBgr8(Mat image)
    {
        if (image.Type() == MatType.CV_8UC3) return image;
        if (image.Type() == MatType.CV_8UC1) { Cv2.CvtColor(image, _converted, ColorConversionCodes.GRAY2BGR); return _converted; }
        if (image.Type() == MatType.CV_8UC4) { Cv2.CvtColor(image, _converted, ColorConversionCodes.BGRA2BGR); return _converted; }
        throw new ArgumentException($"expected an 8-bit BGR image, got {image.Type()}");
    }

    private static void EnsureCapacity(ref float[] buffer, int length)
    {
        if (buffer.Length < length) buffer = new float[length];
    }

    private static ModelLabels LabelsFromMetadata(InferenceSession session, string modelPath, string labelsPath)
    {
        var map = session.ModelMetadata.CustomMetadataMap;
        foreach (var key in LabelsMetadataKeys)
            if (map.TryGetValue(key, out var json) && !string.IsNullOrWhiteSpace(json))
                return ModelLabels.Parse(json, $"metadata '{key}' of {modelPath}");
        throw new ModelLoadException($"Model labels sidecar not found: {labelsPath} (and {modelPath} carries no labels metadata)");
    }

    private static void ValidateContract(InferenceSession session, ModelLabels labels, string modelPath)
    {
        string Problem(string what) => throw new ModelLoadException($"Model {modelPath} does not fit the contract: {what}");

        if (session.InputMetadata.Count != 1 || !session.InputMetadata.TryGetValue(labels.InputName, out var input))
            Problem($"expected one input named '{labels.InputName}', found {Names(session.InputMetadata.Keys)}");
        else
        {
            if (!input.IsTensor || input.ElementType != typeof(float)) Problem($"input '{labels.InputName}' must be a float32 tensor");
            if (input.Dimensions.Length != 4) Problem($"input '{labels.InputName}' has rank {input.Dimensions.Length}, expected 4 (NCHW)");
            if (input.Dimensions[1] != 3) Problem($"input '{labels.InputName}' has {input.Dimensions[1]} channels, expected 3 (RGB)");
            if (input.Dimensions[0] is not (1 or -1)) Problem($"input '{labels.InputName}' has batch {input.Dimensions[0]}, expected 1");
        }

        void Output(string name, int channels, string meaning)
        {
            if (!session.OutputMetadata.TryGetValue(name, out var o))
                Problem($"output '{name}' is missing (outputs: {Names(session.OutputMetadata.Keys)})");
            else
            {
                if (!o.IsTensor || o.ElementType != typeof(float)) Problem($"output '{name}' must be a float32 tensor");
                if (o.Dimensions.Length != 4) Problem($"output '{name}' has rank {o.Dimensions.Length}, expected 4");
                if (o.Dimensions[1] != -1 && o.Dimensions[1] != channels)
                    Problem($"output '{name}' has {o.Dimensions[1]} channels, expected {channels} ({meaning})");
            }
        }
        Output(HeatmapOutput, labels.Classes.Count, "one per class in the sidecar");
        Output(SizeOutput, 2, "width, height");
        Output(OffsetOutput, 2, "x, y");
        if (labels.SubtypeOf is not null) Output(SubtypeOutput, labels.Subtypes.Count, "one per subtype in the sidecar");
    }

    /// <summary>One small run at load: checks dynamic dimensions against the sidecar (stride, channels) and warms up.</summary>
    private void CheckOutputShapes(string modelPath)
    {
        var side = 2 * _labels.SizeMultiple;
        var data = new float[3 * side * side];
        using var input = OrtValue.CreateTensorValueFromMemory(data, [1, 3, side, side]);
        IDisposableReadOnlyCollection<OrtValue> results;
        try { results = _session.Run(_runOptions, _inputNames, [input], _outputNames); }
        catch (OnnxRuntimeException e) { throw new ModelLoadException($"Model {modelPath} fails on a {side}x{side} input: {e.Message}", e); }
        using (results)
        {
            var grid = side / _labels.Stride;
            int[] channels = [_labels.Classes.Count, 2, 2, _labels.Subtypes.Count];
            var i = 0;
            foreach (var value in results)
            {
                var shape = value.GetTensorTypeAndShape().Shape;
                long[] expected = [1, channels[i], grid, grid];
                if (!shape.SequenceEqual(expected))
                    throw new ModelLoadException(
                        $"Model {modelPath} does not fit the contract: output '{_outputNames[i]}' is [{string.Join(", ", shape)}] for a {side}x{side} input, expected [{string.Join(", ", expected)}] (stride {_labels.Stride})");
                i++;
            }
        }
    }

    private static string Names(IEnumerable<string> names) => "[" + string.Join(", ", names.Select(n => $"'{n}'")) + "]";

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _subtypeStage?.Dispose();
        _session.Dispose();
        _runOptions.Dispose();
        _converted.Dispose();
        _resized.Dispose();
    }
}
