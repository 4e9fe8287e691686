using EdgeCounter.Fields;
using EdgeCounter.Simulation;
using Xunit.Abstractions;

namespace EdgeCounter.Tests.Fields;

/// <summary>The field stage end to end on the simulated microscope, judged by its ground truth.</summary>
public class FieldsOnSimulatorTests(ITestOutputHelper output)
{
    [Fact]
    public void Fields_are_taken_only_when_still_and_sharp_once_per_stop_and_revisits_are_recognised()
    {
        var options = new MicroscopeOptions { Seed = 11, FramesPerSecond = 15, RevisitProbability = 0.25, DefocusProbability = 0.5 };
        using var microscope = new SimulatedMicroscope(options);
        using var scorer = new FrameScorer();
        using var guard = new RevisitGuard();
        var detector = new StableFieldDetector(new FieldOptions());

        var frames = (long)(60 * options.FramesPerSecond); // one simulated minute
        var takenStops = new List<int>();
        var counted = new List<int>();
        var revisitsRecognised = new List<(int Stop, int Of)>();
        double maxStillMotion = 0, minMovingMotion = double.MaxValue;
        for (long i = 0; i < frames; i++)
        {
            using var image = microscope.RenderFrame(i, out var truth);
            var score = scorer.Score(image);
            if (i > 0 && truth.Moving) minMovingMotion = Math.Min(minMovingMotion, score.Motion);
            if (i > 0 && !truth.Moving && truth.StopIndex >= 0) maxStillMotion = Math.Max(maxStillMotion, score.Motion);
            var decision = detector.Next(TimeSpan.FromSeconds(i / options.FramesPerSecond), score);
            if (decision != FieldDecision.Take) continue;

            Assert.False(truth.Moving, $"frame {i} taken while the stage moved");
            Assert.True(truth.DefocusSigma < 1.0, $"frame {i} taken while defocused (sigma {truth.DefocusSigma:F2})");
            takenStops.Add(truth.StopIndex);
            if (guard.CheckAndRemember(image, out var match))
            {
                Assert.True(truth.RevisitOf >= 0, $"stop {truth.StopIndex} taken as a revisit (match {match:F2}) but it is a new field");
                revisitsRecognised.Add((truth.StopIndex, truth.RevisitOf));
            }
            else
            {
                Assert.True(truth.RevisitOf < 0 || !counted.Contains(truth.RevisitOf), $"stop {truth.StopIndex} revisits {truth.RevisitOf} and was counted again");
                counted.Add(truth.StopIndex);
            }
        }
        var lastStop = microscope.StopIndexAt(frames - 1);
        output.WriteLine($"stops {lastStop + 1}, taken {takenStops.Count}, counted {counted.Count}, revisits recognised {revisitsRecognised.Count}; motion still max {maxStillMotion:F2}, moving min {minMovingMotion:F2}");

        Assert.Equal(takenStops.Distinct().Count(), takenStops.Count); // each stop at most once
        // Every stop that was still and sharp long enough before the stage left is taken (the last one may be cut off).
        var takeable = Enumerable.Range(0, lastStop).Count(s => microscope.FirstCountableFrame(s) >= 0);
        Assert.InRange(takenStops.Count, takeable - 1, takeable + 1);
        Assert.NotEmpty(revisitsRecognised);
    }
}
