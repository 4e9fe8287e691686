using EdgeCounter.Counting;
using EdgeCounter.Storage;
using Microsoft.Extensions.Logging;
using static EdgeCounter.Tests.Counting.CountingTestData;

namespace EdgeCounter.Tests.Storage;

/// <summary>The session file cannot be written (its directory replaced by a file: a real IOException, also as
/// root): counting goes on in memory and the next save that lands writes the whole current state.</summary>
public sealed class SessionSaveFaultTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("edgecounter-session-fault-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void A_refused_save_does_not_stop_counting_and_the_next_save_writes_the_current_state()
    {
        var dir = Path.Combine(_root, "state");
        var log = new RecordingLogger<StorageMonitor>();
        var monitor = new StorageMonitor(dir, reserveBytes: 0, log, new ManualClock());
        var service = new CountingService(Catalog(), new CountingOptions { DefaultTarget = 1000 }, new SessionStore(dir), storage: monitor);
        service.CountField(Field(("neutrophil", 1)));

        Directory.Delete(dir, recursive: true);
        File.WriteAllText(dir, "not a directory"); // every save now fails
        for (var i = 0; i < 5; i++) service.CountField(Field(("lymphocyte", 1), ("RBC", 10)));
        Assert.Equal(6, service.Snapshot().Fields);
        Assert.Equal(StorageState.Failing, monitor.State);
        Assert.Single(log.Lines, l => l.Level == LogLevel.Warning && l.Text.Contains("the session file")); // once, not per field

        File.Delete(dir);
        Directory.CreateDirectory(dir);
        service.CountField(Field(("monocyte", 1)));
        Assert.Equal(StorageState.Ok, monitor.State);
        Assert.Single(log.Lines, l => l.Level == LogLevel.Information && l.Text.Contains("the session file"));

        var restored = new CountingService(Catalog(), new CountingOptions { DefaultTarget = 1000 }, new SessionStore(dir)).Snapshot();
        Assert.Equal(7, restored.Fields);
        Assert.Equal(5, restored.Totals["lymphocyte"]);
        Assert.Equal(50, restored.Totals["RBC"]);
        Assert.Empty(Directory.GetFiles(dir, "*.tmp"));
    }
}
