using Microsoft.Extensions.Logging;
using OpenCvSharp;

namespace EdgeCounter.Detection;

/// <summary>
/// The detector with automatic pixel-scale calibration (<see cref="PixelScaleCalibration"/>): while the scale is being
/// estimated a field costs several detector passes (its result comes from the pass nearest the estimate, the time
/// reported is that of all passes); once locked, one pass at the estimated factor, as with a configured scale.
/// Owns the inner detector. One caller at a time, like every <see cref="ICellDetector"/>; <see cref="PixelScale"/> may
/// be read from any thread.
/// </summary>
public sealed class AutoScalingDetector : ICellDetector
{
    private readonly OnnxCellDetector _inner;
    private readonly PixelScaleCalibration _calibration;
    private readonly ILogger _logger;
    private volatile PixelScaleStatus _status;
    private int _fieldsWithoutRedCells;
    private bool _warnedNoRedCells;

    public AutoScalingDetector(OnnxCellDetector inner, ILogger logger, PixelScaleCalibrationSettings? settings = null)
    {
        _inner = inner ?? throw new ArgumentNullException(nameof(inner));
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));
        var ruler = RedCellRuler.For(inner.Labels, settings)
            ?? throw new ArgumentException($"model {inner.Model.Name} has no red-cell class (sidecar redCellClass): its scale cannot be estimated", nameof(inner));
        _calibration = new PixelScaleCalibration(ruler, inner.Labels.MicrometresPerPixel, inner.InputScale);
        _status = _calibration.Status;
        _logger.LogInformation("Pixel scale: automatic, from the size of {Class} boxes (the model's are {Diameter:0.#} px at {ModelScale} µm/px); first guess: input scale {Scale:0.###}",
            ruler.RedCellClass, ruler.ModelDiameterPx, inner.Labels.MicrometresPerPixel?.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture) ?? "its own", _calibration.Scale);
    }

    public OnnxCellDetector Inner => _inner;

    public ModelInfo Model => _inner.Model;

    public string ExecutionProvider => _inner.ExecutionProvider;

    public PixelScaleStatus PixelScale => _status;

    public DetectionResult Detect(Mat bgrImage)
    {
        ArgumentNullException.ThrowIfNull(bgrImage);
        var ruler = _calibration.Ruler;
        DetectionResult? plain = null;
        if (_calibration.IsLocked)
        {
            plain = _inner.Detect(bgrImage, _calibration.Scale);
            var drifted = _calibration.Track(ruler.Measure(plain.Detections, bgrImage.Cols, bgrImage.Rows));
            if (!drifted) return plain;
            _logger.LogWarning("Red cells look {Change:0}% {Direction} than when the pixel scale was estimated, over the last {Fields} fields (another objective?): estimating it again",
                Math.Abs(_calibration.LastDriftRatio - 1) * 100, _calibration.LastDriftRatio > 1 ? "larger" : "smaller", _calibration.Settings.DriftFields);
        }

        var search = _calibration.BeginField();
        var passes = new List<DetectionResult>();
        while (search.NextScale is { } scale)
        {
            var result = _inner.Detect(bgrImage, scale);
            passes.Add(result);
            search.Observe(scale, ruler.Measure(result.Detections, bgrImage.Cols, bgrImage.Rows));
        }
        var locked = _calibration.Complete(search);
        var status = _calibration.Status;
        _status = status;
        if (locked)
            _logger.LogInformation("Pixel scale estimated: {Mpp} µm/px (input scale {Scale:0.###}) from {Cells} red cells in {Fields} field(s), median {Diameter:0.#} px",
                status.MicrometresPerPixel?.ToString("0.####", System.Globalization.CultureInfo.InvariantCulture) ?? "n/a", status.InputScale, status.RedCells, status.Fields, status.RedCellDiameterPx);
        else if (search.Estimate is null) NoteFieldWithoutRedCells();
        else
            _logger.LogDebug("Pixel scale: field searched in {Passes} passes, guess now {Scale:0.###} from {Cells} red cells", search.Passes, status.InputScale, status.RedCells);
        if (search.Estimate is not null) _fieldsWithoutRedCells = 0;

        var chosen = passes[search.BestPass];
        // The field's time is what it cost: every pass (and the plain one before a drift).
        var all = plain is null ? passes : passes.Append(plain).ToList();
        return new DetectionResult(chosen.Detections, all.Sum(p => p.PreprocessMs), all.Sum(p => p.InferenceMs), all.Sum(p => p.PostprocessMs));
    }

    private void NoteFieldWithoutRedCells()
    {
        _fieldsWithoutRedCells++;
        if (_warnedNoRedCells || _fieldsWithoutRedCells < _calibration.Settings.CoarseSearchFields) return;
        _warnedNoRedCells = true;
        _logger.LogWarning("Pixel scale: {Fields} fields in a row without {Cells} confident, whole red cells that agree on a scale (input scales {Min} to {Max} tried); " +
            "detecting at {Scale:0.###} and trying again on later fields (set EdgeCounter:Source:MicrometresPerPixel to fix the scale by hand)",
            _fieldsWithoutRedCells, _calibration.Settings.MinCellsPerField, _calibration.Settings.CoarseScales.Min(), _calibration.Settings.CoarseScales.Max(), _calibration.Scale);
    }

    public void Dispose() => _inner.Dispose();
}
