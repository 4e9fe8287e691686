using EdgeCounter.Fields;
using EdgeCounter.Simulation;
using OpenCvSharp;

namespace EdgeCounter.Tests.Fields;

/// <summary>Fields of the simulated slide at known positions, placed by the registrar from a rough (or no) odometry.</summary>
public class SlideRegistrarTests
{
    /// <summary>Sharp still frames of the given stops (slide pixels), with their defocus on arrival.</summary>
    private static List<Mat> Fields(params (int X, int Y, double Defocus)[] stops)
    {
        var options = new MicroscopeOptions { Seed = 21, FramesPerSecond = 10, Stops = stops.Select(s => new ScriptedStop(s.X, s.Y, TimeSpan.FromSeconds(1), s.Defocus)).ToArray() };
        using var microscope = new SimulatedMicroscope(options);
        var frames = new List<Mat>();
        for (var i = 0; i < stops.Length; i++)
        {
            // The first still frame: defocused stops are taken while still blurred.
            var stop = microscope.GetStop(i);
            var frame = (long)Math.Ceiling(stop.Arrive.TotalSeconds * 10 + 1e-6);
            frames.Add(microscope.RenderFrame(frame, out _));
        }
        return frames;
    }

    private static OdometryReading At(double x, double y, int segment = 0) => new(x, y, segment, 1);

    [Theory]
    [InlineData(0.1, 0.0)]
    [InlineData(0.3, 0.0)]
    [InlineData(0.5, 3.0)] // the new field defocused (sigma 3 px)
    public void A_neighbour_is_registered_to_the_pixel_although_the_odometry_is_off(double overlap, double defocus)
    {
        var step = (int)Math.Round(640 * (1 - overlap));
        var fields = Fields((1000, 1000, 0), (1000 + step, 1030, defocus));
        using var registrar = new SlideRegistrar();
        var first = registrar.Place(fields[0], At(0, 0));
        Assert.True(first.Known && !first.Anchored); // the first field is the origin of the map
        Assert.Equal((0.0, 0.0), (first.X, first.Y));
        // Odometry off by 14 px along and 9 across.
        var second = registrar.Place(fields[1], At(step - 14, 30 + 9));
        Assert.True(second.Known && second.Anchored, $"not registered: {second}");
        Assert.Equal(first.Segment, second.Segment);
        Assert.InRange(second.X, step - 1.5, step + 1.5);
        Assert.InRange(second.Y, 30 - 1.5, 30 + 1.5);
        fields.ForEach(f => f.Dispose());
    }

    [Theory]
    [InlineData(0.3, 2.7)] // the guesses overshot: read 2.7 times the true move
    [InlineData(0.5, 0.4)] // or stopped short
    public void A_move_the_odometry_partly_guessed_is_found_along_its_direction(double overlap, double misread)
    {
        var step = (int)Math.Round(640 * (1 - overlap));
        var fields = Fields((3000, 1500, 0), (3000 + step, 1500 + 12, 0));
        using var registrar = new SlideRegistrar();
        registrar.Place(fields[0], At(0, 0));
        // Blurred frames mid-move: the odometry extrapolated the speed (Guesses went up) and misread the distance.
        var second = registrar.Place(fields[1], new OdometryReading(step * misread, 12 * misread, 0, 0, Guesses: 3));
        Assert.True(second.Known && second.Anchored, $"not registered: {second}");
        Assert.InRange(second.X, step - 1.5, step + 1.5);
        Assert.InRange(second.Y, 12 - 1.5, 12 + 1.5);
        fields.ForEach(f => f.Dispose());
    }

    [Fact]
    public void A_revisit_is_the_full_overlap_case()
    {
        var fields = Fields((2000, 2000, 0), (2600, 2000, 0), (2000, 2000, 0));
        using var registrar = new SlideRegistrar();
        registrar.Place(fields[0], At(0, 0));
        registrar.Place(fields[1], At(590, 4));
        var back = registrar.Place(fields[2], At(-25, 12)); // drifted on the way back
        Assert.True(back.Anchored);
        Assert.Equal(0, back.AnchorField);
        Assert.InRange(back.X, -1.5, 1.5);
        Assert.InRange(back.Y, -1.5, 1.5);
        fields.ForEach(f => f.Dispose());
    }

    [Fact]
    public void A_new_session_writes_over_the_last_sessions_copies_and_places_its_fields_as_a_fresh_registrar_does()
    {
        var stops = new (int X, int Y, double Defocus)[] { (1000, 1000, 0), (1400, 1010, 0), (1800, 1000, 0), (1400, 1300, 0), (1000, 1000, 0) };
        var fields = Fields(stops);
        var odometry = stops.Select((s, i) => At(s.X - 1000 + 3 * i, s.Y - 1000 - 2 * i)).ToArray();
        using var fresh = new SlideRegistrar(memory: 3);
        var expected = fields.Select((f, i) => fresh.Place(f, odometry[i])).ToList();

        using var reused = new SlideRegistrar(memory: 3);
        for (var i = 0; i < fields.Count; i++) reused.Place(fields[(i + 2) % fields.Count], At(0, 0, segment: 7 + i)); // the last slide
        reused.Clear();
        Assert.Equal(4, reused.SpareBuffers); // its three copies and the one forgotten last are kept, not freed
        var placed = fields.Select((f, i) => reused.Place(f, odometry[i])).ToList();
        Assert.Equal(1, reused.SpareBuffers); // no copy allocated while one was spare

        // Same positions and anchors (field indices and segment numbers go on from the last session's).
        Assert.Equal(expected.Select(p => (p.Known, p.Anchored, p.X, p.Y, p.AnchorField)),
            placed.Select(p => (p.Known, p.Anchored, p.X, p.Y, p.AnchorField < 0 ? -1 : p.AnchorField - fields.Count)));
        Assert.True(expected[4].Anchored, $"the revisit was not registered: {expected[4]}");
        fields.ForEach(f => f.Dispose());
    }

    [Fact]
    public void Without_overlap_the_odometry_alone_places_the_field()
    {
        var fields = Fields((1000, 1000, 0), (3000, 1000, 0));
        using var registrar = new SlideRegistrar();
        registrar.Place(fields[0], At(0, 0));
        var far = registrar.Place(fields[1], At(1990, 3));
        Assert.True(far.Known);
        Assert.False(far.Anchored);
        Assert.Equal((1990.0, 3.0), (far.X, far.Y));
        fields.ForEach(f => f.Dispose());
    }

    [Fact]
    public void Lost_odometry_and_no_overlap_leave_the_position_unknown_in_a_new_segment()
    {
        var fields = Fields((1000, 1000, 0), (5000, 3000, 0), (5448, 3000, 0));
        using var registrar = new SlideRegistrar();
        var first = registrar.Place(fields[0], At(0, 0));
        var lost = registrar.Place(fields[1], At(0, 0, segment: 1));
        Assert.False(lost.Known);
        Assert.NotEqual(first.Segment, lost.Segment);
        // The next field is placed relative to the unknown one, in its segment.
        var next = registrar.Place(fields[2], At(440, 0, segment: 1));
        Assert.True(next.Anchored);
        Assert.Equal(lost.Segment, next.Segment);
        Assert.InRange(next.X, 448 - 1.5, 448 + 1.5);
        fields.ForEach(f => f.Dispose());
    }

    [Fact]
    public void A_field_that_overlaps_an_earlier_segment_joins_the_two_and_its_segment_moves_into_the_earlier_coordinates()
    {
        // Row A (2000..), the odometry lost on the way to row B (5000..), then the stage comes back beside row A.
        var fields = Fields((2000, 2000, 0), (2384, 2000, 0), (5000, 2000, 0), (5384, 2000, 0), (2484, 2200, 0), (4616, 2000, 0));
        using var registrar = new SlideRegistrar();
        var a0 = registrar.Place(fields[0], At(0, 0));
        registrar.Place(fields[1], At(384, 0));
        var b0 = registrar.Place(fields[2], At(0, 0, segment: 1)); // lost track: a new segment
        Assert.False(b0.Known);
        var b1 = registrar.Place(fields[3], At(384, 0, segment: 1));
        Assert.Equal(b0.Segment, b1.Segment);
        // Back beside row A: the odometry (still segment 1) says -2900 px; the field overlaps the second field of row A.
        var back = registrar.Place(fields[4], At(384 - 2900, 200, segment: 1));
        Assert.True(back.Known && back.Anchored, back.ToString());
        Assert.Equal(a0.Segment, back.Segment);
        Assert.InRange(back.X, 484 - 1.5, 484 + 1.5);
        Assert.InRange(back.Y, 200 - 1.5, 200 + 1.5);
        Assert.NotNull(back.Merged);
        Assert.Equal((b0.Segment, a0.Segment), (back.Merged!.From, back.Merged.Into));
        Assert.InRange(back.Merged.Dx, 3000 - 1.5, 3000 + 1.5); // row B's origin lies 3000 px right of row A's
        Assert.InRange(back.Merged.Dy, -1.5, 1.5);
        // Row B's fields now register in row A's coordinates.
        var again = registrar.Place(fields[5], At(384 - 2900 + 2132, 0, segment: 1));
        Assert.True(again.Anchored, again.ToString());
        Assert.Equal(a0.Segment, again.Segment);
        Assert.InRange(again.X, 2616 - 1.5, 2616 + 1.5);
        fields.ForEach(f => f.Dispose());
    }

    [Fact]
    public void Lost_odometry_finds_its_way_back_by_a_large_overlap()
    {
        var fields = Fields((1000, 1000, 0), (1200, 1100, 0));
        using var registrar = new SlideRegistrar();
        var first = registrar.Place(fields[0], At(0, 0));
        var found = registrar.Place(fields[1], At(0, 0, segment: 7));
        Assert.True(found.Known && found.Anchored, found.ToString());
        Assert.Equal(first.Segment, found.Segment);
        Assert.InRange(found.X, 200 - 1.5, 200 + 1.5);
        Assert.InRange(found.Y, 100 - 1.5, 100 + 1.5);
        fields.ForEach(f => f.Dispose());
    }

    [Fact]
    public void An_odometry_that_the_images_contradict_gives_an_unknown_position_not_a_wrong_one()
    {
        // The stage moved 380 px; the odometry (say, a move too fast for the frame rate) read 0. The predicted field
        // lies on the first one, which the image does not match there.
        var fields = Fields((1000, 1000, 0), (1380, 1000, 0));
        using var registrar = new SlideRegistrar();
        var first = registrar.Place(fields[0], At(0, 0));
        var misread = registrar.Place(fields[1], At(0, 0));
        Assert.True(!misread.Known || misread.Anchored && Math.Abs(misread.X - 380) < 2 && Math.Abs(misread.Y) < 2, misread.ToString());
        Assert.True(!misread.Known || misread.Segment == first.Segment);
        fields.ForEach(f => f.Dispose());
    }
}
