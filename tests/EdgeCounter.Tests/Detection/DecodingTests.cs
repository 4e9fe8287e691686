using EdgeCounter.Detection;

namespace EdgeCounter.Tests.Detection;

public class HeatmapDecoderTests
{
    // 2 classes, 2 subtypes, grid 2x3 (h x w), stride 4.
    private static readonly OutputGeometry Grid = new(Classes: 2, Subtypes: 2, Height: 2, Width: 3, Stride: 4);

    private static float[] Plane(int channels) => new float[channels * 6];

    [Fact]
    public void DecodesCentreSizeOffsetAndSubtypeAtAPeak()
    {
        var heat = Plane(2); var size = Plane(2); var off = Plane(2); var sub = Plane(2);
        var k = 1 * 3 + 2;               // cell (i=1, j=2)
        heat[k] = 0.8f;                  // class 0
        off[k] = 0.5f; off[6 + k] = 0.25f;
        size[k] = 8; size[6 + k] = 6;
        sub[k] = 0.3f; sub[6 + k] = 0.7f;
        var output = new List<RawDetection>();
        HeatmapDecoder.Decode(heat, size, off, sub, Grid, [0.5f, 0.5f], subtypeClassIndex: 0, output);

        var d = Assert.Single(output);
        Assert.Equal(0, d.ClassIndex);
        Assert.Equal(1, d.SubtypeIndex);
        Assert.Equal(0.8f, d.Score);
        // centre ((2 + .5) * 4, (1 + .25) * 4) = (10, 5); box = centre ± (4, 3)
        Assert.Equal(new BoxF(6, 2, 14, 8), d.Box);
    }

    [Fact]
    public void EachClassUsesItsOwnThreshold()
    {
        var heat = Plane(2); var size = Plane(2); var off = Plane(2);
        heat[0] = 0.4f;          // class 0, below its 0.5
        heat[6 + 1] = 0.4f;      // class 1, above its 0.3
        heat[6 + 2] = 0.3f;      // class 1, exactly its threshold: not above it
        heat[6 + 3] = 0.31f;     // class 1, above
        var output = new List<RawDetection>();
        HeatmapDecoder.Decode(heat, size, off, default, Grid, [0.5f, 0.3f], subtypeClassIndex: -1, output);
        Assert.Equal([0.4f, 0.31f], output.Select(d => d.Score));
        Assert.All(output, d => Assert.Equal(1, d.ClassIndex));
        Assert.All(output, d => Assert.Equal(-1, d.SubtypeIndex));
    }

    [Fact]
    public void OnlyTheSubtypeClassReadsSubtypes()
    {
        var heat = Plane(2); var size = Plane(2); var off = Plane(2); var sub = Plane(2);
        heat[6 + 0] = 0.9f; // class 1
        sub[0] = 1;
        var output = new List<RawDetection>();
        HeatmapDecoder.Decode(heat, size, off, sub, Grid, [0.1f, 0.1f], subtypeClassIndex: 0, output);
        Assert.Equal(-1, Assert.Single(output).SubtypeIndex);
    }

    [Fact]
    public void ZeroThresholdStillSkipsEmptyCellsAndNaN()
    {
        var heat = Plane(2); var size = Plane(2); var off = Plane(2);
        heat[3] = float.NaN;
        heat[4] = 0.01f;
        var output = new List<RawDetection>();
        HeatmapDecoder.Decode(heat, size, off, default, Grid, [0f, 0f], -1, output);
        Assert.Equal(0.01f, Assert.Single(output).Score);
    }

    [Fact]
    public void ShortBuffersAreRejected()
    {
        var output = new List<RawDetection>();
        Assert.Throws<ArgumentException>(() => HeatmapDecoder.Decode(new float[5], new float[12], new float[12], default, Grid, [0.5f, 0.5f], -1, output));
    }
}

public class MultiClassNmsTests
{
    private static RawDetection D(int c, float score, float x) => new(c, -1, score, new BoxF(x, 0, x + 10, 10));

    [Fact]
    public void SuppressesOverlapsWithinAClassOnly()
    {
        var list = new List<RawDetection>
        {
            D(0, 0.6f, 1),   // IoU with the 0.9 box = 9/11 > .5: suppressed
            D(0, 0.9f, 0),
            D(1, 0.7f, 1),   // other class: kept
            D(0, 0.5f, 6),   // IoU 4/16 = .25: kept
        };
        MultiClassNms.Apply(list, 0.5f, 100);
        Assert.Equal([0.9f, 0.7f, 0.5f], list.Select(d => d.Score));
        Assert.Equal([0, 1, 0], list.Select(d => d.ClassIndex));
    }

    [Fact]
    public void CrossClassIouKeepsEachCellAsItsMostLikelyClassOnly()
    {
        // A pale white cell also boxed as a red cell (IoU 9/11), and a red cell beside it (IoU 1/19 with the white one).
        var list = new List<RawDetection> { D(0, 0.3f, 1), D(1, 0.8f, 0), D(1, 0.7f, 9) };
        var withoutRule = list.ToList();
        MultiClassNms.Apply(withoutRule, 0.5f, 100);
        Assert.Equal(3, withoutRule.Count);
        MultiClassNms.Apply(list, 0.5f, 100, crossClassIou: 0.5f);
        Assert.Equal([0.8f, 0.7f], list.Select(d => d.Score));
        Assert.All(list, d => Assert.Equal(1, d.ClassIndex));
    }

    [Fact]
    public void CrossClassOfLimitsTheRuleToPairsOfTheListedClasses()
    {
        // A white cell (0) also boxed as a platelet (2) and as a red cell (1): only WBC-RBC pairs are compared.
        var list = new List<RawDetection> { D(0, 0.9f, 0), D(2, 0.5f, 1), D(1, 0.4f, 1) };
        MultiClassNms.Apply(list, 0.5f, 100, crossClassIou: 0.5f, crossClassOf: [true, true, false]);
        Assert.Equal([0, 2], list.Select(d => d.ClassIndex));
    }

    [Fact]
    public void BelowItsOperatingThresholdABoxDropsNoOtherClassSoEvaluationAgreesWithTheService()
    {
        // Evaluation decodes to a low floor: a red-cell candidate at 0.25 (its class's operating threshold is 0.3)
        // must not take the white cell at 0.2 (threshold 0.15) that the service reports.
        var list = new List<RawDetection> { D(0, 0.2f, 1), D(1, 0.25f, 0) };
        MultiClassNms.Apply(list, 0.5f, 100, limitPerClass: true, crossClassIou: 0.5f, suppressorFloor: [0.15f, 0.3f]);
        Assert.Equal([0.25f, 0.2f], list.Select(d => d.Score));
        MultiClassNms.Apply(list, 0.5f, 100, limitPerClass: true, crossClassIou: 0.5f, suppressorFloor: [0.15f, 0.2f]);
        Assert.Equal([0.25f], list.Select(d => d.Score));
    }

    [Fact]
    public void ContainmentDropsAPartOfACellBoxedApartButNotAnOverlappingNeighbour()
    {
        var cell = new RawDetection(0, -1, 0.9f, new BoxF(0, 0, 40, 40));
        var lobe = new RawDetection(0, -1, 0.5f, new BoxF(5, 5, 20, 20));        // wholly inside, IoU 0.14: NMS keeps it
        var neighbour = new RawDetection(0, -1, 0.6f, new BoxF(25, 0, 65, 40));  // 37.5 % inside
        var platelet = new RawDetection(1, -1, 0.4f, new BoxF(30, 30, 36, 36));  // inside, but another class
        var list = new List<RawDetection> { lobe, neighbour, cell, platelet };
        MultiClassNms.Apply(list, 0.5f, 100, containment: 0.8f);
        Assert.Equal([cell, neighbour, platelet], list);
        Assert.Equal(0.1406f, lobe.Box.IoU(cell.Box), 3);
        Assert.Equal(1f, lobe.Box.FractionInside(cell.Box));
        Assert.Equal(0.375f, neighbour.Box.FractionInside(cell.Box));
    }

    [Fact]
    public void PartsOfKeepsTheWholeCellWhenTwoOrMoreOfItsPartsScoredAboveIt()
    {
        // The lobes of a segmented nucleus (as on draaslan's neutrophils and eosinophils), each boxed with a higher
        // score than the whole cell; the containment rule alone keeps all three (no lobe lies inside a higher box).
        var lobe1 = new RawDetection(0, -1, 0.6f, new BoxF(10, 10, 30, 30));
        var lobe2 = new RawDetection(0, -1, 0.5f, new BoxF(32, 12, 50, 30));
        var whole = new RawDetection(0, 1, 0.2f, new BoxF(5, 5, 55, 55));
        // A cell inside a wrong, larger box (one part only: left alone), and a red cell inside the whole: another class.
        var cell = new RawDetection(0, -1, 0.7f, new BoxF(100, 100, 120, 120));
        var tooLarge = new RawDetection(0, -1, 0.1f, new BoxF(95, 95, 150, 150));
        var redCell = new RawDetection(1, -1, 0.4f, new BoxF(12, 34, 22, 44));
        var list = new List<RawDetection> { lobe1, lobe2, whole, cell, tooLarge, redCell };
        var withoutParts = list.ToList();
        MultiClassNms.Apply(withoutParts, 0.5f, 100, containment: 0.8f);
        Assert.Equal([cell, lobe1, lobe2, redCell, whole, tooLarge], withoutParts);
        MultiClassNms.Apply(list, 0.5f, 100, containment: 0.8f, partsOf: [true, false]);
        Assert.Equal([cell, redCell, whole, tooLarge], list);
        // Not for a class that is not listed, and (evaluation) not by a whole below its class's operating threshold.
        var unlisted = new List<RawDetection> { lobe1, lobe2, whole };
        MultiClassNms.Apply(unlisted, 0.5f, 100, containment: 0.8f, partsOf: [false, true]);
        Assert.Equal(3, unlisted.Count);
        var belowFloor = new List<RawDetection> { lobe1, lobe2, whole };
        MultiClassNms.Apply(belowFloor, 0.5f, 100, limitPerClass: true, containment: 0.8f, suppressorFloor: [0.25f, 0.3f], partsOf: [true, false]);
        Assert.Equal([lobe1, lobe2, whole], belowFloor);
    }

    [Fact]
    public void IoUEqualToTheThresholdIsKept()
    {
        // Boxes [0,10] and [5,15] x [0,10]: IoU = 50 / 150 = 1/3.
        var list = new List<RawDetection> { D(0, 0.9f, 0), D(0, 0.8f, 5) };
        MultiClassNms.Apply(list, 1f / 3, 100);
        Assert.Equal(2, list.Count);
        MultiClassNms.Apply(list, 0.3f, 100);
        Assert.Single(list);
    }

    [Fact]
    public void OnlyTheTopCandidatesOfEachClassEnterNms()
    {
        var list = Enumerable.Range(0, MultiClassNms.PreNmsTopK + 10).Select(i => D(0, 1f / (i + 2), i * 100)).ToList();
        list.Add(D(1, 0.0001f, 0)); // lowest of all, but the first of its class
        MultiClassNms.Apply(list, 0.5f, 10_000);
        Assert.Equal(MultiClassNms.PreNmsTopK + 1, list.Count);
        Assert.Equal(0.5f, list[0].Score);
        Assert.Equal(1, list[^1].ClassIndex);
    }

    [Fact]
    public void PerClassLimitKeepsEveryClass()
    {
        var list = Enumerable.Range(0, 5).Select(i => D(0, 0.9f - i * 0.01f, i * 100)).Append(D(1, 0.1f, 0)).ToList();
        var copy = list.ToList();
        MultiClassNms.Apply(list, 0.5f, 3);
        Assert.Equal([0, 0, 0], list.Select(d => d.ClassIndex));
        MultiClassNms.Apply(copy, 0.5f, 3, limitPerClass: true);
        Assert.Equal([0, 0, 0, 1], copy.Select(d => d.ClassIndex));
    }

    [Fact]
    public void KeepsAtMostMaxDetectionsHighestFirst()
    {
        var list = Enumerable.Range(0, 10).Select(i => D(0, i / 10f, i * 100)).ToList();
        MultiClassNms.Apply(list, 0.5f, 3);
        Assert.Equal([0.9f, 0.8f, 0.7f], list.Select(d => d.Score));
    }
}

public class InputGeometryTests
{
    [Fact]
    public void FrameOfMultiplesNeedsNoPaddingOrResize()
    {
        var g = InputGeometry.For(640, 480, 1.0, 32);
        Assert.Equal((640, 480), (g.PaddedWidth, g.PaddedHeight));
        Assert.False(g.NeedsResize);
    }

    [Fact]
    public void PadsUpToTheSizeMultipleAfterResizing()
    {
        var g = InputGeometry.For(500, 300, 1.0, 32);
        Assert.Equal((512, 320), (g.PaddedWidth, g.PaddedHeight));
        var half = InputGeometry.For(640, 480, 0.5, 32);
        Assert.Equal((320, 240), (half.ResizedWidth, half.ResizedHeight));
        Assert.Equal((320, 256), (half.PaddedWidth, half.PaddedHeight));
        Assert.True(half.NeedsResize);
    }

    [Fact]
    public void MapsBoxesBackToFramePixelsAndClips()
    {
        var g = InputGeometry.For(640, 480, 0.5, 32);
        Assert.Equal(new BoxF(20, 40, 200, 100), g.ToFrame(new BoxF(10, 20, 100, 50)));
        Assert.Equal(new BoxF(0, 400, 640, 480), g.ToFrame(new BoxF(-5, 200, 330, 250)));
    }
}

public class CellSizeRuleTests
{
    private const int White = 0, Red = 1, Platelet = 2;
    private static readonly float[] WhiteAtHalf = [0.5f, 0f, 0f];

    private static RawDetection D(int c, float x, float y, float side, float score = 0.9f) => new(c, -1, score, new BoxF(x, y, x + side, y + side));

    // Six whole red cells of side 80 (the ruler: median 80) in a 640x480 image.
    private static List<RawDetection> RedCells() => Enumerable.Range(0, 6).Select(i => D(Red, 20 + 100 * i, 300, 80)).ToList();

    [Fact]
    public void AWholeWhiteBoxUnderHalfARedCellIsDroppedAndEverythingElseKept()
    {
        var list = RedCells();
        list.Add(D(White, 100, 100, 39));    // 0.49 of a red cell: a platelet or a lobe boxed as a white cell
        list.Add(D(White, 200, 100, 41));    // 0.51: kept
        list.Add(D(White, 300, 100, 120));   // a white cell
        list.Add(D(Platelet, 400, 100, 20)); // platelets have no rule
        var median = CellSizeRule.Apply(list, WhiteAtHalf, Red, 0.5f, 640, 480);
        Assert.Equal(80, median);
        Assert.Equal(9, list.Count);
        Assert.DoesNotContain(list, d => d.ClassIndex == White && d.Box.Width < 40);
        Assert.Contains(list, d => d.ClassIndex == Platelet);
    }

    [Fact]
    public void ABoxCutByTheImageEdgeIsNeverJudged()
    {
        var list = RedCells();
        list.Add(D(White, 0, 100, 30));      // the visible part of a white cell at the left edge
        list.Add(D(White, 620, 200, 19));    // ...and at the right edge (x2 = 639)
        CellSizeRule.Apply(list, WhiteAtHalf, Red, 0.5f, 640, 480);
        Assert.Equal(2, list.Count(d => d.ClassIndex == White));
    }

    [Fact]
    public void TheRulerIsTheImagesOwnRedCellsSoItHoldsAtAnyMagnification()
    {
        // Half the magnification: red cells 40 px, white cells 30-60 px. A fixed pixel floor would drop them all.
        var list = Enumerable.Range(0, 6).Select(i => D(Red, 20 + 60 * i, 300, 40)).ToList();
        list.Add(D(White, 100, 100, 30));
        list.Add(D(White, 200, 100, 19));
        Assert.Equal(40, CellSizeRule.Apply(list, WhiteAtHalf, Red, 0.5f, 640, 480));
        Assert.Equal([30f], list.Where(d => d.ClassIndex == White).Select(d => d.Box.Width));
    }

    [Fact]
    public void WithTooFewWholeConfidentRedCellsNothingIsDropped()
    {
        var list = RedCells();
        list[0] = D(Red, 0, 300, 80);                 // cut by the edge: not a ruler
        list[1] = D(Red, 120, 300, 80, score: 0.2f);  // below the red-cell threshold: not a ruler
        list.Add(D(White, 100, 100, 10));
        Assert.True(float.IsNaN(CellSizeRule.Apply(list, WhiteAtHalf, Red, 0.5f, 640, 480)));
        Assert.Equal(7, list.Count);
    }
}
