using EdgeCounter.Detection;

namespace EdgeCounter.Tests.Detection;

/// <summary>Hand-worked COCO cases: 101 recall points, IoU 0.50:0.95, area ranges, maxDets.</summary>
public class CocoEvaluatorTests
{
    private static BoxF Box(float x, float y, float w, float h) => new(x, y, x + w, y + h);

    [Fact]
    public void PerfectDetectionScoresOneEverywhere()
    {
        var e = new CocoEvaluator(["cell"]);
        e.AddImage([(0, Box(10, 10, 50, 50))], [(0, 0.9f, Box(10, 10, 50, 50))]);
        var s = e.Evaluate();
        Assert.Equal(1, s.AP, 9);
        Assert.Equal(1, s.AP50, 9);
        Assert.Equal(1, s.AP75, 9);
        Assert.Equal(1, s.APMedium, 9);
        Assert.True(double.IsNaN(s.APSmall));  // no small ground truth: COCO's -1, left out
        Assert.True(double.IsNaN(s.APLarge));
    }

    [Fact]
    public void IoUOf062MatchesAtThreeOfTenThresholds()
    {
        // Same box cut to 62 % of its height: IoU 0.62 passes 0.50, 0.55, 0.60 only.
        var e = new CocoEvaluator(["cell"]);
        e.AddImage([(0, Box(0, 0, 100, 100))], [(0, 0.9f, Box(0, 0, 100, 62))]);
        var s = e.Evaluate();
        Assert.Equal(0.3, s.AP, 9);
        Assert.Equal(1, s.AP50, 9);
        Assert.Equal(0, s.AP75, 9);
    }

    [Fact]
    public void FalsePositiveAboveTheOnlyHitHalvesPrecisionUpToHalfRecall()
    {
        // Scores: FP 0.9, TP 0.8; 2 ground truth. rc = [0, .5], pr = [0, .5] -> envelope .5 for recall 0..0.50 (51 points).
        var e = new CocoEvaluator(["cell"]);
        e.AddImage([(0, Box(0, 0, 40, 40)), (0, Box(100, 100, 40, 40))],
            [(0, 0.9f, Box(200, 200, 40, 40)), (0, 0.8f, Box(0, 0, 40, 40))]);
        var s = e.Evaluate();
        Assert.Equal(51 * 0.5 / 101, s.AP50, 9);
        Assert.Equal(0.5, s.PerClass[0].Recall50, 9);
    }

    [Fact]
    public void InterpolatedPrecisionTakesTheEnvelope()
    {
        // 3 ground truth; TP .9, FP .8, TP .7. rc = [1/3, 1/3, 2/3], pr = [1, .5, 2/3] -> envelope [1, 2/3, 2/3].
        // Recall points 0.00..0.33 (34) get 1, 0.34..0.66 (33) get 2/3, the rest 0: AP50 = (34 + 22) / 101.
        var e = new CocoEvaluator(["cell"]);
        e.AddImage([(0, Box(0, 0, 40, 40)), (0, Box(100, 0, 40, 40)), (0, Box(200, 0, 40, 40))],
            [(0, 0.9f, Box(0, 0, 40, 40)), (0, 0.8f, Box(0, 300, 40, 40)), (0, 0.7f, Box(100, 0, 40, 40))]);
        Assert.Equal(56.0 / 101, e.Evaluate().AP50, 9);
    }

    [Fact]
    public void DetectionsArePooledAcrossImagesByScore()
    {
        // Image 1: TP at .6; image 2: FP at .9. Pooled: FP .9, TP .6 -> same as one image with FP above TP, 1 GT: 
        // rc = [0, 1], pr = [0, .5] -> .5 at every recall point.
        var e = new CocoEvaluator(["cell"]);
        e.AddImage([(0, Box(0, 0, 40, 40))], [(0, 0.6f, Box(0, 0, 40, 40))]);
        e.AddImage([], [(0, 0.9f, Box(0, 0, 40, 40))]);
        Assert.Equal(0.5, e.Evaluate().AP50, 9);
    }

    [Fact]
    public void AreaRangesSplitTruthAndIgnoreUnmatchedDetectionsOfOtherSizes()
    {
        // Small GT (20x20) found; large GT (120x120) missed; a large false positive scores highest.
        var e = new CocoEvaluator(["cell"]);
        e.AddImage([(0, Box(0, 0, 20, 20)), (0, Box(200, 200, 120, 120))],
            [(0, 0.95f, Box(400, 0, 100, 100)), (0, 0.9f, Box(0, 0, 20, 20))]);
        var s = e.Evaluate();
        Assert.Equal(1, s.APSmall, 9);          // the large FP is ignored for the small range
        Assert.Equal(0, s.APLarge, 9);          // the large GT is missed; the large FP counts
        Assert.True(double.IsNaN(s.APMedium));  // no medium ground truth
        // All sizes: FP then TP, 2 GT: rc = [0, .5], pr = [0, .5] -> .5 for 51 recall points.
        Assert.Equal(51 * 0.5 / 101, s.AP, 9);
    }

    [Fact]
    public void AreaBoundaryOf32SquaredIsBothSmallAndMedium()
    {
        var e = new CocoEvaluator(["cell"]);
        e.AddImage([(0, Box(0, 0, 32, 32))], [(0, 0.9f, Box(0, 0, 32, 32))]);
        var s = e.Evaluate();
        Assert.Equal(1, s.APSmall, 9);
        Assert.Equal(1, s.APMedium, 9);
    }

    [Fact]
    public void OnlyTheTopMaxDetsDetectionsPerImageCount()
    {
        var detections = Enumerable.Range(0, 100).Select(i => (0, 0.9f - i * 0.001f, Box(500 + i, 500, 10, 10))).ToList();
        detections.Add((0, 0.5f, Box(0, 0, 40, 40))); // the only hit, 101st by score
        var capped = new CocoEvaluator(["cell"], maxDetectionsPerImage: 100);
        capped.AddImage([(0, Box(0, 0, 40, 40))], detections);
        Assert.Equal(0, capped.Evaluate().AP50, 9);
        var wide = new CocoEvaluator(["cell"], maxDetectionsPerImage: 101);
        wide.AddImage([(0, Box(0, 0, 40, 40))], detections);
        Assert.Equal(1.0 / 101, wide.Evaluate().AP50, 9); // recall 1 reached at precision 1/101, held for all 101 points
    }

    [Fact]
    public void ClassesWithoutTruthAreLeftOutOfTheMean()
    {
        var e = new CocoEvaluator(["a", "b", "c"]);
        e.AddImage([(0, Box(0, 0, 40, 40)), (1, Box(100, 0, 40, 40))],
            [(0, 0.9f, Box(0, 0, 40, 40)), (2, 0.9f, Box(300, 0, 40, 40))]);
        var s = e.Evaluate();
        Assert.Equal(0.5, s.AP50, 9);  // a = 1, b = 0 (missed), c has no truth
        Assert.Equal(1, s.PerClass[0].AP50, 9);
        Assert.Equal(0, s.PerClass[1].AP50, 9);
        Assert.True(double.IsNaN(s.PerClass[2].AP50));
    }

    [Fact]
    public void ADetectionMatchesAtMostOneTruthAndTheBestOverlap()
    {
        // Two detections on one GT: the higher-scored takes it, the second is a false positive.
        var e = new CocoEvaluator(["cell"]);
        e.AddImage([(0, Box(0, 0, 40, 40))], [(0, 0.9f, Box(0, 0, 40, 40)), (0, 0.8f, Box(1, 1, 40, 40))]);
        var s = e.Evaluate();
        Assert.Equal(1, s.AP50, 9);          // recall reaches 1 at the first detection with precision 1
        Assert.Equal(1, s.PerClass[0].Recall50, 9);
    }

    [Fact]
    public void DifficultTruthIsNeitherToBeFoundNorAFalsePositiveWhenFound()
    {
        // One real cell found at 0.8; a difficult one found at 0.9 and another never found. Ignoring both difficult
        // boxes leaves one positive, found first among counted detections: AP50 1. Counted as ordinary truth, the
        // unfound one caps recall at 2/3: 67 of 101 recall points at precision 1.
        BoxF real = Box(0, 0, 40, 40), found = Box(100, 100, 40, 40), missed = Box(200, 0, 40, 40);
        var voc = new CocoEvaluator(["cell"]);
        voc.AddImageWithIgnore([(0, real, false), (0, found, true), (0, missed, true)], [(0, 0.9f, found), (0, 0.8f, real)]);
        var s = voc.Evaluate();
        Assert.Equal(1, s.AP50, 9);
        Assert.Equal(1, s.PerClass[0].GroundTruth);

        var plain = new CocoEvaluator(["cell"]);
        plain.AddImage([(0, real), (0, found), (0, missed)], [(0, 0.9f, found), (0, 0.8f, real)]);
        Assert.Equal(67 / 101.0, plain.Evaluate().AP50, 9);
    }

    [Fact]
    public void OperatingPointCountsSkipDifficultTruth()
    {
        BoxF real = Box(0, 0, 40, 40), found = Box(100, 100, 40, 40), missed = Box(200, 0, 40, 40);
        var counts = new OperatingPointCounts();
        BoxMatcher.Accumulate(counts, [(0.9f, found), (0.8f, real), (0.7f, Box(300, 300, 40, 40))], [real, found, missed], ignore: [false, true, true]);
        Assert.Equal((1, 1, 0), (counts.TruePositives, counts.FalsePositives, counts.Missed));
    }
}
