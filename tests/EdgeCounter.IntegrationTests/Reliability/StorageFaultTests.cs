using System.Collections.Concurrent;
using System.Text.Json;
using EdgeCounter.Counting;
using EdgeCounter.Hosting;
using EdgeCounter.IntegrationTests.Publishing;
using EdgeCounter.IntegrationTests.Service;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace EdgeCounter.IntegrationTests.Reliability;

/// <summary>The state directory on a real small filesystem (tmpfs) that fills up, frees again, or is read-only: the
/// service keeps counting and publishing, says so in P/stats and the log, and resumes keeping its outbox without a restart.</summary>
[Collection("Service")]
public class StorageFaultTests(ITestOutputHelper output)
{
    private const string P = "edgecounter/scope-test";

    private static JsonElement Json(Received m) => JsonDocument.Parse(m.Payload).RootElement;

    private static bool IsField(Received m) => m.Topic == $"{P}/field";

    private static JsonElement? Storage(Received m) => m.Topic == $"{P}/stats" ? Json(m).GetProperty("storage") : null;

    private static bool StatsSay(Received m, string state) => Storage(m) is { } s && s.GetProperty("state").GetString() == state;

    private static long[] FieldIds(RecordingSubscriber watcher) =>
        watcher.Messages.Where(IsField).Select(m => Json(m).GetProperty("fieldId").GetInt64()).Distinct().Order().ToArray();

    [RequiresTmpfsFact]
    public async Task On_a_full_state_disk_it_keeps_counting_and_publishing_and_keeps_its_outbox_again_once_space_is_freed()
    {
        await using var mosquitto = await MosquittoBroker.StartAsync();
        using var disk = TmpfsMount.Create("4m");
        var logs = new RecordingLoggerProvider();
        // A persistent session: the fields sent while the broker is away (below) reach the dashboard afterwards.
        await using var watcher = await RecordingSubscriber.ConnectAsync(mosquitto.Port, $"{P}/#", "storage-dashboard", cleanSession: false);
        using var host = ServiceHost.Build(ServiceEndToEndTests.Args(mosquitto.Port, Path.Combine(disk.Path, "state"),
                "--EdgeCounter:Mqtt:Mode=External", "--EdgeCounter:Mqtt:Host=127.0.0.1", "--EdgeCounter:StateDiskReserveBytes=1048576",
                "--EdgeCounter:Mqtt:ReconnectMinDelay=00:00:00.2", "--EdgeCounter:Mqtt:ReconnectMaxDelay=00:00:01"),
            customise: builder => builder.Logging.AddProvider(logs));
        await host.StartAsync();
        try
        {
            await watcher.WaitForCountAsync(IsField, 2, TimeSpan.FromSeconds(60), "fields before the disk fills");

            var filler = Path.Combine(disk.Path, "filler");
            disk.Fill(filler);
            var filledAt = DateTimeOffset.UtcNow;
            var full = Storage(await watcher.WaitForAsync(m => StatsSay(m, "full") && Storage(m)!.Value.GetProperty("bytesFree").GetInt64() < 64 * 1024,
                TimeSpan.FromSeconds(30), "stats saying the disk is full"))!.Value;
            output.WriteLine($"full: {full}");
            Assert.Equal(1048576, full.GetProperty("reserveBytes").GetInt64());
            // Hospital IT sees it over HTTP too: not ready, naming the storage check.
            using var http = new HttpClient();
            var web = host.Services.GetRequiredService<EdgeCounter.Web.WebEndpoints>().BoundUrls.Single();
            var (status, storage) = await ReadyzStorageAsync(http, web);
            Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, status);
            Assert.False(storage.GetProperty("ok").GetBoolean());
            Assert.StartsWith("full", storage.GetProperty("detail").GetString());

            await Task.Delay(TimeSpan.FromSeconds(20));
            var countedWhileFull = watcher.Messages.Where(IsField).Select(Json)
                .Where(f => f.GetProperty("capturedAt").GetDateTimeOffset() > filledAt).Select(f => f.GetProperty("fieldId").GetInt64()).Distinct().Count();
            output.WriteLine($"fields published while the disk was full: {countedWhileFull}");
            Assert.True(countedWhileFull >= 5, $"only {countedWhileFull} fields in 20 s on a full disk");
            Assert.True(StatsSay(watcher.Messages.Last(m => m.Topic == $"{P}/stats"), "full"));

            // Space again: persistence resumes by itself, no restart.
            File.Delete(filler);
            var freedAt = DateTimeOffset.UtcNow;
            // Stats sent after the disk was freed (the first ones, from before it filled, also said ok).
            await watcher.WaitForAsync(m => StatsSay(m, "ok") && Storage(m)!.Value.GetProperty("pendingInMemory").GetInt32() == 0
                    && Json(m).GetProperty("at").GetDateTimeOffset() > freedAt,
                TimeSpan.FromSeconds(30), "stats saying the disk takes writes again");
            var again = (await ReadyzStorageAsync(http, web)).Storage;
            Assert.True(again.GetProperty("ok").GetBoolean(), $"/readyz storage after the disk was freed: {again}");

            // Results are kept on disk again: with the broker away, new fields wait in the outbox file.
            var counting = host.Services.GetRequiredService<CountingService>();
            await mosquitto.StopAsync();
            var before = counting.Snapshot().Fields;
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(40);
            while (counting.Snapshot().Fields < before + 2 && DateTime.UtcNow < deadline) await Task.Delay(200);
            Assert.True(OutboxFieldsOnDisk(Path.Combine(disk.Path, "state", "mqtt-outbox.db")) >= 2, "fields counted with the broker away are not in the outbox file");

            await mosquitto.StartAgainAsync();
            await watcher.ReconnectAsync();
            var last = counting.Snapshot().Fields;
            deadline = DateTime.UtcNow + TimeSpan.FromSeconds(40);
            while (FieldIds(watcher).LastOrDefault() < last && DateTime.UtcNow < deadline) await Task.Delay(200);
            var ids = FieldIds(watcher);
            output.WriteLine($"field ids received: {string.Join(",", ids)}");
            Assert.Equal(Enumerable.Range(1, ids.Length).Select(i => (long)i), ids); // none lost: before, during and after the full disk
        }
        finally
        {
            await host.StopAsync();
        }

        // Said once per episode, not once per field.
        var outboxWarnings = logs.Lines.Count(l => l.Level == LogLevel.Warning && l.Text.Contains("the MQTT outbox cannot be written"));
        Assert.InRange(outboxWarnings, 1, 2);
        Assert.Contains(logs.Lines, l => l.Level == LogLevel.Information && l.Text.Contains("the MQTT outbox is written again"));
    }

    private static async Task<(System.Net.HttpStatusCode Status, JsonElement Storage)> ReadyzStorageAsync(HttpClient http, string url)
    {
        using var response = await http.GetAsync($"{url}/readyz");
        var report = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        return (response.StatusCode, report.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "storage").Clone());
    }

    [RequiresTmpfsFact]
    public async Task A_state_disk_full_before_the_start_does_not_stop_it_and_the_outbox_is_opened_once_there_is_space()
    {
        var port = FreePort.Next();
        using var disk = TmpfsMount.Create("512k");
        var state = Path.Combine(disk.Path, "state");
        Directory.CreateDirectory(state);
        var filler = Path.Combine(disk.Path, "filler");
        disk.Fill(filler);
        // No images: once freed, half a megabyte must stay free (field images and slide maps would fill it again,
        // and the "ok" this test waits for would last only a moment).
        using var host = ServiceHost.Build(ServiceEndToEndTests.Args(port, state, "--EdgeCounter:StateDiskReserveBytes=65536",
            "--EdgeCounter:Mqtt:PublishImages=false"));
        await host.StartAsync();
        try
        {
            await using var watcher = await RecordingSubscriber.ConnectAsync(port, $"{P}/#");
            await watcher.WaitForCountAsync(IsField, 3, TimeSpan.FromSeconds(60), "fields on a disk full from the start");
            Assert.True(StatsSay(await watcher.WaitForAsync(m => m.Topic == $"{P}/stats", what: "stats"), "full"));
            Assert.False(File.Exists(Path.Combine(state, "mqtt-outbox.db")) && new FileInfo(Path.Combine(state, "mqtt-outbox.db")).Length > 0);

            File.Delete(filler);
            var freedAt = DateTime.UtcNow;
            try
            {
                await watcher.WaitForAsync(m => StatsSay(m, "ok") && DateTime.UtcNow > freedAt, TimeSpan.FromSeconds(30), "stats saying ok after freeing");
            }
            catch (TimeoutException)
            {
                // What holds the space: the first thing to know when this fails on another machine.
                foreach (var file in new DirectoryInfo(state).EnumerateFiles()) output.WriteLine($"{file.Name}: {file.Length} bytes");
                output.WriteLine("last stats: " + System.Text.Encoding.UTF8.GetString(watcher.Messages.Last(m => m.Topic == $"{P}/stats").Payload));
                throw;
            }
            Assert.True(File.Exists(Path.Combine(state, "mqtt-outbox.db")), "the outbox was not opened once there was space");
            Assert.True(File.Exists(Path.Combine(state, "counting-session.json")), "the session was not saved once there was space");
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [RequiresTmpfsFact]
    public async Task A_read_only_state_directory_stops_the_start_with_exit_code_2_naming_it()
    {
        // chmod does not stop root: a read-only filesystem does.
        using var disk = TmpfsMount.Create("64k", readOnly: true);
        var e = Assert.Throws<ConfigurationProblemException>(() => ServiceHost.Build(ServiceEndToEndTests.Args(FreePort.Next(), disk.Path)));
        var problem = Assert.Single(e.Problems);
        output.WriteLine(problem);
        Assert.Contains("EdgeCounter:StateDirectory", problem);
        Assert.Contains(disk.Path, problem);

        // A state directory to be made inside it: the same start error, and the exit code systemd does not restart on.
        Assert.Equal(ServiceHost.ConfigurationError, await ServiceHost.RunAsync(ServiceEndToEndTests.Args(FreePort.Next(), Path.Combine(disk.Path, "state"))));
    }

    /// <summary>Field results in the outbox file, read as another process would.</summary>
    private static long OutboxFieldsOnDisk(string path)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT COUNT(*) FROM outbox WHERE topic = '{P}/field';";
        return (long)command.ExecuteScalar()!;
    }
}

/// <summary>Keeps every line the host logs.</summary>
internal sealed class RecordingLoggerProvider : ILoggerProvider
{
    private readonly ConcurrentQueue<(LogLevel Level, string Text)> _lines = new();

    public IReadOnlyList<(LogLevel Level, string Text)> Lines => _lines.ToArray();

    public ILogger CreateLogger(string categoryName) => new Logger(_lines);

    public void Dispose() { }

    private sealed class Logger(ConcurrentQueue<(LogLevel, string)> lines) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            lines.Enqueue((logLevel, formatter(state, exception)));
    }
}
