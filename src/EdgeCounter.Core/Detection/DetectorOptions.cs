namespace EdgeCounter.Detection;

/// <summary>Which ONNX Runtime execution provider to use.</summary>
public enum ExecutionProviderPreference
{
    /// <summary>CUDA when it loads, else CPU (logged either way).</summary>
    Auto,
    /// <summary>CUDA or fail: a missing GPU is an error, not a silent slow-down.</summary>
    Cuda,
    Cpu,
}

/// <summary>Settings of <see cref="OnnxCellDetector"/> (bound from the "Detector" configuration section).</summary>
public sealed class DetectorOptions
{
    /// <summary>The largest resize factor accepted (a 640x480 frame becomes 10240x7680).</summary>
    public const double MaxInputScale = 16;

    /// <summary>Path of the ONNX model (contract: docs/model-contract.md).</summary>
    public string ModelPath { get; set; } = "models/cellnet.onnx";

    /// <summary>Sidecar labels file; default: the model path with ".onnx" replaced by ".labels.json".</summary>
    public string? LabelsPath { get; set; }

    public ExecutionProviderPreference ExecutionProvider { get; set; } = ExecutionProviderPreference.Auto;

    /// <summary>ONNX Runtime intra-op threads; 0 or less means the number of cores.</summary>
    public int IntraOpThreads { get; set; }

    /// <summary>Let ONNX Runtime's idle intra-op threads spin between runs (lower latency on a dedicated machine;
    /// off by default: on a 2-core kiosk the spinning threads take CPU from capture and scoring, and under load
    /// measured up to 2x slower per field).</summary>
    public bool AllowSpinning { get; set; }

    /// <summary>ONNX Runtime's CPU memory arena: buffers kept for the next run (it grows to its peak and never gives
    /// memory back). False: a long run's memory sits ~40 MB lower, but each inference takes ~30 % longer and the memory
    /// still drifts (docs/reliability.md, "Long runs"); a kiosk short of memory, not of time, may turn it off.</summary>
    public bool CpuMemoryArena { get; set; } = true;

    /// <summary>Resize factor applied to a frame before inference (frame pixels × factor = model pixels).
    /// When null: camera µm/px ÷ model µm/px if <see cref="CameraMicrometresPerPixel"/> is set, else 1.</summary>
    public double? InputScale { get; set; }

    /// <summary>The camera's pixel size at the specimen, in micrometres; used when <see cref="InputScale"/> is null.</summary>
    public double? CameraMicrometresPerPixel { get; set; }

    /// <summary>Run the model's white-cell subtype stage when its sidecar names one (sidecar <c>subtypes.stage</c>);
    /// false: the detector's own subtype head names the subtypes (and no cell is unidentified).</summary>
    public bool UseSubtypeStage { get; set; } = true;

    /// <summary>The subtype stage names the precursors it knows (sidecar <c>precursors</c>: immature granulocytes,
    /// erythroblasts) instead of calling them unidentified. Unset: on in Counting:Mode marrow, off in blood.</summary>
    public bool? NamePrecursors { get; set; }

    /// <summary>Estimate the pixel scale from the size of red cells (<see cref="AutoScalingDetector"/>) when none is
    /// configured (<see cref="InputScale"/> or <see cref="CameraMicrometresPerPixel"/>, which stay manual overrides).</summary>
    public bool AutoScale { get; set; } = true;

    /// <summary>A resize factor or camera pixel size is set by hand.</summary>
    public bool HasConfiguredScale => InputScale is not null || CameraMicrometresPerPixel is not null;

    /// <summary>One score threshold for every class in place of the sidecar's per-class operating points (the seed
    /// paper's 0.7); <see cref="ScoreThresholdOverrides"/> still sets a class apart.</summary>
    public float? ScoreThreshold { get; set; }

    /// <summary>Per-class score thresholds replacing the sidecar's operating points (class name → threshold).</summary>
    public IDictionary<string, float>? ScoreThresholdOverrides { get; set; }

    /// <summary>The thresholds the count uses, per class in <paramref name="labels"/>' order: the sidecar's, or
    /// <see cref="ScoreThreshold"/> for all, then <see cref="ScoreThresholdOverrides"/>.</summary>
    /// <exception cref="ArgumentException">An override names a class the model does not have.</exception>
    public float[] OperatingThresholds(ModelLabels labels) => labels.ThresholdsWith(ScoreThresholdOverrides, ScoreThreshold);

    /// <summary>When set, every class decodes at this score instead of its operating threshold: for evaluation,
    /// whose precision/recall curves need the low-scoring detections too (the sidecar thresholds stay in ModelLabels).
    /// The sidecar's maxDetections then applies per class, so a crowded class does not crowd out the others.</summary>
    public float? EvaluationScoreFloor { get; set; }

    /// <summary>ONNX Runtime intra-op threads in use: the setting, or one per core when it is 0.</summary>
    public int EffectiveIntraOpThreads => IntraOpThreads > 0 ? IntraOpThreads : Environment.ProcessorCount;

    /// <summary>A copy to change a few settings on (every other setting carried over, new ones included).</summary>
    public DetectorOptions Copy() => (DetectorOptions)MemberwiseClone();

    public string ResolvedLabelsPath => LabelsPath ?? DefaultLabelsPath(ModelPath);

    public static string DefaultLabelsPath(string modelPath) =>
        Path.Combine(Path.GetDirectoryName(modelPath) ?? "", Path.GetFileNameWithoutExtension(modelPath) + ".labels.json");

    /// <summary>Checks the values that do not need the model; throws <see cref="ArgumentException"/> naming the bad one.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(ModelPath)) throw new ArgumentException("Detector:ModelPath is empty");
        if (InputScale is { } s && (!double.IsFinite(s) || s <= 0 || s > MaxInputScale))
            throw new ArgumentException($"Detector:InputScale must be in (0, {MaxInputScale}], was {s}");
        if (CameraMicrometresPerPixel is { } c && (!double.IsFinite(c) || c <= 0))
            throw new ArgumentException($"Detector:CameraMicrometresPerPixel must be positive, was {c}");
        if (EvaluationScoreFloor is { } floor && !(floor >= 0 && floor <= 1))
            throw new ArgumentException($"Detector:EvaluationScoreFloor must be in [0, 1], was {floor}");
        if (ScoreThreshold is { } one && !(one >= 0 && one <= 1))
            throw new ArgumentException($"Detector:ScoreThreshold must be in [0, 1], was {one}");
        if (ScoreThresholdOverrides is not null)
            foreach (var (name, t) in ScoreThresholdOverrides)
                if (!(t >= 0 && t <= 1)) throw new ArgumentException($"Detector:ScoreThresholdOverrides:{name} must be in [0, 1], was {t}");
    }

    /// <summary>The resize factor to use with a model trained at <paramref name="modelMicrometresPerPixel"/>.</summary>
    public double ResolveInputScale(double? modelMicrometresPerPixel)
    {
        if (InputScale is { } s) return s;
        if (CameraMicrometresPerPixel is { } camera && modelMicrometresPerPixel is > 0)
            return camera / modelMicrometresPerPixel.Value;
        return 1.0;
    }
}

/// <summary>The model or its sidecar cannot be used; the message names the file and the problem.</summary>
public sealed class ModelLoadException : Exception
{
    public ModelLoadException(string message, Exception? inner = null) : base(message, inner) { }
}
