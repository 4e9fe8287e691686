using EdgeCounter.Fields;
using EdgeCounter.Simulation;
using EdgeCounter.Testing;
using OpenCvSharp;

namespace EdgeCounter.IntegrationTests.Bench;

/// <summary>The scorer's managed grey copy (frames that are a whole multiple of the scoring size) against the
/// OpenCV pipeline it replaces (INTER_AREA resize, BGR2GRAY, 3x3 Laplacian variance, mean absolute difference).</summary>
public class FrameScorerParityTests
{
    [Theory]
    [InlineData(640, 480)]   // block 4
    [InlineData(1920, 1080)] // block 12
    [InlineData(1000, 700)]  // not a whole multiple: the OpenCV path
    public void Scores_match_the_OpenCV_reference_on_simulated_frames(int width, int height)
    {
        using var microscope = new SimulatedMicroscope(new MicroscopeOptions { Seed = 5, Width = width, Height = height, FramesPerSecond = 30 });
        using var scorer = new FrameScorer();
        using var reference = new OpenCvReferenceScorer();
        var compared = 0;
        // Frames 0..90 at 30 fps: still, settling focus and moving frames of the scripted stage.
        for (var i = 0; i < 90; i += 3)
        {
            using var frame = microscope.RenderFrame(i, out _);
            var actual = scorer.Score(frame);
            var expected = reference.Score(frame);
            Assert.Equal(expected.Focus, actual.Focus, tolerance: 0.005 * expected.Focus + 0.01);
            if (double.IsPositiveInfinity(expected.Motion)) Assert.True(double.IsPositiveInfinity(actual.Motion));
            else Assert.Equal(expected.Motion, actual.Motion, tolerance: 0.01);
            compared++;
        }
        Assert.Equal(30, compared);
    }

    [Fact]
    public void Scoring_a_1080p_stream_allocates_nothing_per_frame_once_warm()
    {
        using var microscope = new SimulatedMicroscope(new MicroscopeOptions { Seed = 2, Width = 1920, Height = 1080 });
        using var a = microscope.RenderFrame(0, out _);
        using var b = microscope.RenderFrame(1, out _);
        using var scorer = new FrameScorer();
        // Warm up past tiered compilation (call counting starts after 100 ms), then count.
        var warm = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 0; i < 200 || warm.ElapsedMilliseconds < 500; i++) scorer.Score((i & 1) == 0 ? a : b);

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 200; i++) scorer.Score((i & 1) == 0 ? a : b);
        var perFrame = (GC.GetAllocatedBytesForCurrentThread() - before) / 200.0;

        Assert.True(perFrame < 16, $"{perFrame} bytes per frame");
    }
}
