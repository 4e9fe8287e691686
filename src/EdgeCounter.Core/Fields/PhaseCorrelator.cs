using OpenCvSharp;

namespace EdgeCounter.Fields;

/// <summary>
/// Phase correlation with a window that leaves its inputs as they were. OpenCV's <c>phaseCorrelate</c> multiplies the
/// window into its inputs in place when their size is already a good DFT size (320x240, 160x120...), so the same
/// image correlated twice (an odometry frame as "current" then "previous", a remembered field against each new one)
/// is windowed again each time and stops matching. Here the window goes into scratch copies, reused between calls.
/// Not thread-safe: one owner.
/// </summary>
internal sealed class PhaseCorrelator : IDisposable
{
    private readonly Mat _a = new(), _b = new(), _noWindow = new();

    /// <summary>The shift of <paramref name="b"/>'s content relative to <paramref name="a"/>'s (32-bit float, one channel, same size as the window).</summary>
    public Point2d Shift(Mat a, Mat b, Mat window, out double response)
    {
        Cv2.Multiply(a, window, _a);
        Cv2.Multiply(b, window, _b);
        return Cv2.PhaseCorrelate(_a, _b, _noWindow, out response);
    }

    public void Dispose()
    {
        _a.Dispose();
        _b.Dispose();
        _noWindow.Dispose();
    }
}
