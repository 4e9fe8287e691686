namespace EdgeCounter.Detection;

/// <summary>Tuning of automatic pixel-scale calibration. The defaults are the ones measured and tested; they do not
/// depend on the model (what does, the red-cell class and its size, comes from the sidecar).</summary>
public sealed record PixelScaleCalibrationSettings
{
    /// <summary>Only confident red cells are measured: a doubtful box is more often a clump, a ghost or a platelet.</summary>
    public float MinScore { get; init; } = 0.5f;

    /// <summary>A box closer than this fraction of the frame's shorter side (at least 2 px) to an edge is a cell cut by
    /// the frame, whose box is smaller than the cell: left out.</summary>
    public double EdgeMarginFraction { get; init; } = 0.01;

    /// <summary>Boxes longer than this ratio either way are overlapping or deformed cells: left out.</summary>
    public double MaxAspectRatio { get; init; } = 1.4;

    /// <summary>Fewer measured red cells than this in a field say nothing about its scale.</summary>
    public int MinCellsPerField { get; init; } = 3;

    /// <summary>The estimate is kept (locked) once this many red cells from fields searched so far agree on it.</summary>
    public int MinCellsToLock { get; init; } = 40;

    /// <summary>A search over scales stops when the scale its red cells ask for is within this fraction of the one tried.</summary>
    public double ConvergenceTolerance { get; init; } = 0.03;

    /// <summary>Detector passes a search may spend on one field.</summary>
    public int MaxPassesPerField { get; init; } = 12;

    /// <summary>The resize factors a search may use.</summary>
    public double MinScale { get; init; } = 0.2;
    public double MaxScale { get; init; } = 4;

    /// <summary>Coarse resize factors tried, nearest to the guess first, when the guess finds too few red cells (a model
    /// trained with scale augmentation 0.6-1.5 finds cells from about half to twice their size).</summary>
    public IReadOnlyList<double> CoarseScales { get; init; } = [1, 0.5, 2, 0.3, 3, 4];

    /// <summary>Fields in a row whose search finds no red cells before the coarse scales are no longer tried (a slide
    /// area without red cells must not cost several passes per field for ever).</summary>
    public int CoarseSearchFields { get; init; } = 3;

    /// <summary>Locked: the red cells must look larger or smaller than at calibration by more than this fraction ...
    /// (an objective change is a factor of 1.5 or more; slides of different patients differ by up to ~20 %: on Chula
    /// RBC-12's test slides the estimates spread from 0.16 to 0.21 µm/px with one camera).</summary>
    public double DriftTolerance { get; init; } = 0.25;

    /// <summary>... in this many measured fields in a row before the scale is estimated again (an objective change, not
    /// one odd field).</summary>
    public int DriftFields { get; init; } = 3;

    /// <summary>Throws <see cref="ArgumentException"/> on values the calibration cannot work with.</summary>
    public void Validate()
    {
        if (!(MinScore is >= 0 and <= 1)) throw new ArgumentException($"MinScore must be in [0, 1], was {MinScore}");
        if (!(EdgeMarginFraction is >= 0 and < 0.5)) throw new ArgumentException($"EdgeMarginFraction must be in [0, 0.5), was {EdgeMarginFraction}");
        if (!(MaxAspectRatio >= 1)) throw new ArgumentException($"MaxAspectRatio must be at least 1, was {MaxAspectRatio}");
        if (MinCellsPerField < 1 || MinCellsToLock < MinCellsPerField) throw new ArgumentException("MinCellsPerField must be positive and MinCellsToLock at least that");
        if (!(ConvergenceTolerance is > 0 and < 1) || !(DriftTolerance > ConvergenceTolerance)) throw new ArgumentException("ConvergenceTolerance must be in (0, 1) and DriftTolerance above it");
        if (MaxPassesPerField < 1 || DriftFields < 1 || CoarseSearchFields < 0) throw new ArgumentException("MaxPassesPerField and DriftFields must be positive");
        if (!(MinScale > 0 && MaxScale >= MinScale && MaxScale <= DetectorOptions.MaxInputScale)) throw new ArgumentException($"MinScale/MaxScale must satisfy 0 < min <= max <= {DetectorOptions.MaxInputScale}");
        if (CoarseScales.Count == 0 || CoarseScales.Any(s => !(s > 0))) throw new ArgumentException("CoarseScales must list positive factors");
    }
}

/// <summary>
/// Red cells as a ruler: their size is nearly the same on every blood slide, so the size of the model's red-cell boxes
/// in a frame says how far the frame is from the model's pixel scale. Pure: detections in, sizes and factors out.
/// </summary>
public sealed class RedCellRuler
{
    public RedCellRuler(string redCellClass, double modelDiameterPx, PixelScaleCalibrationSettings? settings = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(redCellClass);
        if (!(modelDiameterPx > 0 && double.IsFinite(modelDiameterPx))) throw new ArgumentOutOfRangeException(nameof(modelDiameterPx), modelDiameterPx, "must be positive");
        Settings = settings ?? new PixelScaleCalibrationSettings();
        Settings.Validate();
        RedCellClass = redCellClass;
        ModelDiameterPx = modelDiameterPx;
    }

    /// <summary>The ruler the sidecar describes, or null when the model has no red-cell class.</summary>
    public static RedCellRuler? For(ModelLabels labels, PixelScaleCalibrationSettings? settings = null) =>
        labels.RedCellClass is { } cls ? new RedCellRuler(cls, labels.RedCellDiameterPx, settings) : null;

    public string RedCellClass { get; }

    /// <summary>The model's median red-cell box side at its own scale, input pixels (sidecar redCellDiameterPx).</summary>
    public double ModelDiameterPx { get; }

    public PixelScaleCalibrationSettings Settings { get; }

    /// <summary>Box sides √(w·h), frame pixels, of the confident, whole, roundish red cells among the detections.</summary>
    public List<double> Measure(IEnumerable<Detection> detections, int frameWidth, int frameHeight)
    {
        var margin = Math.Max(2, Settings.EdgeMarginFraction * Math.Min(frameWidth, frameHeight));
        var sizes = new List<double>();
        foreach (var d in detections)
        {
            if (d.Score < Settings.MinScore || !string.Equals(d.Class, RedCellClass, StringComparison.Ordinal)) continue;
            var b = d.Box;
            if (b.X1 < margin || b.Y1 < margin || b.X2 > frameWidth - margin || b.Y2 > frameHeight - margin) continue;
            if (b.Width <= 0 || b.Height <= 0) continue;
            var aspect = b.Width / b.Height;
            if (aspect > Settings.MaxAspectRatio || aspect < 1 / Settings.MaxAspectRatio) continue;
            sizes.Add(Math.Sqrt(b.Width * (double)b.Height));
        }
        return sizes;
    }

    /// <summary>The resize factor that makes red cells of <paramref name="medianFramePx"/> the model's size, kept within the settings' range.</summary>
    public double ScaleFor(double medianFramePx) => Math.Clamp(ModelDiameterPx / medianFramePx, Settings.MinScale, Settings.MaxScale);

    /// <summary>The median (mean of the middle two for an even count); NaN for none.</summary>
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0) return double.NaN;
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}
