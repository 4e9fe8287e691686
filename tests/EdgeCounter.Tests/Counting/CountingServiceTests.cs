using EdgeCounter.Counting;
using static EdgeCounter.Tests.Counting.CountingTestData;

namespace EdgeCounter.Tests.Counting;

public sealed class CountingServiceTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgecounter-counting-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private CountingService NewService(CountingOptions? options = null) =>
        new(Catalog(), options ?? new CountingOptions { DefaultTarget = 20 }, new SessionStore(_dir));

    [Fact]
    public void A_session_is_open_at_start_with_the_default_target()
    {
        var service = NewService();
        var counts = service.Snapshot();
        Assert.Equal(SessionState.Running, counts.State);
        Assert.Equal(20, counts.Target);
        Assert.Equal(0, counts.Fields);
        Assert.True(File.Exists(Path.Combine(_dir, "counting-session.json")));
        Assert.False(File.Exists(Path.Combine(_dir, "counting-session.json.tmp")));
    }

    [Fact]
    public void The_field_result_kept_with_the_last_count_survives_restarts_and_commands_and_goes_with_a_new_session()
    {
        var first = NewService();
        Assert.Null(first.LastFieldResult);
        first.CountField(Field(("RBC", 2)), r => $"result of field {r.Tally!.FieldId}");
        first.CountField(Field(("RBC", 1)), r => $"result of field {r.Tally!.FieldId}");
        Assert.Equal("result of field 2", NewService().LastFieldResult);

        // A command saves the session again: the kept result stays with it.
        first.Apply(new SessionCommand(SessionAction.Stop));
        Assert.Equal("result of field 2", NewService().LastFieldResult);

        first.Apply(new SessionCommand(SessionAction.Reset));
        Assert.Null(NewService().LastFieldResult);
    }

    [Fact]
    public void Restart_restores_exact_totals_and_continues_field_ids()
    {
        var first = NewService();
        first.CountField(Field(("neutrophil", 3), ("RBC", 11)));
        first.CountField(Field(("lymphocyte", 2)));
        var before = first.Snapshot();

        var second = NewService();
        var after = second.Snapshot();
        Assert.Equal(before.SessionId, after.SessionId);
        Assert.Equal(before.Totals, after.Totals);
        Assert.Equal(before.Fields, after.Fields);

        var next = second.CountField(Field(("monocyte", 1)));
        Assert.Equal(3, next.Tally!.FieldId);
        Assert.Equal(before.SessionId, next.Tally.SessionId);
    }

    [Fact]
    public void Start_reset_stop_commands_change_the_session()
    {
        var service = NewService();
        service.CountField(Field(("neutrophil", 3)));
        var firstId = service.Snapshot().SessionId;

        var started = service.Apply(new SessionCommand(SessionAction.Start, "S-42", 200)).Counts;
        Assert.NotEqual(firstId, started.SessionId);
        Assert.Equal("S-42", started.SampleId);
        Assert.Equal(200, started.Target);
        Assert.Equal(0, started.Fields);
        Assert.Equal(0, started.Totals["neutrophil"]);

        service.CountField(Field(("neutrophil", 5)));
        var stopped = service.Apply(new SessionCommand(SessionAction.Stop)).Counts;
        Assert.Equal(SessionState.Stopped, stopped.State);
        Assert.Equal(5, stopped.Totals["neutrophil"]);
        var refused = service.CountField(Field(("neutrophil", 5)));
        Assert.False(refused.Accepted);
        Assert.Null(refused.Tally);
        Assert.Equal(5, service.Snapshot().Totals["neutrophil"]);

        var reset = service.Apply(new SessionCommand(SessionAction.Reset)).Counts;
        Assert.Equal(SessionState.Running, reset.State);
        Assert.Equal("S-42", reset.SampleId);
        Assert.Equal(200, reset.Target);
        Assert.Equal(0, reset.Totals["neutrophil"]);
        Assert.NotEqual(started.SessionId, reset.SessionId);
        Assert.Equal(1, service.CountField(Field(("neutrophil", 1))).Tally!.FieldId);
    }

    [Fact]
    public void Completed_state_survives_a_restart()
    {
        var service = NewService(new CountingOptions { DefaultTarget = 3 });
        var result = service.CountField(Field(("neutrophil", 3)));
        Assert.True(result.CompletedNow);
        Assert.Equal(SessionState.Completed, result.Counts.State);

        var again = NewService(new CountingOptions { DefaultTarget = 3 });
        Assert.Equal(SessionState.Completed, again.Snapshot().State);
        Assert.False(again.CountField(Field(("neutrophil", 1))).Accepted);
    }

    [Fact]
    public void A_corrupt_state_file_is_set_aside_and_a_new_session_opens()
    {
        File.WriteAllText(Path.Combine(_dir, "counting-session.json"), "{ not json");
        var service = NewService();
        Assert.Equal(SessionState.Running, service.Snapshot().State);
        Assert.True(File.Exists(Path.Combine(_dir, "counting-session.json.corrupt")));
    }

    [Fact]
    public void Changed_is_raised_for_fields_and_commands()
    {
        var service = NewService();
        var seen = new List<CountsSnapshot>();
        service.Changed += seen.Add;
        service.CountField(Field(("neutrophil", 1)));
        service.Apply(new SessionCommand(SessionAction.Stop));
        Assert.Equal(2, seen.Count);
        Assert.Equal(SessionState.Stopped, seen[1].State);
    }
}
