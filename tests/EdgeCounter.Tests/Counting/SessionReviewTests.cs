using EdgeCounter.Counting;
using static EdgeCounter.Tests.Counting.CountingTestData;

namespace EdgeCounter.Tests.Counting;

/// <summary>Review of a session's cells: reclassify, reject, finalize, the audit trail, and all of it across a restart.</summary>
public sealed class SessionReviewTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgecounter-review-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private CountingService NewService() => new(Catalog(), new CountingOptions { DefaultTarget = 10 }, new SessionStore(_dir));

    private static SessionCommand Reclassify(long cell, string to, string? by = "A. Tech") => new(SessionAction.Reclassify) { CellId = cell, To = to, Reviewer = by };
    private static SessionCommand Reject(long cell) => new(SessionAction.Reject) { CellId = cell, Reviewer = "A. Tech" };

    [Fact]
    public void Reclassify_and_reject_recompute_the_totals_and_differential_and_a_restart_keeps_cells_labels_and_audit_trail()
    {
        var service = NewService();
        var f1 = service.CountField(Field(("neutrophil", 4), ("RBC", 3))).Tally!;   // cells 1-4 neutrophils, 5-7 red
        var f2 = service.CountField(Field(("lymphocyte", 2), ("monocyte", 1))).Tally!; // cells 8-9 lymphocytes, 10 monocyte
        Assert.Equal((1L, 8L), (f1.FirstCellId, f2.FirstCellId));

        var changed = service.Apply(Reclassify(2, "lymphocyte"));
        Assert.True(changed.Applied);
        Assert.Equal(new CellCorrection(1, 2, "reclassify", "neutrophil", "lymphocyte", "A. Tech", changed.Correction!.At, false), changed.Correction);
        var rejected = service.Apply(Reject(10));
        Assert.Equal((3L, 3L, 0L), (rejected.Counts.Totals["neutrophil"], rejected.Counts.Totals["lymphocyte"], rejected.Counts.Totals["monocyte"]));
        Assert.Equal(6, rejected.Counts.WhiteCells);
        Assert.Equal(50.0, rejected.Counts.Differential["lymphocyte"]);
        Assert.Equal(2, rejected.Counts.Corrections);

        // A restart: the same totals, the same cells under their reviewed labels, the same trail; ids go on.
        var again = NewService();
        Assert.Equal(rejected.Counts.Totals, again.Snapshot().Totals);
        var review = again.Review();
        Assert.Equal(10, review.Cells.Count);
        Assert.Equal(("lymphocyte", "neutrophil", CellStatus.Counted), (review.Cells[1].Label, review.Cells[1].DetectedLabel, review.Cells[1].Status));
        Assert.Equal(CellStatus.Rejected, review.Cells[9].Status);
        Assert.Equal([2L, 10L], review.Corrections.Select(c => c.CellId));
        Assert.Equal(11, again.CountField(Field(("eosinophil", 1))).Tally!.FirstCellId);
        // A rejected cell can be counted again, under the label review gives it.
        Assert.Equal(1, again.Apply(Reclassify(10, "monocyte")).Counts.Totals["monocyte"]);
    }

    [Fact]
    public void A_command_that_cannot_apply_changes_nothing_and_says_why()
    {
        var service = NewService();
        service.CountField(Field(("neutrophil", 2)));
        var before = service.Snapshot();
        Assert.Contains("not a cell of session", service.Apply(Reclassify(3, "lymphocyte")).Error);
        Assert.Contains("not a label of this model", service.Apply(Reclassify(1, "dragon")).Error);
        Assert.Contains("already counted as neutrophil", service.Apply(Reclassify(1, "neutrophil")).Error);
        service.Apply(Reject(1));
        Assert.Contains("already rejected", service.Apply(Reject(1)).Error);
        var after = service.Snapshot();
        Assert.Equal(1, after.Corrections);
        Assert.Equal(before.Totals["neutrophil"] - 1, after.Totals["neutrophil"]);
    }

    [Fact]
    public void Finalize_makes_the_result_final_and_later_corrections_are_amendments_of_it()
    {
        var service = NewService();
        service.CountField(Field(("neutrophil", 3), ("lymphocyte", 2)));
        Assert.False(service.Apply(Reclassify(1, "monocyte")).ResultChanged); // before sign-off: not an amendment
        var signed = service.Apply(new SessionCommand(SessionAction.Finalize) { Reviewer = "Dr B" });
        Assert.True(signed.ResultChanged);
        Assert.Equal((SessionState.Final, "Dr B"), (signed.Counts.State, signed.Counts.Reviewer));
        Assert.False(service.CountField(Field(("neutrophil", 5))).Accepted); // a final result takes no more fields
        Assert.Contains("already final", service.Apply(new SessionCommand(SessionAction.Finalize) { Reviewer = "Dr C" }).Error);

        var amended = service.Apply(Reclassify(4, "monocyte"));
        Assert.True(amended.Correction!.Amendment);
        Assert.True(amended.ResultChanged);
        Assert.Equal((2, 1), (amended.Counts.Corrections, amended.Counts.Amendments));
        Assert.Equal(2, amended.Counts.Totals["monocyte"]);

        var restarted = NewService().Snapshot();
        Assert.Equal((SessionState.Final, "Dr B", 1), (restarted.State, restarted.Reviewer, restarted.Amendments));
    }

    [Fact]
    public void A_cell_file_line_the_session_file_never_counted_is_dropped_at_restart()
    {
        var service = NewService();
        service.CountField(Field(("neutrophil", 2)));
        // A power cut after the cells were appended and before the session file was saved: the line of field 2 is there.
        var ledger = new CellLedgerStore(_dir);
        var sessionId = service.Snapshot().SessionId;
        ledger.Append(sessionId, new LedgerField(2, 3, Field(("lymphocyte", 1)), []));
        var restarted = NewService();
        Assert.Equal(2, restarted.Review().Cells.Count);
        Assert.Equal(3, restarted.CountField(Field(("monocyte", 1))).Tally!.FirstCellId);
        Assert.Equal("monocyte", NewService().Review().Cells[2].Label);
    }

    [Theory]
    [InlineData("""{"action":"reclassify","cellId":17,"to":"lymphocyte","reviewer":"A"}""", SessionAction.Reclassify, 17, "lymphocyte", "A")]
    [InlineData("""{"action":"reject","cellId":3}""", SessionAction.Reject, 3, null, null)]
    [InlineData("""{"action":"finalize","reviewer":"Dr B"}""", SessionAction.Finalize, 0, null, "Dr B")]
    public void Review_commands_parse(string text, SessionAction action, long cellId, string? to, string? reviewer)
    {
        var parsed = SessionCommandParser.Parse(text);
        Assert.True(parsed.IsValid, parsed.Error);
        Assert.Equal((action, cellId, to, reviewer), (parsed.Command!.Action, parsed.Command.CellId, parsed.Command.To, parsed.Command.Reviewer));
    }

    [Theory]
    [InlineData("""{"action":"reclassify","to":"lymphocyte"}""", "needs 'cellId'")]
    [InlineData("""{"action":"reclassify","cellId":2}""", "needs 'to'")]
    [InlineData("""{"action":"reclassify","cellId":0,"to":"x"}""", "whole number from 1")]
    [InlineData("""{"action":"reject","cellId":"5"}""", "whole number from 1")]
    [InlineData("""{"action":"finalize"}""", "needs 'reviewer'")]
    [InlineData("""{"action":"finalize","reviewer":"  "}""", "1..64 characters")]
    [InlineData("""{"action":"stop","cellId":2}""", "takes no cellId")]
    [InlineData("""{"action":"reject","cellId":2,"to":"x"}""", "takes no 'to'")]
    public void Malformed_review_commands_are_refused_with_the_reason(string text, string reason)
    {
        var parsed = SessionCommandParser.Parse(text);
        Assert.False(parsed.IsValid);
        Assert.Contains(reason, parsed.Error);
    }
}
