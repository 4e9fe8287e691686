using OpenCvSharp;

namespace EdgeCounter.Fields;

/// <summary>Motion and focus of one frame, scored on a small grey copy.</summary>
/// <param name="Motion">Mean absolute grey difference to the previous frame (0..255); +inf for the first frame.</param>
/// <param name="Focus">Variance of the Laplacian of the grey copy: higher is sharper; only comparable within one optical setup.</param>
public readonly record struct FrameScore(double Motion, double Focus);

/// <summary>
/// Scores frames for motion (against the previous frame) and focus. Keeps its working Mats between calls so the
/// per-frame path allocates nothing once warm. Not thread-safe: one capture loop owns one scorer.
/// </summary>
public sealed class FrameScorer : IDisposable
{
    private readonly int _width;
    private readonly Mat _small = new();
    private Mat _grey = new();
    private Mat _previousGrey = new();
    private readonly Mat _diff = new();
    private readonly Mat _laplacian = new();
    private bool _hasPrevious;

    public FrameScorer(int scoringWidth = 160) => _width = scoringWidth;

    public FrameScore Score(Mat bgr)
    {
        if (bgr.Empty()) throw new ArgumentException("empty frame", nameof(bgr));
        var height = Math.Max(1, (int)Math.Round(bgr.Rows * (double)_width / bgr.Cols));
        // Area resampling first: it averages sensor noise away and makes the rest cheap.
        Cv2.Resize(bgr, _small, new Size(_width, height), 0, 0, InterpolationFlags.Area);
        if (_small.Channels() == 3) Cv2.CvtColor(_small, _grey, ColorConversionCodes.BGR2GRAY);
        else _small.CopyTo(_grey);

        Cv2.Laplacian(_grey, _laplacian, MatType.CV_16S, 1);
        Cv2.MeanStdDev(_laplacian, out _, out var stddev);
        var focus = stddev.Val0 * stddev.Val0;

        var motion = double.PositiveInfinity;
        if (_hasPrevious && _previousGrey.Size() == _grey.Size())
        {
            Cv2.Absdiff(_grey, _previousGrey, _diff);
            motion = Cv2.Mean(_diff).Val0;
        }
        (_previousGrey, _grey) = (_grey, _previousGrey);
        _hasPrevious = true;
        return new FrameScore(motion, focus);
    }

    /// <summary>Forget the previous frame (after a source reopens), so no motion is measured across the gap.</summary>
    public void Reset() => _hasPrevious = false;

    public void Dispose()
    {
        _small.Dispose();
        _grey.Dispose();
        _previousGrey.Dispose();
        _diff.Dispose();
        _laplacian.Dispose();
    }
}
