using EdgeCounter.Simulation;
using static EdgeCounter.Tests.Simulation.SimulationTestKit;

namespace EdgeCounter.Tests.Simulation;

public class StageAndCameraTests
{
    // fps 10, exposure 10 ms, a=2000 um/s^2, v=400 um/s, 0.1 um/px. A 320 px (32 um) move is triangular:
    // T = 2 * sqrt(32 / 2000) = 0.253 s. A 1600 px (160 um) move is trapezoidal: 160/400 + 400/2000 = 0.6 s.
    private static MicroscopeOptions HandCheckable() => Scripted(
        new ScriptedStop(640, 480, TimeSpan.FromSeconds(1)),                  // 0: [0, 1]
        new ScriptedStop(960, 480, TimeSpan.FromSeconds(1)),                  // 1: [1.253, 2.253], half overlap with 0
        new ScriptedStop(640, 480, TimeSpan.FromSeconds(1)),                  // 2: revisit of 0, [2.506, 3.506]
        new ScriptedStop(640, 2080, TimeSpan.FromSeconds(0.3), 3.0),          // 3: [4.106, 4.406], never sharp (settle 0.4 s)
        new ScriptedStop(2240, 2080, TimeSpan.FromSeconds(1), 2.0));          // 4: [5.006, ...), sharp from 5.406

    [Fact]
    public void Stops_follow_the_script_with_hand_computed_times()
    {
        using var m = new SimulatedMicroscope(HandCheckable());
        Assert.Equal(TimeSpan.Zero, m.GetStop(0).Arrive);
        Assert.Equal(1.0 + 2 * Math.Sqrt(0.016), m.GetStop(1).Arrive.TotalSeconds, 6);
        Assert.Equal(-1, m.GetStop(1).RevisitOf);
        Assert.Equal(0, m.GetStop(2).RevisitOf);
        Assert.Equal(m.GetStop(0).Field, m.GetStop(2).Field);
        Assert.Equal(m.GetStop(3).Leave.TotalSeconds + 0.6, m.GetStop(4).Arrive.TotalSeconds, 6);
        Assert.Equal(TimeSpan.MaxValue, m.GetStop(4).Leave);
        Assert.Equal(0, m.FirstCountableFrame(0));
        Assert.Equal(13, m.FirstCountableFrame(1));   // arrive 1.253 s -> frame 13 (1.3 s)
        Assert.Equal(26, m.FirstCountableFrame(2));   // arrive 2.506 s -> frame 26
        Assert.Equal(-1, m.FirstCountableFrame(3));   // left before focus settled
        Assert.Equal(55, m.FirstCountableFrame(4));   // sharp from 5.406 s -> frame 55
    }

    [Fact]
    public void Frame_truth_reports_motion_stops_revisits_and_focus()
    {
        using var m = new SimulatedMicroscope(HandCheckable());
        var truths = new List<FrameTruth>();
        for (long f = 0; f <= 60; f++) { using var _ = m.RenderFrame(f, out var t); truths.Add(t); }
        Assert.All(truths.Take(10), t => { Assert.False(t.Moving); Assert.Equal(0, t.StopIndex); Assert.Equal((640.0, 480.0), (t.StageX, t.StageY)); });
        Assert.True(truths[10].Moving); // frame 10 starts at 1.0 s, as the stage leaves
        Assert.Equal(-1, truths[10].StopIndex);
        Assert.True(truths[11].Moving && truths[11].StageX > 640 && truths[11].StageX < 960);
        Assert.All(truths.Skip(13).Take(10), t => { Assert.False(t.Moving); Assert.Equal(1, t.StopIndex); Assert.Equal(-1, t.RevisitOf); });
        Assert.All(truths.Skip(26).Take(9), t => { Assert.Equal(2, t.StopIndex); Assert.Equal(0, t.RevisitOf); });
        var atStop3 = truths.Where(t => t.StopIndex == 3).ToList();
        Assert.NotEmpty(atStop3);
        Assert.All(atStop3, t => Assert.True(t.DefocusSigma > 0));
        Assert.True(atStop3[0].DefocusSigma > atStop3[^1].DefocusSigma); // settling
        var atStop4 = truths.Where(t => t.StopIndex == 4).ToList();
        Assert.Equal(51, atStop4[0].FrameIndex);                          // first frame at or after arrival (5.006 s)
        Assert.Equal(2.0 * (1 - (5.1 - m.GetStop(4).Arrive.TotalSeconds) / 0.4), atStop4[0].DefocusSigma, 6); // linear settle
        Assert.Equal(0, truths[55].DefocusSigma);
        Assert.True(truths[54].DefocusSigma > 0);
    }

    [Fact]
    public void Motion_blur_appears_only_while_moving_and_follows_the_direction_of_travel()
    {
        using var m = new SimulatedMicroscope(HandCheckable());
        using var still1 = m.RenderFrame(3, out var s1);
        using var still2 = m.RenderFrame(4, out var s2);
        Assert.False(s1.Moving || s2.Moving);
        // Noise-free still frames of one stop are identical: the stage does not creep.
        Assert.Equal(Bytes(still1), Bytes(still2));
        var (sdx, sdy) = Gradients(still1);
        Assert.InRange(sdx / sdy, 0.7, 1.4);

        using var moving = m.RenderFrame(11, out var mv); // mid-move, horizontal travel
        Assert.True(mv.Moving);
        var (mdx, mdy) = Gradients(moving);
        Assert.True(mdx < 0.5 * mdy, $"horizontal motion should smear x gradients: dx {mdx:F2} dy {mdy:F2}");

        // Vertical travel (stop 2 -> 3) smears the other way.
        var vertical = Enumerable.Range(36, 6).Select(f => (long)f).First(f => { using var _ = m.RenderFrame(f, out var t); return t.Moving && t.StageY > 600; });
        using var vmoving = m.RenderFrame(vertical, out _);
        var (vdx, vdy) = Gradients(vmoving);
        Assert.True(vdy < 0.5 * vdx, $"vertical motion should smear y gradients: dx {vdx:F2} dy {vdy:F2}");
    }

    [Fact]
    public void Defocused_frames_are_blurrier_than_sharp_frames_of_the_same_stop()
    {
        using var m = new SimulatedMicroscope(HandCheckable());
        using var blurred = m.RenderFrame(51, out var tb);   // stop 4, 0.09 s after arrival
        using var sharp = m.RenderFrame(56, out var ts);
        Assert.Equal(4, tb.StopIndex);
        Assert.Equal(4, ts.StopIndex);
        Assert.True(tb.DefocusSigma > 1);
        Assert.Equal(0, ts.DefocusSigma);
        Assert.True(Sharpness(sharp) > 2 * Sharpness(blurred));
    }

    [Fact]
    public void Countable_cells_are_the_union_of_still_sharp_fields()
    {
        using var m = new SimulatedMicroscope(HandCheckable());
        var stop0 = m.CountableCellsAt(0).Select(c => c.Id).ToHashSet();
        var stop1 = m.CountableCellsAt(1).Select(c => c.Id).ToHashSet();
        var stop4 = m.CountableCellsAt(4).Select(c => c.Id).ToHashSet();
        var shared = stop0.Intersect(stop1).Count();
        Assert.True(shared > 0, "half-overlapping fields should share cells");

        // Independent check of "centre inside the field": whole cells in the frame are counted, cells wholly outside are not.
        using (var f = m.RenderFrame(2, out var t))
        {
            Assert.All(t.Cells.Where(c => !c.Truncated), c => Assert.Contains(c.CellId, stop0));
            Assert.Subset(t.Cells.Select(c => c.CellId).ToHashSet(), stop0);
        }

        Assert.Equal(stop0, m.CountableCells(0));
        Assert.Equal(stop0, m.CountableCells(12));            // stop 1 not yet still and sharp
        var after1 = m.CountableCells(13);
        Assert.Equal(stop0.Count + stop1.Count - shared, after1.Count); // overlap counted once
        Assert.Equal(after1, m.CountableCells(40));           // the revisit adds nothing
        Assert.Equal(after1, m.CountableCells(54));           // stop 3 never sharp; stop 4 not sharp yet
        var all = m.CountableCells(55);
        Assert.Equal(after1.Union(stop4).ToHashSet(), all);
        Assert.Equal(stop0, m.CountableCells(5));             // asking about an earlier frame still works
        Assert.Equal(m.CountableCellTypes(55).Keys.ToHashSet(), all);
    }

    [Fact]
    public void Meander_goes_on_inside_the_slide_with_overlaps_and_valid_revisits()
    {
        var options = new MicroscopeOptions { Seed = 5, SlideFieldsAcross = 6, SlideFieldsDown = 4, RevisitProbability = 0.2 };
        using var m = new SimulatedMicroscope(options);
        var stops = Enumerable.Range(0, 400).Select(m.GetStop).ToList();
        var revisits = 0;
        for (var i = 0; i < stops.Count; i++)
        {
            var s = stops[i];
            Assert.Equal(i, s.Index);
            Assert.True(s.Field.X >= 0 && s.Field.Y >= 0 && s.Field.Right <= options.SlideWidthPixels && s.Field.Bottom <= options.SlideHeightPixels);
            Assert.True(s.Leave > s.Arrive);
            if (i > 0) Assert.True(s.Arrive > stops[i - 1].Leave);
            if (s.RevisitOf >= 0)
            {
                revisits++;
                Assert.True(s.RevisitOf < i);
                Assert.Equal(stops[s.RevisitOf].Field, s.Field);
                Assert.Equal(-1, stops[s.RevisitOf].RevisitOf);
            }
            else if (i > 0 && stops[i - 1].RevisitOf < 0)
            {
                // Neighbouring meander fields overlap partly (same row: shifted ~0.9 field; next row: ~0.9 down).
                var a = stops[i - 1].Field;
                var overlap = (a & s.Field).Width * (a & s.Field).Height;
                Assert.True(overlap > 0 || Math.Abs(a.Y - s.Field.Y) > a.Height, $"stop {i} does not overlap stop {i - 1}");
            }
        }
        Assert.InRange(revisits, 40, 120);
        // Still endless: a stop far in the future exists and the stage position is defined.
        Assert.True(m.GetStop(5000).Arrive > TimeSpan.FromHours(1));
    }

    [Fact]
    public void Tile_cache_stays_bounded_over_a_long_run()
    {
        var options = new MicroscopeOptions { Seed = 9, Width = 320, Height = 240, SlideFieldsAcross = 10, SlideFieldsDown = 10, FramesPerSecond = 5, TileCacheCapacity = 16 };
        using var m = new SimulatedMicroscope(options);
        for (long f = 0; f < 400; f += 3) { using var frame = m.RenderFrame(f, out var _); Assert.True(m.CachedTiles <= 16); }
        Assert.True(m.TilesRendered > 16);
    }
}

public class FrameStreamTests
{
    [Fact]
    public async Task As_fast_as_possible_streams_consecutive_frames_equal_to_rendered_ones()
    {
        var options = new MicroscopeOptions { Seed = 4, Width = 160, Height = 120, SlideFieldsAcross = 6, SlideFieldsDown = 6 };
        using var streamed = new SimulatedMicroscope(options);
        using var direct = new SimulatedMicroscope(options);
        var expected = 0L;
        await foreach (var frame in streamed.FramesAsync(realTime: false))
        {
            using (frame)
            {
                Assert.Equal(expected, frame.Truth.FrameIndex);
                using var again = direct.RenderFrame(expected, out _);
                Assert.Equal(SimulationTestKit.Bytes(again), SimulationTestKit.Bytes(frame.Image));
            }
            if (++expected == 5) break;
        }
    }

    [Fact]
    public async Task Real_time_stream_paces_frames_by_the_frame_interval()
    {
        var options = new MicroscopeOptions { Seed = 4, Width = 160, Height = 120, SlideFieldsAcross = 6, SlideFieldsDown = 6, FramesPerSecond = 20, Exposure = TimeSpan.FromMilliseconds(5) };
        using var m = new SimulatedMicroscope(options);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var last = -1L;
        var count = 0;
        await foreach (var frame in m.FramesAsync(realTime: true))
        {
            using (frame)
            {
                Assert.True(frame.Truth.FrameIndex > last);
                last = frame.Truth.FrameIndex;
                // A frame is never delivered before its time.
                Assert.True(clock.Elapsed.TotalSeconds >= frame.Truth.Time.TotalSeconds - 0.005);
            }
            if (++count == 6) break;
        }
        Assert.True(clock.Elapsed.TotalSeconds >= 0.24, "six frames at 20 fps take at least 0.25 s");
    }
}

public class SimulatorSettingsTests
{
    [Theory]
    [InlineData(0.2)]
    [InlineData(0.5)]
    [InlineData(1.0)]
    [InlineData(3.0)]
    public void Any_positive_stop_duration_the_service_accepts_makes_a_valid_microscope(double seconds)
    {
        var settings = new EdgeCounter.Acquisition.SimulatorOptions { StopDuration = TimeSpan.FromSeconds(seconds) };
        Assert.Empty(settings.Validate());
        var options = settings.ToMicroscopeOptions();
        options.Validate(); // threw for stops up to the 0.5 s jitter: the capture worker died with exit 134
        Assert.True(options.StopDurationJitter < options.StopDuration);
        Assert.Equal(seconds >= 1 ? TimeSpan.FromSeconds(0.5) : TimeSpan.FromSeconds(seconds / 2), options.StopDurationJitter);
    }
}
