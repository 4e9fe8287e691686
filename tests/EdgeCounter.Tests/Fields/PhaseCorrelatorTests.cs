using EdgeCounter.Fields;
using OpenCvSharp;

namespace EdgeCounter.Tests.Fields;

public class PhaseCorrelatorTests
{
    private static Mat Texture()
    {
        var image = new Mat(240, 320, MatType.CV_32FC1);
        Cv2.Randn(image, new Scalar(0), new Scalar(20));
        Cv2.GaussianBlur(image, image, new Size(0, 0), 2);
        return image;
    }

    [Fact]
    public void Finds_the_shift_and_leaves_both_inputs_as_they_were()
    {
        // 320x240 is a DFT size: OpenCV's phaseCorrelate would window these inputs in place (a remembered field
        // correlated again would then no longer match itself).
        using var a = Texture();
        using var b = new Mat();
        using var m = Mat.Eye(2, 3, MatType.CV_64FC1).ToMat();
        m.Set(0, 2, 7.0);
        m.Set(1, 2, -4.0);
        Cv2.WarpAffine(a, b, m, a.Size(), InterpolationFlags.Linear, BorderTypes.Reflect);
        using var aBefore = a.Clone();
        using var bBefore = b.Clone();
        using var window = new Mat();
        Cv2.CreateHanningWindow(window, a.Size(), MatType.CV_32FC1);
        using var correlator = new PhaseCorrelator();

        var first = correlator.Shift(a, b, window, out var response);
        var again = correlator.Shift(a, b, window, out var responseAgain);

        Assert.InRange(first.X, 6.8, 7.2);
        Assert.InRange(first.Y, -4.2, -3.8);
        Assert.True(response > 0.3, $"response {response}");
        Assert.Equal(0, Cv2.Norm(a, aBefore, NormTypes.INF));
        Assert.Equal(0, Cv2.Norm(b, bBefore, NormTypes.INF));
        Assert.Equal(first, again); // same inputs, same answer
        Assert.Equal(response, responseAgain);
    }
}
