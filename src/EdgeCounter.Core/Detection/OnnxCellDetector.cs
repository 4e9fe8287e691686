using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;
using OpenCvSharp;

namespace EdgeCounter.Detection;

/// <summary>
/// The cell detector on ONNX Runtime (docs/model-contract.md), the session core of every model family: CUDA when it
/// loads, else CPU; input geometry and pixel conventions from the sidecar; the family's adapter
/// (<see cref="IDetectorFamily"/>, chosen by the sidecar's <c>family</c>) checks the graph and decodes its outputs;
/// NMS, the size rule and the subtype stage are shared. The input buffer is pooled per instance and reused across
/// calls. Not thread-safe: one caller at a time (as <see cref="ICellDetector"/> says).
/// </summary>
public sealed class OnnxCellDetector : ICellDetector
{
    /// <summary>Model metadata keys that may carry the sidecar JSON when no sidecar file exists.</summary>
    public static readonly string[] LabelsMetadataKeys = ["labels", "labels.json", "edgecounter.labels"];

    private readonly ILogger _logger;
    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions = new();
    private readonly ModelLabels _labels;
    private readonly float[] _thresholds;
    private readonly string[] _labelOfClass;
    private readonly IDetectorFamily _family;
    private readonly ModelInput _modelInput;
    private readonly bool _evaluationMode;
    // Evaluation decodes down to a low score floor; a cell is still kept once only by detections the service would
    // report (at their operating thresholds), so the figures at the operating point are the service's.
    private readonly float[]? _suppressorFloor;
    /// <summary>The service's thresholds, also in evaluation mode (which decodes below them).</summary>
    private readonly float[] _operatingThresholds;
    private readonly int _redClassIndex;
    private readonly List<RawDetection> _raw = new(512);
    private readonly Mat _converted = new();
    private readonly FrameResizer _resizer = new();
    private readonly SubtypeClassifier? _subtypeStage;
    private readonly float _stageMinScore;
    private float[] _input = [];
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
            (_session, ExecutionProvider) = OnnxSessions.Create(modelPath, options.ExecutionProvider, threads, options.AllowSpinning, options.CpuMemoryArena, _logger);
            labels ??= LabelsFromMetadata(_session, modelPath, labelsPath);
            _labels = labels;
            _evaluationMode = options.EvaluationScoreFloor is not null;
            try
            {
                var operating = options.OperatingThresholds(labels);
                _thresholds = options.EvaluationScoreFloor is { } floor ? Enumerable.Repeat(floor, labels.Classes.Count).ToArray() : operating;
                if (_evaluationMode) _suppressorFloor = operating;
            }
            catch (ArgumentException e) { throw new ModelLoadException(e.Message, e); }
            _operatingThresholds = _suppressorFloor ?? _thresholds;
            _redClassIndex = labels.RedCellClass is { } red ? labels.Classes.ToList().IndexOf(red) : -1;
            _family = DetectorFamilies.Create(labels.Family);
            _modelInput = _family.Bind(_session, _runOptions, labels, modelPath);
            _labelOfClass = labels.Classes.ToArray();
            InputScale = options.ResolveInputScale(labels.MicrometresPerPixel);
            PixelScale = PixelScaleStatus.Fixed(InputScale, labels.MicrometresPerPixel, options.HasConfiguredScale);
            Model = labels.ToModelInfo();
            Labels = labels;
            if (labels.SubtypeStage is not null && options.UseSubtypeStage)
            {
                _subtypeStage = LoadSubtypeStage(labels, labelsPath, modelPath, options, threads);
                // Precursors the stage names (marrow) are labels of this model too.
                if (SubtypeClassifier.NamedPrecursors(_subtypeStage.Labels) is { Count: > 0 } precursors)
                    Model = Model with { Labels = [.. Model.Labels, .. precursors.Where(p => !Model.Labels.Contains(p))] };
                // Only cells the count will keep are looked at again (evaluation decodes far below the operating point).
                _stageMinScore = _operatingThresholds[labels.SubtypeClassIndex];
            }
        }
        catch
        {
            _subtypeStage?.Dispose();
            _session?.Dispose();
            _runOptions.Dispose();
            _converted.Dispose();
            _resizer.Dispose();
            throw;
        }

        _logger.LogInformation(
            "Detector {ModelName} {ModelVersion} ({Family}) loaded from {ModelPath} on {ExecutionProvider} ({Threads} threads), input scale {InputScale:0.###}, test scales {TestScales} in the graph, classes {Classes}, thresholds {Thresholds}",
            Model.Name, Model.Version, _family.Name, modelPath, ExecutionProvider, threads, InputScale,
            string.Join("/", labels.TestScales.Select(f => f.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture))),
            string.Join(",", labels.Classes), string.Join(",", _thresholds.Select(t => t.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture))));
        if (labels.Licence is { } licence)
            _logger.LogWarning("Model {ModelName} has its own licence: {Licence}", Model.Name, licence);
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

    /// <summary>The thresholds a count keeps cells at (sidecar, <c>ScoreThreshold</c>, overrides), also in evaluation
    /// mode, whose <see cref="ScoreThresholds"/> are its low floor.</summary>
    public IReadOnlyList<float> OperatingThresholds => _operatingThresholds;

    /// <summary>The model family whose adapter decodes the graph (sidecar <c>family</c>).</summary>
    public string Family => _family.Name;

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
        var geometry = GeometryFor(bgrImage.Cols, bgrImage.Rows, inputScale);
        var frame = ToBgr8(bgrImage);
        int H = geometry.PaddedHeight, W = geometry.PaddedWidth;
        EnsureCapacity(ref _input, 3 * H * W);
        InputTensorWriter.WriteFrame(frame, geometry, _input, _labels.Pixels, _resizer);
        var preprocessed = Stopwatch.GetTimestamp();

        _raw.Clear();
        using (var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, _input.AsMemory(0, 3 * H * W), _modelInput.ShapeFor(W, H)))
            _family.Infer(_session, _runOptions, input, geometry, _thresholds, _raw);
        var inferred = Stopwatch.GetTimestamp();

        var detections = Decode(geometry);
        var stageMs = _subtypeStage is null ? 0 : _subtypeStage.Relabel(frame, detections, _labels.SubtypeOf!, _stageMinScore);
        var done = Stopwatch.GetTimestamp();
        // The subtype stage is a second network: its time counts as inference.
        return new DetectionResult(detections,
            Stopwatch.GetElapsedTime(start, preprocessed).TotalMilliseconds,
            Stopwatch.GetElapsedTime(preprocessed, inferred).TotalMilliseconds + stageMs,
            Stopwatch.GetElapsedTime(inferred, done).TotalMilliseconds - stageMs);
    }

    /// <summary>How a frame of this size goes into the graph at <paramref name="inputScale"/>: resized, padded to the
    /// sidecar's size multiple or the graph's fixed size, bottom/right or letterboxed.</summary>
    public InputGeometry GeometryFor(int frameWidth, int frameHeight, double inputScale) =>
        InputGeometry.For(frameWidth, frameHeight, inputScale, _labels.SizeMultiple, _modelInput.FixedSize, _labels.Letterbox);

    /// <summary>The family's detections (<see cref="_raw"/>, input pixels) through the shared rules, in frame pixels.</summary>
    private List<Detection> Decode(InputGeometry geometry)
    {
        MultiClassNms.Apply(_raw, _labels.NmsIou, _labels.MaxDetections, limitPerClass: _evaluationMode,
            crossClassIou: _labels.CrossClassIou, containment: _labels.Containment, suppressorFloor: _suppressorFloor,
            crossClassOf: _labels.CrossClassOf, partsOf: _labels.PartsOf);
        if (_labels.MinSizeOfRedCell is { } minSizes && _redClassIndex >= 0)
            CellSizeRule.Apply(_raw, minSizes, _redClassIndex, _operatingThresholds[_redClassIndex], geometry.ResizedWidth, geometry.ResizedHeight,
                geometry.OffsetX, geometry.OffsetY);
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
        var stageLabels = SubtypeStageLabels.Load(DetectorOptions.DefaultLabelsPath(stagePath)) with { NamePrecursors = options.NamePrecursors == true };
        foreach (var d in stageLabels.Differential)
            if (!labels.Subtypes.Contains(d, StringComparer.Ordinal))
                throw new ModelLoadException($"Subtype stage {stagePath} names '{d}', which is not a subtype of {labelsPath} ({string.Join(", ", labels.Subtypes)})");
        var stage = new SubtypeClassifier(stagePath, stageLabels, options.ExecutionProvider, threads, options.AllowSpinning, options.CpuMemoryArena, _logger);
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

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _subtypeStage?.Dispose();
        _session.Dispose();
        _runOptions.Dispose();
        _converted.Dispose();
        _resizer.Dispose();
    }
}
