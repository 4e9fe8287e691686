using EdgeCounter.Counting;
using EdgeCounter.Detection;
using Cell_ = EdgeCounter.Detection.Detection;
using EdgeCounter.Fields;

namespace EdgeCounter.Tests.Counting;

public class SlideCellRegistryTests
{
    private const int W = 640, H = 480;

    private static Cell_ Cell(string cls, float cx, float cy, float r = 40, string? label = null) =>
        new(label ?? cls, cls, 0.9f, new BoxF(Math.Max(0, cx - r), Math.Max(0, cy - r), Math.Min(W, cx + r), Math.Min(H, cy + r)));

    private static FieldPlacement At(double x, double y, int segment = 1) => new(true, x, y, segment, true, 0.9);

    private static IReadOnlyList<DetectionMark> Count(SlideCellRegistry registry, FieldPlacement placement, long fieldId, params Cell_[] detections) =>
        registry.Commit(registry.Mark(placement, detections, W, H), fieldId);

    [Fact]
    public void A_cell_seen_again_from_a_neighbouring_field_is_already_counted_where_it_was_counted()
    {
        var registry = new SlideCellRegistry();
        var first = Count(registry, At(0, 0), 1, Cell("RBC", 500, 200), Cell("WBC", 560, 400, 60, "neutrophil"));
        Assert.Equal([new DetectionMark(false, 1), new DetectionMark(false, 1)], first);
        // The next field starts 400 px to the right: the same cells at x - 400 (detector jitter of a few pixels).
        var second = Count(registry, At(400, 0), 2, Cell("RBC", 103, 198), Cell("WBC", 158, 404, 60, "lymphocyte"), Cell("RBC", 400, 200));
        Assert.Equal([new DetectionMark(true, 1), new DetectionMark(true, 1), new DetectionMark(false, 2)], second);
        Assert.Equal(3, registry.Count);
    }

    [Fact]
    public void Touching_neighbours_and_other_class_groups_are_different_cells()
    {
        var registry = new SlideCellRegistry();
        Count(registry, At(0, 0), 1, Cell("RBC", 300, 200));
        // A red cell touching the first (centres two radii apart) and a platelet on top of it.
        var marks = Count(registry, At(0, 0), 2, Cell("RBC", 378, 200), Cell("Platelets", 300, 200, 10));
        Assert.All(marks, m => Assert.False(m.AlreadyCounted));
    }

    [Fact]
    public void A_cell_cut_by_the_edge_is_counted_where_it_is_and_its_count_moves_to_the_field_where_it_is_whole()
    {
        var registry = new SlideCellRegistry();
        // Cut by the right edge: only its left 30 px show, so the box centre is 25 px off the cell's centre.
        var cut = Count(registry, At(0, 0), 1, new Cell_("neutrophil", "WBC", 0.8f, new BoxF(610, 160, 640, 240)));
        Assert.Equal(new DetectionMark(false, 1), cut[0]); // counted at once: no neighbour may ever show it whole
        var whole = Count(registry, At(500, 0), 2, Cell("WBC", 125, 200, label: "lymphocyte"));
        Assert.Equal(new DetectionMark(false, 2, MovedFrom: 1, MovedFromLabel: "neutrophil"), whole[0]);
        Assert.Equal(1, registry.Count);
        // Now the registry knows the whole cell, counted in field 2: a third view of it, whole, matches by centre.
        var again = Count(registry, At(450, 10), 3, Cell("WBC", 175, 190, label: "lymphocyte"));
        Assert.Equal(new DetectionMark(true, 2), again[0]);
        // Seen cut once more, from another side: still field 2's cell, and no second move.
        var cutAgain = Count(registry, At(580, 0), 4, new Cell_("lymphocyte", "WBC", 0.8f, new BoxF(0, 160, 45, 240)));
        Assert.Equal(new DetectionMark(true, 2), cutAgain[0]);
    }

    [Fact]
    public void A_cell_seen_whole_first_keeps_its_count_when_a_later_field_cuts_it()
    {
        var registry = new SlideCellRegistry();
        Count(registry, At(0, 0), 1, Cell("RBC", 125, 200));
        var cut = Count(registry, At(-515, 0), 2, new Cell_("RBC", "RBC", 0.8f, new BoxF(610, 160, 640, 240)));
        Assert.Equal(new DetectionMark(true, 1), cut[0]);
    }

    [Fact]
    public void A_count_moves_once_even_when_two_whole_boxes_of_a_field_match_the_cut_cell()
    {
        var registry = new SlideCellRegistry();
        Count(registry, At(0, 0), 1, new Cell_("RBC", "RBC", 0.8f, new BoxF(610, 160, 640, 240)));
        // The same cell boxed twice, a few pixels apart.
        var plan = registry.Mark(At(500, 0), [Cell("RBC", 125, 200), Cell("RBC", 128, 203)], W, H);
        Assert.Equal([new CellMove(0, 0)], plan.MovedOut);
        var marks = registry.Commit(plan, 2);
        Assert.Equal([new DetectionMark(false, 2, 1, "RBC"), new DetectionMark(true, 2)], marks);
    }

    [Fact]
    public void Cell_ids_follow_the_count_an_already_counted_cell_has_the_id_it_was_counted_with_and_a_moved_count_the_new_one()
    {
        var registry = new SlideCellRegistry();
        // Field 1 (cells 1, 2): a whole red cell and a white cell cut by the right edge.
        var first = registry.Commit(registry.Mark(At(0, 0), [Cell("RBC", 125, 200), new Cell_("neutrophil", "WBC", 0.8f, new BoxF(610, 160, 640, 240))], W, H), 1, 1);
        Assert.Equal([1L, 2], first.Select(m => m.CellId));
        // Field 2 (next id 3) shows the red cell again and the white cell whole: its count moves to cell 3.
        var plan = registry.Mark(At(100, 0), [Cell("RBC", 25, 200), Cell("WBC", 550, 200, label: "lymphocyte")], W, H);
        Assert.Equal([new CellMove(2, 0)], plan.MovedOut);
        var second = registry.Commit(plan, 2, 3);
        Assert.Equal(1, second[0].CellId);
        Assert.True(second[0].AlreadyCounted);
        Assert.Equal(3, second[1].CellId);
        Assert.Equal(1, second[1].MovedFrom); // the field it was counted in
        // Seen once more from field 3: it is cell 3 now.
        var third = registry.Commit(registry.Mark(At(150, 0), [Cell("WBC", 500, 200, label: "lymphocyte")], W, H), 3, 4);
        Assert.Equal(new DetectionMark(true, 2) { CellId = 3 }, third[0]);
    }

    [Fact]
    public void Cut_views_then_a_whole_view_move_the_count_from_the_field_that_counted_it()
    {
        var registry = new SlideCellRegistry();
        Count(registry, At(0, 0), 1, new Cell_("RBC", "RBC", 0.8f, new BoxF(600, 100, 640, 180)));  // left half, at the right edge
        var second = Count(registry, At(0, 140), 2, new Cell_("RBC", "RBC", 0.8f, new BoxF(600, 0, 640, 40))); // its lower corner, from below
        Assert.Equal(new DetectionMark(true, 1), second[0]);
        var whole = Count(registry, At(400, 0), 3, Cell("RBC", 240, 140));
        Assert.Equal(new DetectionMark(false, 3, 1, "RBC"), whole[0]);
    }

    [Fact]
    public void Cells_cut_on_different_sides_match_by_overlap()
    {
        var registry = new SlideCellRegistry();
        // Cut at the bottom-right corner of one field, at the top-left corner of the next.
        Count(registry, At(0, 0), 1, new Cell_("RBC", "RBC", 0.8f, new BoxF(590, 440, 640, 480)));
        var marks = Count(registry, At(600, 450), 2, new Cell_("RBC", "RBC", 0.8f, new BoxF(0, 0, 35, 40)));
        Assert.True(marks[0].AlreadyCounted);
    }

    [Fact]
    public void An_unknown_field_is_counted_as_it_is_and_later_fields_of_its_segment_compare_with_it()
    {
        var registry = new SlideCellRegistry();
        Count(registry, At(0, 0, segment: 1), 1, Cell("RBC", 300, 200));
        var unknown = FieldPlacement.Unknown(2);
        var lost = Count(registry, unknown, 2, Cell("RBC", 300, 200));
        Assert.False(lost[0].AlreadyCounted); // never suppressed on a guess
        var next = Count(registry, At(100, 0, segment: 2), 3, Cell("RBC", 200, 200));
        Assert.Equal(new DetectionMark(true, 2), next[0]);
    }

    [Fact]
    public void When_two_segments_join_cells_of_either_are_recognised_from_the_other()
    {
        var registry = new SlideCellRegistry();
        Count(registry, At(0, 0, segment: 1), 1, Cell("RBC", 300, 200));
        Count(registry, At(0, 0, segment: 2), 2, Cell("RBC", 100, 100)); // an unknown field's segment, own origin
        // The registrar found segment 2's origin at (3000, 50) in segment 1.
        registry.Merge(new SegmentMerge(2, 1, 3000, 50));
        var seen = Count(registry, At(2900, 0, segment: 1), 3, Cell("RBC", 200, 150), Cell("RBC", 400, 400));
        Assert.Equal([new DetectionMark(true, 2), new DetectionMark(false, 3)], seen);
        var before = Count(registry, At(100, 0, segment: 1), 4, Cell("RBC", 200, 200));
        Assert.Equal([new DetectionMark(true, 1)], before);
        Assert.Equal(3, registry.Count);
    }

    [Fact]
    public void No_placement_counts_everything()
    {
        var registry = new SlideCellRegistry();
        Count(registry, At(0, 0), 1, Cell("RBC", 300, 200));
        var plan = registry.Mark(null, [Cell("RBC", 300, 200)], W, H);
        Assert.Equal(1, plan.NewCount);
    }

    [Fact]
    public void A_field_not_committed_adds_nothing()
    {
        var registry = new SlideCellRegistry();
        registry.Mark(At(0, 0), [Cell("RBC", 300, 200)], W, H); // e.g. the session had completed
        var marks = Count(registry, At(0, 0), 1, Cell("RBC", 300, 200));
        Assert.False(marks[0].AlreadyCounted);
    }

    [Fact]
    public void Two_parts_of_one_cell_cut_by_the_facing_edges_of_two_fields_are_one_cell_but_two_cells_are_two()
    {
        var registry = new SlideCellRegistry();
        // Field 1 shows the left 10 px of a red cell at its right edge; field 2 (no overlap with field 1 there) its right 60 px.
        Count(registry, At(0, 0), 1, new Cell_("RBC", "RBC", 0.8f, new BoxF(630, 100, 640, 150)));
        var marks = Count(registry, At(660, 0), 2, new Cell_("RBC", "RBC", 0.8f, new BoxF(0, 85, 60, 165)));
        Assert.True(marks[0].AlreadyCounted);
        // Two different cells, each cut by one of the facing edges: together they span two cells.
        var other = new SlideCellRegistry();
        Count(other, At(0, 0), 1, new Cell_("RBC", "RBC", 0.8f, new BoxF(630, 100, 640, 150)));
        var two = Count(other, At(720, 0), 2, new Cell_("RBC", "RBC", 0.8f, new BoxF(0, 85, 75, 165)));
        Assert.False(two[0].AlreadyCounted);
    }

    [Fact]
    public void Cut_views_of_a_cell_add_up_so_a_later_view_from_the_other_side_still_matches()
    {
        var registry = new SlideCellRegistry();
        Count(registry, At(0, 0), 1, new Cell_("RBC", "RBC", 0.8f, new BoxF(600, 100, 640, 180)));   // left half, at the right edge
        Count(registry, At(0, 140), 2, new Cell_("RBC", "RBC", 0.8f, new BoxF(600, 0, 640, 40)));   // its lower corner, from below
        var marks = Count(registry, At(630, 0), 3, new Cell_("RBC", "RBC", 0.8f, new BoxF(0, 100, 50, 180))); // right part
        Assert.True(marks[0].AlreadyCounted);
    }
}
