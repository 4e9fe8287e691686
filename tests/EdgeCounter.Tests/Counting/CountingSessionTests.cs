using EdgeCounter.Counting;
using static EdgeCounter.Tests.Counting.CountingTestData;

namespace EdgeCounter.Tests.Counting;

public class CountingSessionTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 26, 8, 0, 0, TimeSpan.Zero);

    [Fact]
    public void A_moved_count_leaves_the_earlier_label_and_the_totals_stay_the_sum_of_the_fields()
    {
        var session = CountingSession.Start(Catalog(), "s1", "S-1", 1000, T0);
        session.TryAddField(Field(("neutrophil", 2), ("RBC", 3)), T0, out var first);
        // Field 2 shows whole a cell field 1 counted cut as a neutrophil: it is a lymphocyte; and a red cell, moved too.
        Assert.True(session.TryAddField(Field(("lymphocyte", 1), ("RBC", 1), ("monocyte", 1)), T0, out var second, [new CellMove(1, 0), new CellMove(3, 1)]));
        Assert.Equal(new Dictionary<string, int> { ["neutrophil"] = -1, ["lymphocyte"] = 1, ["monocyte"] = 1 }, second.Counts);
        Assert.Equal(1, session.Total("neutrophil"));
        Assert.Equal(3, session.Total("RBC"));
        Assert.Equal(3, session.WhiteCells); // a move never changes how many cells were counted
        foreach (var label in new[] { "neutrophil", "lymphocyte", "monocyte", "RBC" })
            Assert.Equal(session.Total(label), first.Counts.GetValueOrDefault(label) + second.Counts.GetValueOrDefault(label));
        // The ledger knows where each count went: cells 1 and 3 moved to field 2's cells 6 and 7.
        Assert.True(session.Cells.TryGet(1, out var moved));
        Assert.Equal((CellStatus.Moved, 6L), (moved.Status, moved.MovedTo));
        // A cell whose count moved already takes nothing from any label again.
        session.TryAddField(Field(("basophil", 1)), T0, out _, [new CellMove(1, 0)]);
        Assert.Equal(1, session.Total("neutrophil"));
    }

    [Fact]
    public void Totals_are_the_sum_of_the_fields_and_field_ids_count_up()
    {
        var session = CountingSession.Start(Catalog(), "s1", "S-1", 1000, T0);
        var fields = new[]
        {
            Field(("neutrophil", 3), ("RBC", 40), ("lymphocyte", 1)),
            Field(("neutrophil", 1), ("monocyte", 2), ("Platelets", 5)),
            Field(),
            Field(("eosinophil", 1), ("basophil", 1), ("RBC", 7)),
        };
        var ids = new List<long>();
        var perField = new List<IReadOnlyDictionary<string, int>>();
        foreach (var f in fields)
        {
            Assert.True(session.TryAddField(f, T0, out var tally));
            ids.Add(tally.FieldId);
            perField.Add(tally.Counts);
            Assert.Equal("s1", tally.SessionId);
        }

        Assert.Equal([1L, 2, 3, 4], ids);
        Assert.Equal(4, session.Fields);
        Assert.Equal(5, session.NextFieldId);
        Assert.Empty(perField[2]);
        Assert.Equal(3, perField[0]["neutrophil"]);
        var totals = session.Totals();
        foreach (var label in Catalog().Labels)
            Assert.Equal(perField.Sum(c => c.GetValueOrDefault(label)), totals[label]);
        Assert.Equal(4, totals["neutrophil"]);
        Assert.Equal(47, totals["RBC"]);
        Assert.Equal(Catalog().Labels, totals.Keys.ToArray());
    }

    [Fact]
    public void Groups_and_differential_follow_the_catalog()
    {
        var extra = new Dictionary<string, string[]> { ["mononuclear"] = ["lymphocyte", "monocyte"] };
        var session = CountingSession.Start(Catalog(extra), "s1", "", 1000, T0);
        session.TryAddField(Field(("neutrophil", 6), ("eosinophil", 1), ("basophil", 1), ("lymphocyte", 3), ("monocyte", 1), ("RBC", 50)), T0, out _);

        var groups = session.GroupTotals();
        Assert.Equal(["WBC", "granulocyte", "mononuclear"], groups.Keys.ToArray());
        Assert.Equal(12, groups["WBC"]);
        Assert.Equal(8, groups["granulocyte"]);
        Assert.Equal(4, groups["mononuclear"]);
        Assert.Equal(12, session.WhiteCells);

        var diff = session.Differential();
        Assert.Equal(50.0, diff["neutrophil"], 9);
        Assert.Equal(25.0, diff["lymphocyte"], 9);
        Assert.Equal(100.0 / 12, diff["monocyte"], 9);
        Assert.Equal(100.0, diff.Values.Sum(), 9);
        Assert.DoesNotContain("RBC", diff.Keys);
    }

    [Fact]
    public void Differential_is_zero_before_any_white_cell()
    {
        var session = CountingSession.Start(Catalog(), "s1", "", 100, T0);
        session.TryAddField(Field(("RBC", 10)), T0, out _);
        Assert.All(session.Differential().Values, v => Assert.Equal(0.0, v));
        Assert.Equal(0, session.Progress);
    }

    [Fact]
    public void Session_completes_at_the_target_and_then_refuses_fields()
    {
        var session = CountingSession.Start(Catalog(), "s1", "", 10, T0);
        Assert.True(session.TryAddField(Field(("neutrophil", 4), ("RBC", 100)), T0, out _));
        Assert.Equal(SessionState.Running, session.State);
        Assert.Equal(0.4, session.Progress, 9);
        Assert.True(session.TryAddField(Field(("lymphocyte", 5)), T0, out _));
        Assert.Equal(SessionState.Running, session.State);

        // The field that crosses the target is counted whole.
        Assert.True(session.TryAddField(Field(("monocyte", 3)), T0.AddMinutes(1), out var last));
        Assert.Equal(3, last.FieldId);
        Assert.Equal(SessionState.Completed, session.State);
        Assert.False(session.AcceptsFields);
        Assert.Equal(12, session.WhiteCells);
        Assert.Equal(1.0, session.Progress);
        Assert.Equal(T0.AddMinutes(1), session.EndedAt);

        Assert.False(session.TryAddField(Field(("neutrophil", 1)), T0, out _));
        Assert.Equal(3, session.Fields);
        Assert.Equal(4, session.Total("neutrophil"));
    }

    [Fact]
    public void Red_cells_do_not_advance_the_target()
    {
        var session = CountingSession.Start(Catalog(), "s1", "", 5, T0);
        session.TryAddField(Field(("RBC", 500), ("Platelets", 50)), T0, out _);
        Assert.Equal(SessionState.Running, session.State);
    }

    [Fact]
    public void Stop_keeps_totals_and_refuses_fields()
    {
        var session = CountingSession.Start(Catalog(), "s1", "", 100, T0);
        session.TryAddField(Field(("neutrophil", 2)), T0, out _);
        Assert.True(session.Stop(T0));
        Assert.False(session.Stop(T0));
        Assert.Equal(SessionState.Stopped, session.State);
        Assert.False(session.TryAddField(Field(("neutrophil", 2)), T0, out _));
        Assert.Equal(2, session.Total("neutrophil"));
    }

    [Fact]
    public void Record_round_trip_restores_exact_totals_state_and_next_field_id()
    {
        var session = CountingSession.Start(Catalog(), "s1", "S-9", 50, T0);
        session.TryAddField(Field(("neutrophil", 7), ("RBC", 3), ("unknown-thing", 1)), T0, out _);
        session.TryAddField(Field(("basophil", 2)), T0, out _);

        var restored = CountingSession.FromRecord(Catalog(), session.ToRecord());

        Assert.Equal(session.Totals(), restored.Totals());
        Assert.Equal(1, restored.Total("unknown-thing"));
        Assert.Equal(3, restored.NextFieldId);
        Assert.Equal("S-9", restored.SampleId);
        Assert.Equal(50, restored.Target);
        Assert.Equal(session.State, restored.State);
        restored.TryAddField(Field(("neutrophil", 1)), T0, out var next);
        Assert.Equal(3, next.FieldId);
    }

    [Fact]
    public void Catalog_rejects_groups_naming_unknown_labels()
    {
        var extra = new Dictionary<string, string[]> { ["blasts"] = ["myeloblast"] };
        var ex = Assert.Throws<ArgumentException>(() => Catalog(extra));
        Assert.Contains("myeloblast", ex.Message);
    }
}
