using EdgeCounter.Detection;

namespace EdgeCounter.Tests.Detection;

public class RedCellRulerTests
{
    private static readonly RedCellRuler Ruler = new("RBC", 85.7);

    private static EdgeCounter.Detection.Detection Cell(float x, float y, float w, float h, float score = 0.9f, string cls = "RBC") =>
        new(cls, cls, score, new BoxF(x, y, x + w, y + h));

    [Fact]
    public void MeasuresOnlyConfidentWholeRoundishRedCells()
    {
        var sizes = Ruler.Measure(
        [
            Cell(100, 100, 40, 40),                 // kept: 40
            Cell(200, 100, 36, 49),                 // kept: √(36·49) = 42
            Cell(300, 100, 40, 40, score: 0.3f),    // doubtful
            Cell(100, 200, 40, 40, cls: "WBC"),     // not a red cell
            Cell(0, 200, 30, 40),                   // cut by the left edge
            Cell(380, 200, 40, 40),                 // touches the right edge (frame 420 wide)
            Cell(200, 200, 60, 30),                 // 2:1, two cells in one box
        ], frameWidth: 420, frameHeight: 400);
        Assert.Equal([40, 42], sizes.Select(s => Math.Round(s, 6)));
    }

    [Fact]
    public void ScaleBringsTheMedianToTheModelSizeWithinTheAllowedRange()
    {
        Assert.Equal(2.0, Ruler.ScaleFor(42.85), 3);
        Assert.Equal(Ruler.Settings.MaxScale, Ruler.ScaleFor(1));
        Assert.Equal(Ruler.Settings.MinScale, Ruler.ScaleFor(10_000));
    }

    [Fact]
    public void MedianOfOddAndEvenCounts()
    {
        Assert.Equal(3, RedCellRuler.Median([5, 1, 3]));
        Assert.Equal(2.5, RedCellRuler.Median([4, 1, 3, 2]));
        Assert.True(double.IsNaN(RedCellRuler.Median([])));
    }

    [Fact]
    public void NonsenseSettingsAreRefused()
    {
        Assert.Throws<ArgumentException>(() => new RedCellRuler("RBC", 85, new PixelScaleCalibrationSettings { MinCellsToLock = 1, MinCellsPerField = 3 }));
        Assert.Throws<ArgumentException>(() => new RedCellRuler("RBC", 85, new PixelScaleCalibrationSettings { DriftTolerance = 0.01 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RedCellRuler("RBC", 0));
    }
}

/// <summary>
/// The calibration's logic against a stand-in for the detector with the flaws of a real one: red cells far from the
/// size it was trained at come out with sizes pulled towards that size, and beyond 0.45-2.3x of it none are found.
/// (Tests with the real model on simulator slides are in the integration tests.)
/// </summary>
public class PixelScaleCalibrationTests
{
    private const double ModelPx = 85.7;

    private static RedCellRuler Ruler(PixelScaleCalibrationSettings? settings = null) => new("RBC", ModelPx, settings);

    /// <summary>Sizes in frame pixels of <paramref name="cells"/> red cells truly <paramref name="framePx"/> wide, as the stand-in reports them at <paramref name="scale"/>.</summary>
    private static List<double> BiasedModel(double framePx, double scale, int cells, Random rng)
    {
        var ratio = framePx * scale / ModelPx;
        if (ratio is < 0.45 or > 2.3) return [];
        var predictedInputPx = ModelPx * Math.Pow(ratio, 0.8);
        return Enumerable.Range(0, cells).Select(_ => predictedInputPx / scale * (1 + 0.08 * (rng.NextDouble() * 2 - 1))).ToList();
    }

    private static FieldScaleSearch Search(PixelScaleCalibration calibration, double framePx, int cells, Random rng)
    {
        var search = calibration.BeginField();
        while (search.NextScale is { } s) search.Observe(s, BiasedModel(framePx, s, cells, rng));
        calibration.Complete(search);
        return search;
    }

    [Theory]
    [InlineData(0.35)]   // 0.035 µm/px: red cells ~245 px wide, none found at the first guess
    [InlineData(0.5)]
    [InlineData(1.0)]
    [InlineData(2.0)]
    [InlineData(3.0)]    // 0.3 µm/px: ~29 px, none found at the first guess either
    public void OneFieldConvergesToTheTrueScaleDespiteTheBias(double trueScale)
    {
        var calibration = new PixelScaleCalibration(Ruler(), 0.1);
        var search = Search(calibration, ModelPx / trueScale, cells: 60, new Random(1));
        Assert.NotNull(search.Estimate);
        Assert.InRange(search.Estimate!.Value / trueScale, 0.97, 1.03);
        Assert.InRange(search.Passes, 1, calibration.Settings.MaxPassesPerField);
        Assert.True(calibration.IsLocked);   // 60 cells ≥ 40
        Assert.Equal(PixelScaleSource.Estimated, calibration.Status.Source);
        Assert.InRange(calibration.Status.MicrometresPerPixel!.Value / (0.1 * trueScale), 0.97, 1.03);
    }

    [Fact]
    public void TextureFoundAtAHugeEnlargementIsNotTakenForRedCells()
    {
        // BCCD-like: red cells 100 px wide (true factor 0.857) that the stand-in finds only when shrunk; at 4x it finds
        // "cells" of 14 px in the texture of the real ones, asking for ever more enlargement.
        var rng = new Random(5);
        List<double> Model(double scale) => scale >= 3.5 ? Enumerable.Repeat(13.8, 20).ToList() : scale > 0.95 ? [] : BiasedModel(100, scale, 8, rng);
        var calibration = new PixelScaleCalibration(Ruler(new PixelScaleCalibrationSettings { CoarseScales = [2, 4, 0.5] }), 0.1, initialScale: 2);
        var search = calibration.BeginField();
        var tried = new List<double>();
        while (search.NextScale is { } s) { tried.Add(s); search.Observe(s, Model(s)); }
        Assert.Equal([2, 4, 0.5], tried.Take(3));   // the guess, the nearest coarse factor (texture: refused), the next
        Assert.InRange(search.Estimate!.Value / (ModelPx / 100), 0.97, 1.03);
        Assert.Equal(tried.Count - 1, search.BestPass);

        // With nothing but the texture to go by there is no estimate, and the guess stays.
        var fooled = new PixelScaleCalibration(Ruler(new PixelScaleCalibrationSettings { CoarseScales = [2, 4] }), 0.1, initialScale: 2);
        var none = fooled.BeginField();
        while (none.NextScale is { } s) none.Observe(s, Model(s));
        Assert.Null(none.Estimate);
        Assert.False(fooled.Complete(none));
        Assert.Equal(2, fooled.Scale);
    }

    [Fact]
    public void SmallFieldsPoolTheirCellsUntilEnoughAgree()
    {
        var calibration = new PixelScaleCalibration(Ruler(), 0.1);
        var rng = new Random(2);
        for (var field = 1; field <= 3; field++)
        {
            Search(calibration, ModelPx / 1.43, cells: 12, rng);
            Assert.False(calibration.IsLocked);
            Assert.Equal(PixelScaleSource.Estimating, calibration.Status.Source);
            Assert.Equal(12 * field, calibration.Status.RedCells);
        }
        // Already the guess for the next field: a search from there takes one or two passes.
        Assert.InRange(calibration.Scale / 1.43, 0.96, 1.04);
        var fourth = Search(calibration, ModelPx / 1.43, cells: 12, rng);
        Assert.InRange(fourth.Passes, 1, 2);
        Assert.True(calibration.IsLocked);
        Assert.Equal(4, calibration.Status.Fields);
        Assert.Single(calibration.Status.Estimates!);
    }

    [Fact]
    public void AnObjectiveChangeIsNoticedAfterAFewFieldsAndOneOddFieldIsNot()
    {
        var calibration = new PixelScaleCalibration(Ruler(), 0.1);
        var rng = new Random(3);
        Search(calibration, ModelPx, cells: 80, rng);
        Assert.True(calibration.IsLocked);
        var locked = calibration.Scale;

        // One field of large cells (a macrocytic patch), then normal ones: nothing moves.
        Assert.False(calibration.Track(BiasedModel(ModelPx * 1.6, locked, 50, rng)));
        Assert.False(calibration.Track(BiasedModel(ModelPx, locked, 50, rng)));
        Assert.False(calibration.Track(BiasedModel(ModelPx * 1.6, locked, 50, rng)));
        Assert.False(calibration.Track([]));    // no red cells: no evidence either way
        Assert.Equal(locked, calibration.Scale);

        // A 60x objective after the 100x one: cells 0.6x the size, field after field.
        var drifted = Enumerable.Range(0, calibration.Settings.DriftFields).Select(_ => calibration.Track(BiasedModel(ModelPx * 0.6, locked, 50, rng))).ToList();
        Assert.Equal(3, calibration.Settings.DriftFields);
        Assert.Equal(new[] { false, false, true }, drifted);
        Assert.False(calibration.IsLocked);
        Assert.InRange(calibration.LastDriftRatio, 0.55, 0.75);
        var search = Search(calibration, ModelPx * 0.6, cells: 80, rng);
        Assert.InRange(search.Estimate!.Value / (1 / 0.6), 0.97, 1.03);
        Assert.True(calibration.IsLocked);
        Assert.Equal(2, calibration.Status.Estimations);
    }

    [Fact]
    public void FieldsWithoutRedCellsGiveNoEstimateAndSoonStopCostingCoarsePasses()
    {
        var calibration = new PixelScaleCalibration(Ruler(), 0.1);
        var rng = new Random(4);
        var coarse = calibration.Settings.CoarseScales.Count;
        for (var field = 0; field < calibration.Settings.CoarseSearchFields; field++)
        {
            var search = Search(calibration, ModelPx, cells: 0, rng);
            Assert.Null(search.Estimate);
            Assert.Equal(coarse, search.Passes);   // the guess (1, itself a coarse factor) and every other coarse factor
        }
        Assert.Equal(1, Search(calibration, ModelPx, cells: 0, rng).Passes);
        Assert.Equal(PixelScaleSource.Estimating, calibration.Status.Source);
        Assert.Equal(1.0, calibration.Scale);
        // Red cells at last: found at the guess, coarse factors allowed again afterwards.
        Assert.NotNull(Search(calibration, ModelPx, cells: 50, rng).Estimate);
        Assert.True(calibration.IsLocked);
    }

    [Fact]
    public void TheProtocolIsEnforced()
    {
        var calibration = new PixelScaleCalibration(Ruler(), 0.1);
        Assert.Throws<InvalidOperationException>(() => calibration.Track([85, 85, 85]));
        var search = calibration.BeginField();
        Assert.Throws<InvalidOperationException>(() => calibration.Complete(search));   // not finished
        search.Observe(1, Enumerable.Repeat(ModelPx, 50).ToList());
        Assert.Null(search.NextScale);
        Assert.Throws<InvalidOperationException>(() => search.Observe(1, []));
        Assert.True(calibration.Complete(search));
        Assert.Throws<InvalidOperationException>(() => calibration.BeginField());
    }
}
