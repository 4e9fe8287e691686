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
}
