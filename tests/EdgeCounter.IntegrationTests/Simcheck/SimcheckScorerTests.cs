using EdgeCounter.Commands.Simcheck;
using EdgeCounter.Counting;
using EdgeCounter.Detection;
using EdgeCounter.Fields;
using EdgeCounter.Simulation;
using OpenCvSharp;

namespace EdgeCounter.IntegrationTests.Simcheck;

/// <summary>The simcheck judge on hand-made fields: which counted detections are double counts, and of which kind.</summary>
public class SimcheckScorerTests
{
    private static CellTruth Cell(long id, CellType type, double slideX, double slideY, double radius) =>
        new(id, type, new Rect2f((float)(slideX - radius), (float)(slideY - radius), (float)(2 * radius), (float)(2 * radius)))
        { SlideX = slideX, SlideY = slideY, Radius = radius };

    private static FrameTruth Field(double stageX, params CellTruth[] cells) => new(0, TimeSpan.FromSeconds(1), stageX, 0, false, 0, 0, -1, cells);

    private static EdgeCounter.Detection.Detection Box(string group, double x1, double y1, double x2, double y2) =>
        new(group, group, 0.9f, new BoxF((float)x1, (float)y1, (float)x2, (float)y2));

    private static readonly FieldPlacement Known = new(true, 0, 0, 1, true, 1);

    [Fact]
    public void A_cell_boxed_twice_in_one_field_and_a_cell_counted_again_in_the_next_field_are_told_apart()
    {
        var white = Cell(1, CellType.Neutrophil, 100, 100, 50);
        var red = Cell(2, CellType.Erythrocyte, 300, 100, 35);
        var scorer = new SimcheckScorer();
        // Field 1: the white cell boxed whole and again as a fragment inside it; the red cell once.
        scorer.AddField(Field(0, white, red), [Box("WBC", 50, 50, 150, 150), Box("WBC", 110, 110, 145, 145), Box("RBC", 265, 65, 335, 135)], null, Known);
        // Field 2, 200 px further: the red cell again, counted as new (a double count across fields); the white cell
        // again, marked already counted (right).
        scorer.AddField(Field(200, white, red), [Box("RBC", 65, 65, 135, 135), Box("WBC", -150, 50, -50, 150)],
            [DetectionMark.New, new DetectionMark(true, 1)], Known);

        var result = scorer.Result();
        var (wbc, rbc) = (result.PerClass["WBC"], result.PerClass["RBC"]);
        Assert.Equal((1, 1, 1), (wbc.DistinctCounted, wbc.DoubleCountedDetections, wbc.DoubleCountedInOneField));
        Assert.Equal((0, 1), (wbc.WronglySuppressedDetections, wbc.SuppressedDetections));
        Assert.Equal((1, 1, 0), (rbc.DistinctCounted, rbc.DoubleCountedDetections, rbc.DoubleCountedInOneField));
        Assert.Equal(1.0, rbc.DoubleCounted);
        Assert.Equal(2, result.Fields);
    }

    [Fact]
    public void Label_agreement_knows_the_marrow_labels()
    {
        Assert.True(SimcheckScorer.LabelNames("neutrophil", CellType.Neutrophil));
        Assert.True(SimcheckScorer.LabelNames("band_neutrophil", CellType.BandNeutrophil));
        Assert.False(SimcheckScorer.LabelNames("neutrophil", CellType.BandNeutrophil)); // the segmented one is another type
        Assert.True(SimcheckScorer.LabelNames("plasma_cell", CellType.PlasmaCell));
        Assert.True(SimcheckScorer.LabelNames("plasma cell", CellType.PlasmaCell));
        Assert.True(SimcheckScorer.LabelNames("Erythroblast", CellType.Erythroblast));
        Assert.True(SimcheckScorer.LabelNames("metamyelocyte", CellType.Metamyelocyte));
        Assert.False(SimcheckScorer.LabelNames("myelocyte", CellType.Metamyelocyte));
        Assert.True(SimcheckScorer.LabelNames("blast", CellType.Blast));
    }

    [Fact]
    public void A_moved_count_is_neither_a_double_nor_a_new_cell_unless_it_moved_onto_another_cell()
    {
        var white = Cell(1, CellType.Lymphocyte, 100, 100, 50);
        var other = Cell(3, CellType.Neutrophil, 400, 100, 50);
        var scorer = new SimcheckScorer();
        // Field 1 counts the white cell cut (called a neutrophil) and the other cell; field 2 shows the first whole as a
        // lymphocyte and takes over field 1's count of it.
        scorer.AddField(Field(0, white, other), [new("neutrophil", "WBC", 0.9f, new BoxF(50, 50, 150, 150)), new("neutrophil", "WBC", 0.9f, new BoxF(350, 50, 450, 150))],
            [new DetectionMark(false, 1), new DetectionMark(false, 1)], Known);
        scorer.AddField(Field(0, white), [new("lymphocyte", "WBC", 0.9f, new BoxF(52, 50, 150, 152))], [new DetectionMark(false, 2, 1, "neutrophil")], Known);
        var moved = scorer.Result().PerClass["WBC"];
        Assert.Equal((2, 0, 0, 1), (moved.DistinctCounted, moved.DoubleCountedDetections, moved.WronglySuppressedDetections, moved.MovedCounts));
        Assert.Equal(1.0, moved.LabelAgreement); // the lymphocyte now counted as one, the neutrophil as one

        // A move onto the other cell (already counted): a double, and the cell it left is uncounted.
        var wrong = new SimcheckScorer();
        wrong.AddField(Field(0, white, other), [new("lymphocyte", "WBC", 0.9f, new BoxF(50, 50, 150, 150)), new("neutrophil", "WBC", 0.9f, new BoxF(350, 50, 450, 150))],
            [new DetectionMark(false, 1), new DetectionMark(false, 1)], Known);
        wrong.AddField(Field(0, other), [new("neutrophil", "WBC", 0.9f, new BoxF(350, 50, 450, 150))], [new DetectionMark(false, 2, 1, "lymphocyte")], Known);
        var bad = wrong.Result().PerClass["WBC"];
        Assert.Equal((1, 1), (bad.DoubleCountedDetections, bad.WronglySuppressedDetections));
    }
}
