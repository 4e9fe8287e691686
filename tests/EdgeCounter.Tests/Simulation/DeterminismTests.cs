using EdgeCounter.Simulation;
using OpenCvSharp;
using static EdgeCounter.Tests.Simulation.SimulationTestKit;

namespace EdgeCounter.Tests.Simulation;

public class DeterminismTests
{
    [Fact]
    public void Same_seed_gives_byte_identical_fields_jpegs_and_annotations()
    {
        using var a = new SyntheticFields(7, SlideProfile.Marrow, 320, 240, fieldsPerSlide: 2);
        using var b = new SyntheticFields(7, SlideProfile.Marrow, 320, 240, fieldsPerSlide: 2);
        for (var i = 0; i < 4; i++)
        {
            using var fa = a.Render(i, out var ta);
            using var fb = b.Render(i, out var tb);
            Assert.Equal(Bytes(fa), Bytes(fb));
            Assert.Equal(ta.JpegQuality, tb.JpegQuality);
            Cv2.ImEncode(".jpg", fa, out var ja, new ImageEncodingParam(ImwriteFlags.JpegQuality, ta.JpegQuality));
            Cv2.ImEncode(".jpg", fb, out var jb, new ImageEncodingParam(ImwriteFlags.JpegQuality, tb.JpegQuality));
            Assert.Equal(ja, jb);
            Assert.Equal(VocAnnotation.ToXml("x.jpg", 320, 240, ta.Cells, WbcLabelMode.Subtype), VocAnnotation.ToXml("x.jpg", 320, 240, tb.Cells, WbcLabelMode.Subtype));
        }
    }

    [Fact]
    public void Different_seeds_and_fields_differ()
    {
        using var a = new SyntheticFields(7, SlideProfile.Blood, 320, 240);
        using var b = new SyntheticFields(8, SlideProfile.Blood, 320, 240);
        using var a0 = a.Render(0, out var ta0);
        using var a1 = a.Render(1, out var ta1);
        using var b0 = b.Render(0, out _);
        Assert.NotEqual(Bytes(a0), Bytes(b0));
        Assert.NotEqual(Bytes(a0), Bytes(a1));
        Assert.NotEqual((ta0.StageX, ta0.StageY), (ta1.StageX, ta1.StageY));
    }

    [Fact]
    public void Rendering_order_does_not_change_a_field()
    {
        // Lazy tiles and cell caches must not leak state: field 3 alone equals field 3 after 0..2.
        using var sequential = new SyntheticFields(11, SlideProfile.Blood, 320, 240);
        for (var i = 0; i < 3; i++) sequential.Render(i, out _).Dispose();
        using var s3 = sequential.Render(3, out var t3);
        using var alone = new SyntheticFields(11, SlideProfile.Blood, 320, 240);
        using var a3 = alone.Render(3, out var ta3);
        Assert.Equal(Bytes(a3), Bytes(s3));
        Assert.Equal(t3.Cells, ta3.Cells);
    }

    [Fact]
    public void Microscope_frames_repeat_for_the_same_options_and_noise_changes_per_frame()
    {
        var options = new MicroscopeOptions { Seed = 3, Width = 320, Height = 240, SlideFieldsAcross = 8, SlideFieldsDown = 8 };
        using var m1 = new SimulatedMicroscope(options);
        using var m2 = new SimulatedMicroscope(options);
        foreach (var f in new long[] { 0, 1, 17, 40 })
        {
            using var a = m1.RenderFrame(f, out var ta);
            using var b = m2.RenderFrame(f, out var tb);
            Assert.Equal(Bytes(a), Bytes(b));
            Assert.Equal(Header(ta), Header(tb));
            Assert.Equal(ta.Cells, tb.Cells);
        }
        using var f0 = m1.RenderFrame(0, out var t0);
        using var f1 = m1.RenderFrame(1, out var t1);
        Assert.False(t0.Moving);
        Assert.Equal((t0.StageX, t0.StageY), (t1.StageX, t1.StageY));
        Assert.NotEqual(Bytes(f0), Bytes(f1)); // sensor noise is fresh each frame
    }

    [Fact]
    public void Truth_without_rendering_equals_the_truth_of_the_rendered_frame_moving_and_still()
    {
        var options = new MicroscopeOptions { Seed = 5, Width = 320, Height = 240, SlideFieldsAcross = 8, SlideFieldsDown = 8 };
        using var rendering = new SimulatedMicroscope(options);
        using var counting = new SimulatedMicroscope(options); // never renders: truth alone must not depend on rendering
        var seen = new HashSet<bool>();
        for (long f = 0; f < 60; f++)
        {
            using var frame = rendering.RenderFrame(f, out var rendered);
            var truth = counting.TruthAt(f);
            Assert.Equal(Header(rendered), Header(truth));
            Assert.Equal(rendered.Cells, truth.Cells);
            Assert.Equal(Header(rendered), Header(rendering.TruthAt(f)));
            seen.Add(truth.Moving);
        }
        Assert.Equal([false, true], seen.Order());
    }

    private static object Header(FrameTruth t) => (t.FrameIndex, t.Time, t.StageX, t.StageY, t.Moving, t.DefocusSigma, t.StopIndex, t.RevisitOf);
}
