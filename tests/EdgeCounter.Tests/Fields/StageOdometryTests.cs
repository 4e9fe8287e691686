using EdgeCounter.Fields;
using EdgeCounter.Simulation;
using Xunit.Abstractions;

namespace EdgeCounter.Tests.Fields;

public class StageOdometryTests(ITestOutputHelper output)
{
    /// <summary>Runs the scorer and the odometry over simulator frames; returns per frame (truth, reading).</summary>
    internal static List<(FrameTruth Truth, OdometryReading Reading)> Track(MicroscopeOptions options, int frames)
    {
        using var microscope = new SimulatedMicroscope(options);
        using var scorer = new FrameScorer();
        using var odometry = new StageOdometry();
        var result = new List<(FrameTruth, OdometryReading)>();
        for (var i = 0; i < frames; i++)
        {
            using var frame = microscope.RenderFrame(i, out var truth);
            var score = scorer.Score(frame);
            var reading = odometry.Update(scorer.Grey, scorer.GreyWidth, scorer.GreyHeight, frame.Width / (double)scorer.GreyWidth, score.Motion <= 2.0);
            result.Add((truth, reading));
        }
        return result;
    }

    [Theory]
    [InlineData(0.1, 1UL)]
    [InlineData(0.3, 2UL)]
    [InlineData(0.5, 3UL)]
    public void Tracks_the_meander_of_the_simulated_stage(double overlap, ulong seed)
    {
        var options = new MicroscopeOptions { Seed = seed, FramesPerSecond = 15, FieldOverlap = overlap, RevisitProbability = 0.1 };
        var track = Track(options, 450);
        var origin = track[0];
        var errors = new List<double>();
        foreach (var (truth, reading) in track)
        {
            if (reading.Segment != origin.Reading.Segment || truth.Moving) continue;
            var ex = reading.X - origin.Reading.X - (truth.StageX - origin.Truth.StageX);
            var ey = reading.Y - origin.Reading.Y - (truth.StageY - origin.Truth.StageY);
            errors.Add(Math.Sqrt(ex * ex + ey * ey));
        }
        var segments = track[^1].Reading.Segment - origin.Reading.Segment;
        output.WriteLine($"overlap {overlap}: {segments} segment breaks, {errors.Count} still frames in the first segment, error median {errors.Order().ElementAt(errors.Count / 2):0.0} max {errors.Max():0.0} px");
        foreach (var (t, r) in track.Take(120)) output.WriteLine($"{t.FrameIndex} moving {t.Moving} true {t.StageX:0},{t.StageY:0} est {r.X:0.0},{r.Y:0.0} seg {r.Segment} conf {r.Confidence:0.00}");
        Assert.True(segments <= 1, $"{segments} times lost track");
    }

    [Fact]
    public void Tracks_long_fast_oblique_moves()
    {
        // Revisit-like moves: several fields back and across, at full stage speed (about 40 % of a field per frame).
        var stops = new[] { (200, 200), (2200, 900), (400, 1300), (3000, 300), (3000, 1500) };
        var options = new MicroscopeOptions { Seed = 5, FramesPerSecond = 15, Stops = stops.Select(s => new ScriptedStop(s.Item1, s.Item2, TimeSpan.FromSeconds(1))).ToArray() };
        var track = Track(options, 15 * 9);
        var first = track[0];
        foreach (var (x, y) in stops.Skip(1))
        {
            var at = track.Last(t => !t.Truth.Moving && t.Truth.StageX == x && t.Truth.StageY == y);
            var ex = at.Reading.X - first.Reading.X - (x - first.Truth.StageX);
            var ey = at.Reading.Y - first.Reading.Y - (y - first.Truth.StageY);
            output.WriteLine($"stop {x},{y}: error {ex:0.0},{ey:0.0} segment {at.Reading.Segment}");
            Assert.Equal(first.Reading.Segment, at.Reading.Segment);
            Assert.True(Math.Sqrt(ex * ex + ey * ey) < 60, $"stop {x},{y}: odometry off by {ex:0},{ey:0} px");
        }
    }

    private static (double Ex, double Ey, bool Flagged) MoveError(double fps, double exposureMs, int dx, int dy)
    {
        var options = new MicroscopeOptions
        {
            Seed = 9, FramesPerSecond = fps, Exposure = TimeSpan.FromMilliseconds(exposureMs), MovingDefocusSigma = 2,
            Stops = [new ScriptedStop(300, 300, TimeSpan.FromSeconds(1)), new ScriptedStop(300 + dx, 300 + dy, TimeSpan.FromSeconds(1.5), InitialDefocusSigma: 5)],
        };
        var track = Track(options, (int)(2.5 * fps));
        var (first, last) = (track[0], track[^1]);
        Assert.False(last.Truth.Moving);
        var flagged = last.Reading.Segment != first.Reading.Segment || last.Reading.Guesses != first.Reading.Guesses;
        return (last.Reading.X - first.Reading.X - dx, last.Reading.Y - first.Reading.Y - dy, flagged);
    }

    [Fact]
    public void Tracks_a_move_with_long_blur_streaks_that_ends_out_of_focus()
    {
        // 20 ms exposure: streaks of up to 80 px at full speed; the stop arrives defocused (sigma 5 px).
        var (ex, ey, flagged) = MoveError(15, 20, 800, 350);
        output.WriteLine($"error {ex:0.0},{ey:0.0} flagged {flagged}");
        Assert.False(flagged);
        Assert.True(Math.Abs(ex) < 40 && Math.Abs(ey) < 40, $"odometry off by {ex:0},{ey:0} px");
    }

    [Fact]
    public void Still_frames_add_no_travel()
    {
        var options = new MicroscopeOptions { Seed = 4, Stops = [new ScriptedStop(500, 500, TimeSpan.FromSeconds(10))] };
        var track = Track(options, 60);
        Assert.All(track, t => Assert.Equal((0.0, 0.0, 0), (t.Reading.X, t.Reading.Y, t.Reading.Segment)));
    }

    [Fact]
    public void A_blank_field_in_motion_is_a_guess_and_a_run_of_them_ends_the_segment()
    {
        using var odometry = new StageOdometry();
        var rng = new Random(3);
        var textured = new byte[160 * 120];
        rng.NextBytes(textured);
        var blank = new byte[160 * 120];
        odometry.Update(textured, 160, 120, 4, still: true);
        odometry.Update(blank, 160, 120, 4, still: false);
        Assert.Equal(1, odometry.Guesses);
        for (var i = 0; i < StageOdometry.MaxGuessesInARow; i++) odometry.Update(blank, 160, 120, 4, still: false);
        Assert.Equal(1, odometry.Current.Segment);
    }
}
