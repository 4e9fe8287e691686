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

    [Fact]
    public void Debug_move()
    {
        var options = new EdgeCounter.Acquisition.SimulatorOptions { Seed = 3, FieldOverlap = 0.3 }.ToMicroscopeOptions();
        var track = Track(options, 1030);
        foreach (var (t, r) in track.Skip(1015)) output.WriteLine($"{t.FrameIndex} moving {t.Moving} true {t.StageX:0},{t.StageY:0} est {r.X:0.0},{r.Y:0.0} seg {r.Segment} conf {r.Confidence:0.00}");
    }
}
