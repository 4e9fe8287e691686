using EdgeCounter.Detection;
using EdgeCounter.Simulation;
using OpenCvSharp;

namespace EdgeCounter.Tests.Detection;

public class FrameResizerTests
{
    [Theory]
    [InlineData(2560, 1920, 1024, 768, 2)]  // factor 0.4: area by 2, then bilinear 0.8
    [InlineData(2560, 1920, 1280, 960, 2)]  // exactly half: area by 2 only
    [InlineData(1920, 1080, 768, 432, 2)]
    [InlineData(2000, 1500, 500, 375, 4)]
    [InlineData(2001, 1500, 1000, 750, 1)]  // an odd width has no whole factor
    [InlineData(640, 480, 480, 360, 1)]     // factor 0.75: one area step
    [InlineData(1094, 1094, 100, 100, 1)]   // only 2 divides 1094, which would leave a rest factor under 1/2
    public void Whole_factor_divides_the_frame_and_leaves_a_rest_of_at_least_half(int cols, int rows, int width, int height, int expected)
    {
        Assert.Equal(expected, FrameResizer.WholeFactor(cols, rows, width, height));
    }

    [Theory]
    [InlineData(1024, 768)]
    [InlineData(1280, 960)]
    [InlineData(900, 675)]
    public void A_large_shrink_stays_close_to_a_one_step_area_resize(int width, int height)
    {
        using var fields = new SyntheticFields(99, SlideProfile.Blood, 2560, 1920, micrometresPerPixel: 0.04);
        using var frame = fields.Render(0, out _);
        using var resizer = new FrameResizer();
        using var reference = new Mat();
        Cv2.Resize(frame, reference, new Size(width, height), 0, 0, InterpolationFlags.Area);

        var resized = resizer.Resize(frame, width, height);

        Assert.Equal(new Size(width, height), resized.Size());
        Assert.Equal(MatType.CV_8UC3, resized.Type());
        using var difference = new Mat();
        Cv2.Absdiff(resized, reference, difference);
        var mean = Cv2.Mean(difference);
        for (var c = 0; c < 3; c++) Assert.InRange(mean[c], 0, 1.0); // grey levels, 0..255
    }

    [Fact]
    public void Same_size_is_the_frame_itself_and_enlarging_is_bilinear()
    {
        using var frame = new Mat(4, 4, MatType.CV_8UC3, new Scalar(0, 0, 0));
        frame.Set(0, 0, new Vec3b(200, 200, 200));
        using var resizer = new FrameResizer();
        Assert.Same(frame, resizer.Resize(frame, 4, 4));

        var enlarged = resizer.Resize(frame, 8, 8);
        using var reference = new Mat();
        Cv2.Resize(frame, reference, new Size(8, 8), 0, 0, InterpolationFlags.Linear);
        using var difference = new Mat();
        Cv2.Absdiff(enlarged, reference, difference);
        Assert.Equal(0, Cv2.CountNonZero(difference.Reshape(1)));
    }

    [Fact]
    public void A_disposed_resizer_refuses_work()
    {
        using var frame = new Mat(4, 4, MatType.CV_8UC3, new Scalar(0, 0, 0));
        var resizer = new FrameResizer();
        resizer.Dispose();
        Assert.Throws<ObjectDisposedException>(() => resizer.Resize(frame, 2, 2));
    }
}
