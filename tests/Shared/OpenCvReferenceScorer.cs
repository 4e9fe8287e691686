using EdgeCounter.Fields;
using OpenCvSharp;

namespace EdgeCounter.Testing;

/// <summary>
/// The frame scorer as it was before the managed grey copy: OpenCV INTER_AREA resize to the scoring width,
/// BGR2GRAY, variance of the 3x3 Laplacian (focus) and mean absolute difference to the previous frame (motion).
/// One copy, compiled into the parity tests (the reference) and the benchmarks (the baseline).
/// </summary>
public sealed class OpenCvReferenceScorer(int scoringWidth = 160) : IDisposable
{
    private readonly Mat _small = new(), _laplacian = new(), _diff = new();
    private Mat _grey = new(), _previousGrey = new();
    private bool _hasPrevious;

    public FrameScore Score(Mat bgr)
    {
        var height = Math.Max(1, (int)Math.Round(bgr.Rows * (double)scoringWidth / bgr.Cols));
        Cv2.Resize(bgr, _small, new Size(scoringWidth, height), 0, 0, InterpolationFlags.Area);
        Cv2.CvtColor(_small, _grey, ColorConversionCodes.BGR2GRAY);
        Cv2.Laplacian(_grey, _laplacian, MatType.CV_16S, 1);
        Cv2.MeanStdDev(_laplacian, out _, out var stddev);
        var motion = double.PositiveInfinity;
        if (_hasPrevious)
        {
            Cv2.Absdiff(_grey, _previousGrey, _diff);
            motion = Cv2.Mean(_diff).Val0;
        }
        (_previousGrey, _grey) = (_grey, _previousGrey); // swap, no copy: the old buffer is overwritten next frame
        _hasPrevious = true;
        return new FrameScore(motion, stddev.Val0 * stddev.Val0);
    }

    public void Dispose()
    {
        _small.Dispose();
        _grey.Dispose();
        _previousGrey.Dispose();
        _diff.Dispose();
        _laplacian.Dispose();
    }
}
