using EdgeCounter.Fields;
using OpenCvSharp;

namespace EdgeCounter.Tests.Fields;

public class FrameScorerAndRevisitTests
{
    /// <summary>A textured test card: random discs on a pale background, with sensor-like noise.</summary>
    private static Mat Card(int seed, int width = 640, int height = 480, double noise = 3)
    {
        var rng = new Random(seed);
        var mat = new Mat(height, width, MatType.CV_8UC3, new Scalar(225, 215, 235));
        for (var i = 0; i < 40; i++)
        {
            var r = rng.Next(10, 40);
            Cv2.Circle(mat, new Point(rng.Next(width), rng.Next(height)), r, new Scalar(rng.Next(80, 200), rng.Next(60, 160), rng.Next(120, 220)), -1, LineTypes.AntiAlias);
        }
        using var n = new Mat(height, width, MatType.CV_8UC3);
        Cv2.Randn(n, Scalar.All(0), Scalar.All(noise));
        Cv2.Add(mat, n, mat);
        return mat;
    }

    private static Mat Crop(Mat big, int x, int y, int w = 640, int h = 480)
    {
        using var roi = new Mat(big, new Rect(x, y, w, h));
        return roi.Clone();
    }

    [Fact]
    public void Still_frames_score_low_motion_and_moved_frames_score_high()
    {
        using var slide = Card(1, 1200, 900);
        using var scorer = new FrameScorer();
        using var a = Crop(slide, 100, 100);
        using var aAgain = Crop(slide, 100, 100);
        using var moved = Crop(slide, 130, 100);
        Assert.True(double.IsPositiveInfinity(scorer.Score(a).Motion));
        var still = scorer.Score(aAgain).Motion;
        var moving = scorer.Score(moved).Motion;
        Assert.True(still < 2, $"still motion {still}");
        Assert.True(moving > 2 * still + 2, $"moving {moving} vs still {still}");
    }

    [Fact]
    public void Defocus_lowers_the_focus_score()
    {
        using var sharp = Card(2);
        using var blurred = new Mat();
        Cv2.GaussianBlur(sharp, blurred, new Size(0, 0), 4);
        using var scorer = new FrameScorer();
        var sharpFocus = scorer.Score(sharp).Focus;
        var blurredFocus = scorer.Score(blurred).Focus;
        Assert.True(blurredFocus < 0.5 * sharpFocus, $"blurred {blurredFocus} vs sharp {sharpFocus}");
    }

    [Fact]
    public void A_returned_field_is_a_revisit_and_a_neighbouring_or_new_field_is_not()
    {
        using var slide = Card(3, 2400, 1400);
        using var guard = new RevisitGuard();
        using var first = Crop(slide, 200, 200);
        using var neighbour = Crop(slide, 200 + 480, 200); // 25 % overlap with the first
        using var elsewhere = Crop(slide, 1500, 800);
        using var back = Crop(slide, 200 + 12, 200 - 9); // the technician comes back, a few pixels off

        Assert.False(guard.CheckAndRemember(first, out _));
        Assert.False(guard.CheckAndRemember(neighbour, out var neighbourMatch));
        Assert.False(guard.CheckAndRemember(elsewhere, out var elsewhereMatch));
        Assert.True(guard.CheckAndRemember(back, out var backMatch), $"revisit match {backMatch}");
        Assert.True(neighbourMatch < 0.6 && elsewhereMatch < 0.6, $"neighbour {neighbourMatch}, elsewhere {elsewhereMatch}");
        Assert.Equal(3, guard.Count);
    }

    [Fact]
    public void Shared_vignetting_does_not_make_different_fields_look_the_same()
    {
        using var slide = Card(4, 2400, 1400);
        using var vignette = new Mat(480, 640, MatType.CV_8UC3, Scalar.All(0));
        Cv2.Circle(vignette, new Point(320, 240), 420, Scalar.All(255), -1);
        Cv2.GaussianBlur(vignette, vignette, new Size(0, 0), 80);
        Mat Vignetted(int x, int y)
        {
            var crop = Crop(slide, x, y);
            Cv2.Multiply(crop, vignette, crop, 1 / 255.0);
            return crop;
        }
        using var guard = new RevisitGuard();
        using var a = Vignetted(0, 0);
        using var b = Vignetted(1000, 700);
        Assert.False(guard.CheckAndRemember(a, out _));
        Assert.False(guard.CheckAndRemember(b, out var match), $"match {match}");
    }

    [Fact]
    public void Memory_is_bounded()
    {
        using var guard = new RevisitGuard(memory: 3);
        for (var i = 0; i < 6; i++)
        {
            using var card = Card(100 + i);
            guard.CheckAndRemember(card, out _);
        }
        Assert.Equal(3, guard.Count);
    }
}
