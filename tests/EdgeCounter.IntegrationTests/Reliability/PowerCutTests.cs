using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using EdgeCounter.IntegrationTests.Publishing;
using Xunit.Abstractions;

namespace EdgeCounter.IntegrationTests.Reliability;

/// <summary>
/// Power cuts at random moments: the built service (a separate process, simulated microscope as fast as it renders,
/// so the session file and the outbox are written all the time) is SIGKILLed many times, started again each time on
/// the same state directory, with mosquitto as the broker and one persistent-session subscriber throughout.
/// </summary>
[Collection("Service")]
public class PowerCutTests(ITestOutputHelper output)
{
    private const string Device = "scope-powercut";
    private const string P = "edgecounter/" + Device;

    /// <summary>50 by default (issue 19); EDGECOUNTER_POWER_CUTS=500 for a longer hunt.</summary>
    private static int PowerCuts => int.TryParse(Environment.GetEnvironmentVariable("EDGECOUNTER_POWER_CUTS"), out var n) && n > 0 ? n : 50;

    [Fact]
    public async Task Killed_at_random_moments_the_session_and_outbox_always_open_and_the_subscriber_gets_every_field_once_with_exact_totals()
    {
        await using var mosquitto = await MosquittoBroker.StartAsync();
        var state = Directory.CreateTempSubdirectory("edgecounter-powercut-").FullName;
        var random = new Random(19);
        var clock = Stopwatch.StartNew();
        var killedMidSessionSave = 0;
        var lastFieldBeforeCut = new List<long>(); // as the service's console said: where a skipped id would sit
        try
        {
            // P/+: field, counts, available, stats; not the images.
            await using var dashboard = await RecordingSubscriber.ConnectAsync(mosquitto.Port, $"{P}/+", "powercut-dashboard", cleanSession: false);
            for (var cut = 1; cut <= PowerCuts; cut++)
            {
                await using var service = ServiceProcess.Start(mosquitto.Port, state);
                await service.WaitForLineAsync(IsFieldLine, TimeSpan.FromSeconds(60), "the first counted field");
                await Task.Delay(TimeSpan.FromMilliseconds(random.Next(200, 2000)));
                service.PowerCut();
                await service.WaitForExitAsync();

                AssertOpenedCleanly(service, state, cut);
                lastFieldBeforeCut.Add(service.LastCountedFieldId());
                if (File.Exists(Path.Combine(state, "counting-session.json.tmp"))) killedMidSessionSave++;
            }

            // The last start: count a little, then stop the session by command so that the last counts are final.
            await using (var last = ServiceProcess.Start(mosquitto.Port, state))
            {
                await last.WaitForLineAsync(IsFieldLine, TimeSpan.FromSeconds(60), "the first counted field after the last cut");
                AssertOpenedCleanly(last, state, PowerCuts + 1);
                await dashboard.PublishAsync($"{P}/session/set", """{"action":"stop"}"""u8.ToArray());
                await dashboard.WaitForAsync(m => m.Topic == $"{P}/counts" && Json(m).GetProperty("state").GetString() == "stopped",
                    TimeSpan.FromSeconds(60), "counts of the stopped session");
                var fields = Json(dashboard.Messages.Last(m => m.Topic == $"{P}/counts")).GetProperty("fields").GetInt64();
                // Fields counted just before the stop may still be on their way (the stop can overtake them).
                output.WriteLine($"last field on the console before each cut: {string.Join(",", lastFieldBeforeCut)}");
                await WaitForEveryFieldAsync(dashboard, fields, TimeSpan.FromSeconds(60));
                last.PowerCut();
                await last.WaitForExitAsync();
            }

            var messages = dashboard.Messages.Where(m => m.Topic == $"{P}/field").ToList();
            var byId = messages.GroupBy(m => Json(m).GetProperty("fieldId").GetInt64()).OrderBy(g => g.Key).ToList();
            var resent = messages.Count - byId.Count;
            var finalCounts = Json(dashboard.Messages.Last(m => m.Topic == $"{P}/counts"));
            var counted = finalCounts.GetProperty("fields").GetInt64();
            output.WriteLine($"{PowerCuts} power cuts in {clock.Elapsed.TotalSeconds:F0} s, {killedMidSessionSave} of them during a session save " +
                $"(temp file left); {counted} fields counted, {messages.Count} field messages, {resent} re-sent after a restart");

            Assert.Single(messages.Select(m => Json(m).GetProperty("sessionId").GetString()).Distinct());
            // Never skipped: every id from 1 to the last count arrived; never reused: a repeated id is the same message again.
            Assert.Equal(Enumerable.Range(1, (int)counted).Select(i => (long)i), byId.Select(g => g.Key).Where(id => id <= counted));
            Assert.All(byId, g => Assert.Single(g.Select(m => Convert.ToBase64String(m.Payload)).Distinct()));
            Assert.DoesNotContain(byId, g => g.Key > counted);

            // The totals are the sum of what every distinct field counted.
            var summed = new Dictionary<string, long>();
            foreach (var g in byId)
                foreach (var c in Json(g.First()).GetProperty("counts").EnumerateObject())
                    summed[c.Name] = summed.GetValueOrDefault(c.Name) + c.Value.GetInt64();
            foreach (var t in finalCounts.GetProperty("totals").EnumerateObject())
                Assert.Equal(summed.GetValueOrDefault(t.Name), t.Value.GetInt64());
            Assert.True(counted > PowerCuts, $"only {counted} fields in {PowerCuts + 1} runs");
        }
        finally
        {
            Directory.Delete(state, true);
        }
    }

    /// <summary>The session file was restored (not a new session) and nothing was quarantined.</summary>
    private static void AssertOpenedCleanly(ServiceProcess service, string state, int run)
    {
        if (run > 1)
            Assert.True(service.Lines.Any(l => l.Contains("Restored session")), $"run {run}: the session was not restored:\n{string.Join('\n', service.Lines)}");
        Assert.DoesNotContain(service.Lines, l => l.Contains("corrupt", StringComparison.OrdinalIgnoreCase) || l.Contains("unreadable", StringComparison.OrdinalIgnoreCase));
        Assert.Empty(Directory.GetFiles(state, "*.corrupt"));
    }

    private static bool IsFieldLine(string line) => line.Contains("CountingWorker[0] Field ");

    private static JsonElement Json(Received m) => JsonDocument.Parse(m.Payload).RootElement;

    private static HashSet<long> FieldIds(RecordingSubscriber subscriber) =>
        subscriber.Messages.Where(m => m.Topic == $"{P}/field").Select(m => Json(m).GetProperty("fieldId").GetInt64()).ToHashSet();

    /// <summary>Waits until every field id 1..<paramref name="fields"/> arrived; names the missing ones when some never do.</summary>
    private static async Task WaitForEveryFieldAsync(RecordingSubscriber subscriber, long fields, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var missing = Enumerable.Range(1, (int)fields).Select(i => (long)i).Except(FieldIds(subscriber)).ToList();
            if (missing.Count == 0) return;
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"field ids never received (skipped) of {fields} counted: {string.Join(", ", missing)}");
            await Task.Delay(200);
        }
    }

    /// <summary>The built service as its own process, its console lines kept.</summary>
    private sealed class ServiceProcess : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly ConcurrentQueue<string> _lines = new();
        private readonly SemaphoreSlim _lineArrived = new(0);

        private ServiceProcess(Process process)
        {
            _process = process;
            process.OutputDataReceived += (_, e) => Keep(e.Data);
            process.ErrorDataReceived += (_, e) => Keep(e.Data);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
        }

        public IReadOnlyList<string> Lines => _lines.ToArray();

        public static ServiceProcess Start(int port, string state)
        {
            var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
            start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "EdgeCounter.dll"));
            foreach (var a in new[]
                     {
                         $"--EdgeCounter:DeviceId={Device}", $"--EdgeCounter:StateDirectory={state}",
                         "--EdgeCounter:Mqtt:Mode=External", "--EdgeCounter:Mqtt:Host=127.0.0.1", $"--EdgeCounter:Mqtt:Port={port}",
                         "--EdgeCounter:Mqtt:ReconnectMinDelay=00:00:00.2", "--EdgeCounter:Mqtt:ReconnectMaxDelay=00:00:01",
                         // As fast as it renders, short stops: a field (a session save and outbox writes) every few tens of ms.
                         "--EdgeCounter:Source:RealTime=false", "--EdgeCounter:Source:Simulator:StopDuration=00:00:01",
                         "--EdgeCounter:Source:Simulator:Seed=19", "--EdgeCounter:Detector:IntraOpThreads=1",
                         "--EdgeCounter:Counting:DefaultTarget=100000",
                     })
                start.ArgumentList.Add(a);
            return new ServiceProcess(Process.Start(start)!);
        }

        public async Task WaitForLineAsync(Func<string, bool> match, TimeSpan timeout, string what)
        {
            var deadline = DateTime.UtcNow + timeout;
            while (!_lines.Any(match))
            {
                if (_process.HasExited) Assert.Fail($"the service exited ({_process.ExitCode}) before {what}:\n{string.Join('\n', Lines)}");
                if (DateTime.UtcNow > deadline) Assert.Fail($"no {what} in {timeout}:\n{string.Join('\n', Lines)}");
                await _lineArrived.WaitAsync(TimeSpan.FromMilliseconds(200));
            }
        }

        public long LastCountedFieldId() =>
            Lines.Where(IsFieldLine).Select(l => long.Parse(l[(l.IndexOf("] Field ", StringComparison.Ordinal) + 8)..].Split(':', ' ', '[')[0])).LastOrDefault();

        /// <summary>SIGKILL: no shutdown code runs, as when the power goes.</summary>
        public void PowerCut() => _process.Kill();

        public Task WaitForExitAsync() => _process.WaitForExitAsync();

        private void Keep(string? line)
        {
            if (line is null) return;
            _lines.Enqueue(line);
            _lineArrived.Release();
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited) _process.Kill();
            await _process.WaitForExitAsync();
            _process.Dispose();
        }
    }
}
