using EdgeCounter.Storage;
using Microsoft.Extensions.Logging;

namespace EdgeCounter.Tests.Storage;

public class StorageMonitorTests
{
    [Fact]
    public void Free_space_is_measured_at_most_once_a_second_and_crossing_the_reserve_is_said_once_each_way()
    {
        var clock = new ManualClock();
        var log = new RecordingLogger<StorageMonitor>();
        long free = 10_000_000, measured = 0;
        var monitor = new StorageMonitor("/state", reserveBytes: 1_000_000, log, clock, _ => { measured++; return free; });

        Assert.Equal(StorageState.Ok, monitor.State);
        free = 500_000;
        for (var i = 0; i < 50; i++) Assert.False(monitor.BelowReserve); // within the second: the old figure
        Assert.Equal(1, measured);
        clock.Advance(TimeSpan.FromSeconds(1.1));
        Assert.True(monitor.BelowReserve);
        Assert.Equal(StorageState.Low, monitor.State);
        Assert.Equal(500_000, monitor.BytesFree);
        clock.Advance(TimeSpan.FromSeconds(1.1));
        Assert.True(monitor.BelowReserve); // still below: no second warning
        Assert.Equal(1, log.Count(LogLevel.Warning));

        free = 1_100_000; // just above: not yet, so a disk hovering at the reserve does not flap
        clock.Advance(TimeSpan.FromSeconds(1.1));
        Assert.True(monitor.BelowReserve);
        free = 2_000_000;
        clock.Advance(TimeSpan.FromSeconds(1.1));
        Assert.Equal(StorageState.Ok, monitor.State);
        Assert.Equal(1, log.Count(LogLevel.Information));
        Assert.Equal(5, measured);
    }

    [Fact]
    public void A_failing_writer_is_logged_when_it_starts_and_when_it_clears_not_at_every_failure()
    {
        var log = new RecordingLogger<StorageMonitor>();
        var monitor = new StorageMonitor("/state", reserveBytes: 0, log, new ManualClock(), _ => 10_000_000);
        for (var i = 0; i < 20; i++) monitor.Failed("the session file", new IOException("Input/output error", 5), "it goes on in memory");
        Assert.Equal(StorageState.Failing, monitor.State);
        Assert.Single(log.Lines, l => l.Level == LogLevel.Warning && l.Text.Contains("the session file") && l.Text.Contains("Input/output error"));

        monitor.Failed("the MQTT outbox", new Microsoft.Data.Sqlite.SqliteException("database or disk is full", 13), "memory");
        Assert.Equal(StorageState.Failing, monitor.State); // the worse of the two
        monitor.Succeeded("the session file");
        Assert.Equal(StorageState.Full, monitor.State);
        monitor.Succeeded("the MQTT outbox");
        monitor.Succeeded("the MQTT outbox");
        Assert.Equal(StorageState.Ok, monitor.State);
        Assert.Equal(2, log.Count(LogLevel.Warning));
        Assert.Equal(2, log.Count(LogLevel.Information));
    }

    [Fact]
    public void What_can_be_done_without_is_afforded_only_while_it_leaves_the_reserve_free_and_standing_aside_ends_a_failure()
    {
        var clock = new ManualClock();
        var log = new RecordingLogger<StorageMonitor>();
        long? free = 1_500_000;
        var monitor = new StorageMonitor("/state", reserveBytes: 1_000_000, log, clock, _ => free);
        Assert.True(monitor.Affords(400_000));
        Assert.True(monitor.Affords(500_000));
        Assert.False(monitor.Affords(500_001));

        monitor.Failed("the slide map file", new IOException("No space left on device", 28), "behind");
        Assert.Equal(StorageState.Full, monitor.State);
        monitor.StoodAside("the slide map file");
        monitor.StoodAside("the slide map file");
        Assert.Equal(StorageState.Ok, monitor.State); // it no longer tries, so nothing is refused
        Assert.Single(log.Lines, l => l.Level == LogLevel.Information && l.Text.Contains("not written while free space is near the reserve"));

        free = 900_000;
        clock.Advance(TimeSpan.FromSeconds(1.1));
        Assert.False(monitor.Affords(0)); // below the reserve: nothing that can be done without
        free = null;
        clock.Advance(TimeSpan.FromSeconds(1.1));
        Assert.True(monitor.Affords(10_000_000)); // unknown: the write itself says whether it fits
    }

    [Fact]
    public void Out_of_space_is_told_apart_from_other_write_errors()
    {
        Assert.True(StorageMonitor.IsOutOfSpace(new Microsoft.Data.Sqlite.SqliteException("database or disk is full", 13)));
        Assert.False(StorageMonitor.IsOutOfSpace(new Microsoft.Data.Sqlite.SqliteException("disk I/O error", 10)));
        Assert.False(StorageMonitor.IsOutOfSpace(new UnauthorizedAccessException()));
        // A directory that does not exist cannot be measured: unknown, not zero.
        Assert.Null(StorageMonitor.MeasureFreeBytes("/nonexistent/" + Guid.NewGuid()));
        Assert.True(StorageMonitor.MeasureFreeBytes(Path.GetTempPath()) > 0);
    }
}
