using EdgeCounter.Detection;
using EdgeCounter.Simulation;

namespace EdgeCounter.IntegrationTests.Detection;

/// <summary>
/// Automatic pixel-scale calibration with the shipped model on simulator slides, whose pixel size is known exactly:
/// nothing about the scale is given, the red cells have to tell it.
/// </summary>
public class AutoScaleTests
{
    /// <summary>The same 64 x 48 µm of slide per field at every scale, as a camera behind each objective would see it.</summary>
    private static SyntheticFields Slides(double micrometresPerPixel, ulong seed = 99) =>
        new(seed, SlideProfile.Blood, (int)Math.Round(64 / micrometresPerPixel), (int)Math.Round(48 / micrometresPerPixel), micrometresPerPixel);

    private static AutoScalingDetector AutoScaling(ListLogger? logger = null) =>
        new(RealModel.Load(), logger ?? new ListLogger());

    /// <summary>Feeds fields until the estimate locks (or <paramref name="maxFields"/> pass); returns the fields used.</summary>
    private static int FeedUntilLocked(AutoScalingDetector detector, SyntheticFields slides, int firstField = 0, int maxFields = 12)
    {
        for (var i = 0; i < maxFields; i++)
        {
            using var field = slides.Render(firstField + i, out _);
            detector.Detect(field);
            if (detector.PixelScale.Source == PixelScaleSource.Estimated) return i + 1;
        }
        return maxFields;
    }

    [RequiresModelTheory]
    [InlineData(0.05)]
    [InlineData(0.1)]
    [InlineData(0.2)]
    public void SimulatorSlidesConvergeWithinFivePercentOfTheTruth(double micrometresPerPixel)
    {
        var logger = new ListLogger();
        using var detector = AutoScaling(logger);
        using var slides = Slides(micrometresPerPixel);
        var fields = FeedUntilLocked(detector, slides);
        var scale = detector.PixelScale;
        Assert.Equal(PixelScaleSource.Estimated, scale.Source);
        Assert.InRange(scale.MicrometresPerPixel!.Value / micrometresPerPixel, 0.95, 1.05);
        Assert.InRange(fields, 1, 8);
        Assert.Contains(logger.Lines, l => l.Message.StartsWith("Pixel scale estimated: ", StringComparison.Ordinal));
    }

    [RequiresModelFact]
    public void TheEstimateFindsTheRedCellsThatTheModelScaleMisses()
    {
        // 0.3 µm/px (a 40x objective): red cells ~26 px, a third of the size the model expects, below the range it was
        // trained for. Unscaled it finds few of them; scaled, nearly all.
        using var slides = new SyntheticFields(7, SlideProfile.Blood, 400, 300, 0.3);
        using var auto = AutoScaling();
        using var plain = RealModel.Load();
        FeedUntilLocked(auto, slides);
        int truth = 0, foundAuto = 0, foundPlain = 0;
        for (var i = 20; i < 23; i++)
        {
            using var field = slides.Render(i, out var cells);
            var redCells = cells.Cells.Where(c => c.Type == CellType.Erythrocyte).Select(c => new BoxF(c.Box.Left, c.Box.Top, c.Box.Right, c.Box.Bottom)).ToList();
            truth += redCells.Count;
            int Found(DetectionResult r) => BoxMatcher.Match(r.Detections.Where(d => d.Class == "RBC").Select(d => (d.Score, d.Box)).ToList(), redCells).Count(m => m >= 0);
            foundAuto += Found(auto.Detect(field));
            foundPlain += Found(plain.Detect(field));
        }
        Assert.True(truth > 100, $"{truth} red cells");
        Assert.True(foundAuto > 0.8 * truth && foundPlain < 0.5 * foundAuto, $"red cells matched at IoU 0.5: unscaled {foundPlain}, auto-scaled {foundAuto}, of {truth}");
    }

    [RequiresModelFact]
    public void AnObjectiveChangeIsFollowed()
    {
        // Same camera, 100x then 50x objective: 0.1 then 0.2 µm/px on 640x480 frames.
        var logger = new ListLogger();
        using var detector = AutoScaling(logger);
        using var at100x = new SyntheticFields(5, SlideProfile.Blood, 640, 480, 0.1);
        using var at50x = new SyntheticFields(6, SlideProfile.Blood, 640, 480, 0.2);
        FeedUntilLocked(detector, at100x);
        Assert.InRange(detector.PixelScale.MicrometresPerPixel!.Value, 0.095, 0.105);
        for (var i = 0; i < 6 && detector.PixelScale.Estimations < 2; i++)
        {
            using var field = at50x.Render(i, out _);
            detector.Detect(field);
        }
        Assert.Equal(2, detector.PixelScale.Estimations);
        Assert.InRange(detector.PixelScale.MicrometresPerPixel!.Value, 0.19, 0.21);
        Assert.Contains(logger.Lines, l => l.Message.Contains("smaller than when the pixel scale was estimated"));
    }

    [RequiresModelFact]
    public void AFieldWithoutRedCellsKeepsTheGuessAndSaysSo()
    {
        var logger = new ListLogger();
        using var detector = AutoScaling(logger);
        using var blank = new OpenCvSharp.Mat(240, 320, OpenCvSharp.MatType.CV_8UC3, new OpenCvSharp.Scalar(225, 215, 235));
        for (var i = 0; i < 4; i++) Assert.DoesNotContain(detector.Detect(blank).Detections, d => d.Score >= 0.5f);
        Assert.Equal(PixelScaleSource.Estimating, detector.PixelScale.Source);
        Assert.Equal(1.0, detector.PixelScale.InputScale);
        Assert.Single(logger.Lines, l => l.Message.Contains("fields in a row without 3 confident, whole red cells"));
    }
}
