namespace EdgeCounter.Detection;

/// <summary>Where the detector's resize factor comes from.</summary>
public enum PixelScaleSource
{
    /// <summary>No scale given and none estimated: frames go in as they are.</summary>
    Model,
    /// <summary>Set by hand (Detector:InputScale, Source:MicrometresPerPixel, --input-scale).</summary>
    Configured,
    /// <summary>Automatic, still gathering red cells: the factor is the best guess so far.</summary>
    Estimating,
    /// <summary>Automatic, estimated from enough red cells and kept until the cells' size drifts.</summary>
    Estimated,
}

/// <summary>The pixel scale in use.</summary>
/// <param name="InputScale">Frame pixels × this = model pixels.</param>
/// <param name="MicrometresPerPixel">The frame's pixel size it implies (model µm/px × InputScale); null when the model does not say its own.</param>
/// <param name="RedCells">Red cells the estimate rests on (0 unless estimated).</param>
/// <param name="Fields">Fields those red cells came from.</param>
/// <param name="RedCellDiameterPx">Their median box side in frame pixels (NaN unless estimated).</param>
/// <param name="Estimates">The input scales estimated and locked so far, oldest first (more than one: the red cells'
/// size drifted, e.g. another objective).</param>
public sealed record PixelScaleStatus(
    double InputScale,
    double? MicrometresPerPixel,
    PixelScaleSource Source,
    int RedCells = 0,
    int Fields = 0,
    double RedCellDiameterPx = double.NaN,
    IReadOnlyList<double>? Estimates = null)
{
    public int Estimations => Estimates?.Count ?? 0;

    public static PixelScaleStatus Fixed(double inputScale, double? modelMicrometresPerPixel, bool configured) =>
        new(inputScale, modelMicrometresPerPixel * inputScale, configured ? PixelScaleSource.Configured : PixelScaleSource.Model);
}

/// <summary>
/// Automatic pixel-scale calibration: estimates the resize factor that brings frames to the model's scale from the
/// size of red cells, and notices when that size drifts. Pure logic: it says which factor to run the detector at and
/// is told the red-cell sizes that came out (<see cref="RedCellRuler.Measure"/>); <see cref="AutoScalingDetector"/>
/// runs it.
/// <para>The model's size predictions are biased when its input is far from the scale it was trained at, so one
/// field is searched: detect at the guess, ask the red cells which factor would make them the model's size, detect
/// again at that factor, until the answer agrees with the factor tried. When the guess finds too few red cells, coarse
/// factors are tried first. Fields add their red cells to a pool; its median sets the factor, which is locked once
/// enough cells back it. Locked, every field's red cells are still measured: when they look larger or smaller for a
/// few fields in a row, the search starts again.</para>
/// </summary>
public sealed class PixelScaleCalibration
{
    private readonly RedCellRuler _ruler;
    private readonly double? _modelMicrometresPerPixel;
    private readonly List<double> _pool = new();
    private readonly Queue<double> _driftRatios = new();
    private int _poolFields;
    private int _emptyFields;
    private double _lockedMedianPx = double.NaN;
    private readonly List<double> _estimates = new();

    /// <param name="initialScale">The first guess (1: the frame as it is).</param>
    public PixelScaleCalibration(RedCellRuler ruler, double? modelMicrometresPerPixel, double initialScale = 1)
    {
        _ruler = ruler ?? throw new ArgumentNullException(nameof(ruler));
        _modelMicrometresPerPixel = modelMicrometresPerPixel;
        Scale = Math.Clamp(initialScale, Settings.MinScale, Settings.MaxScale);
    }

    public PixelScaleCalibrationSettings Settings => _ruler.Settings;

    public RedCellRuler Ruler => _ruler;

    /// <summary>The factor to detect at: the locked estimate, or the best guess while searching.</summary>
    public double Scale { get; private set; }

    /// <summary>Enough red cells agree: plain passes at <see cref="Scale"/> until the cells' size drifts.</summary>
    public bool IsLocked { get; private set; }

    public PixelScaleStatus Status => new(Scale, _modelMicrometresPerPixel * Scale,
        IsLocked ? PixelScaleSource.Estimated : PixelScaleSource.Estimating,
        _pool.Count, _poolFields, _pool.Count > 0 ? RedCellRuler.Median(_pool) : double.NaN, _estimates.ToArray());

    /// <summary>Starts the search of one field (while not locked).</summary>
    public FieldScaleSearch BeginField()
    {
        if (IsLocked) throw new InvalidOperationException("the scale is locked: detect at Scale and Track the field");
        return new FieldScaleSearch(_ruler, Scale, coarse: _emptyFields < Settings.CoarseSearchFields);
    }

    /// <summary>Takes a finished search's red cells into the pool; true when this locked the estimate.</summary>
    public bool Complete(FieldScaleSearch search)
    {
        ArgumentNullException.ThrowIfNull(search);
        if (search.NextScale is not null) throw new InvalidOperationException("the search is not finished");
        if (search.Estimate is null) { _emptyFields++; return false; }
        _emptyFields = 0;
        _pool.AddRange(search.RedCellSizes);
        _poolFields++;
        var median = RedCellRuler.Median(_pool);
        Scale = _ruler.ScaleFor(median);
        if (_pool.Count < Settings.MinCellsToLock) return false;
        IsLocked = true;
        _estimates.Add(Scale);
        _lockedMedianPx = median;
        _driftRatios.Clear();
        return true;
    }

    /// <summary>
    /// Locked: the red-cell sizes (frame pixels) of a field detected at <see cref="Scale"/>. True when they have
    /// drifted: the estimate is dropped (<see cref="IsLocked"/> false, the guess moved to what the cells now say) and
    /// the field should be searched again.
    /// </summary>
    public bool Track(IReadOnlyList<double> redCellSizes)
    {
        if (!IsLocked) throw new InvalidOperationException("nothing to track before the scale is locked");
        if (redCellSizes.Count < Settings.MinCellsPerField) return false; // no evidence either way
        var ratio = RedCellRuler.Median(redCellSizes) / _lockedMedianPx;
        _driftRatios.Enqueue(ratio);
        while (_driftRatios.Count > Settings.DriftFields) _driftRatios.Dequeue();
        var limit = Math.Log(1 + Settings.DriftTolerance);
        var logs = _driftRatios.Select(r => Math.Log(r)).ToList();
        var drifted = logs.Count == Settings.DriftFields && (logs.All(l => l > limit) || logs.All(l => l < -limit));
        if (!drifted) return false;
        IsLocked = false;
        LastDriftRatio = RedCellRuler.Median(_driftRatios);
        Scale = _ruler.ScaleFor(_lockedMedianPx * LastDriftRatio);
        _pool.Clear();
        _poolFields = 0;
        _driftRatios.Clear();
        return true;
    }

    /// <summary>The median ratio of the last drifting fields' red cells to the locked size (for the log), or NaN.</summary>
    public double LastDriftRatio { get; private set; } = double.NaN;
}

/// <summary>
/// The search of one field for its scale: <see cref="NextScale"/> says at which factor to detect next, <see
/// cref="Observe"/> takes the red-cell sizes that came out, until <see cref="NextScale"/> is null.
/// <para>From a start (the guess, then the coarse factors nearest it) the search iterates: detect, ask the red cells
/// which factor would make them the model's size, detect there. A start succeeds when the answer agrees with the
/// factor it was given (a fixed point). It fails when too few red cells show, when the answer lies outside the
/// allowed factors (upscaled far enough, a model finds "cells" in the texture of real ones, asking for ever more
/// enlargement), or after a few iterations without agreement; the next start is tried then.</para>
/// </summary>
public sealed class FieldScaleSearch
{
    /// <summary>Iterations from one start before it is given up.</summary>
    private const int IterationsPerStart = 4;

    private readonly RedCellRuler _ruler;
    private readonly List<double> _tried = new();
    private readonly Queue<double> _starts;
    private int _iterations;
    private int _bestPass = -1;

    internal FieldScaleSearch(RedCellRuler ruler, double guess, bool coarse)
    {
        _ruler = ruler;
        NextScale = guess;
        var s = ruler.Settings;
        // Coarse factors nearest to the guess first.
        _starts = new Queue<double>(coarse
            ? s.CoarseScales.Select(f => Math.Clamp(f, s.MinScale, s.MaxScale)).Distinct().OrderBy(f => Math.Abs(Math.Log(f / guess)))
            : []);
    }

    /// <summary>The factor of the next detector pass, or null when the search is done.</summary>
    public double? NextScale { get; private set; }

    /// <summary>The factor the field's red cells agree on, or null when no start reached agreement.</summary>
    public double? Estimate { get; private set; }

    /// <summary>The red-cell sizes (frame pixels) of the pass the estimate comes from.</summary>
    public IReadOnlyList<double> RedCellSizes { get; private set; } = [];

    /// <summary>Which pass (0-based, in order of <see cref="Observe"/>) to report the field's detections from: the one
    /// that agreed, else the first (at the guess).</summary>
    public int BestPass => Math.Max(0, _bestPass);

    public int Passes => _tried.Count;

    public void Observe(double scale, IReadOnlyList<double> redCellSizes)
    {
        if (NextScale is null) throw new InvalidOperationException("the search is done");
        _tried.Add(scale);
        _iterations++;
        var s = _ruler.Settings;
        if (redCellSizes.Count >= s.MinCellsPerField)
        {
            // Unclamped: an answer beyond the allowed range is no agreement, even at the range's end.
            var asked = _ruler.ModelDiameterPx / RedCellRuler.Median(redCellSizes);
            if (Math.Abs(Math.Log(asked / scale)) <= Math.Log(1 + s.ConvergenceTolerance))
            {
                Estimate = asked;
                RedCellSizes = redCellSizes;
                _bestPass = _tried.Count - 1;
                NextScale = null;
                return;
            }
            var inRange = asked >= s.MinScale && asked <= s.MaxScale;
            if (inRange && _iterations < IterationsPerStart && _tried.Count < s.MaxPassesPerField) { NextScale = asked; return; }
        }
        NextStart();
    }

    private void NextStart()
    {
        _iterations = 0;
        if (_tried.Count < _ruler.Settings.MaxPassesPerField)
            while (_starts.Count > 0)
            {
                var next = _starts.Dequeue();
                if (_tried.All(t => Math.Abs(Math.Log(next / t)) > Math.Log(1.1))) { NextScale = next; return; }
            }
        NextScale = null;
    }
}
