using System.Diagnostics;
using System.Text.Json;
using EdgeCounter.IntegrationTests.Publishing;
using EdgeCounter.IntegrationTests.Service;
using Xunit.Abstractions;

namespace EdgeCounter.IntegrationTests.Reliability;

/// <summary>Power loss mid-session: the service process is killed with SIGKILL and started again.</summary>
[Collection("Service")]
public class ProcessKillTests(ITestOutputHelper output)
{
    private static Process StartService(int port, string state)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "EdgeCounter.dll"));
        foreach (var a in ServiceEndToEndTests.Args(port, state, "--EdgeCounter:Mqtt:Mode=External", "--EdgeCounter:Mqtt:Host=127.0.0.1",
                     "--EdgeCounter:DeviceId=scope-kill"))
            start.ArgumentList.Add(a);
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static JsonElement Json(Received m) => JsonDocument.Parse(m.Payload).RootElement;

    [Fact]
    public async Task After_a_kill_the_session_continues_with_exact_totals_and_field_ids_neither_lost_nor_reused()
    {
        await using var mosquitto = await MosquittoBroker.StartAsync();
        var state = Directory.CreateTempSubdirectory("edgecounter-kill-").FullName;
        const string p = "edgecounter/scope-kill";
        try
        {
            await using var watcher = await RecordingSubscriber.ConnectAsync(mosquitto.Port, $"{p}/#", clientId: "kill-watcher", cleanSession: false);

            using (var first = StartService(mosquitto.Port, state))
            {
                try
                {
                    await watcher.WaitForCountAsync(m => m.Topic == $"{p}/field", 3, TimeSpan.FromSeconds(90), "fields before the kill");
                }
                finally
                {
                    first.Kill(); // SIGKILL: no clean shutdown, no 'stopped'
                    await first.WaitForExitAsync();
                }
            }
            await watcher.WaitForAsync(m => m.Topic == $"{p}/available" && m.Text == "offline", TimeSpan.FromSeconds(60), "last will 'offline'");
            var fieldsBeforeKill = watcher.Messages.Where(m => m.Topic == $"{p}/field").Select(Json).ToList();
            var session = fieldsBeforeKill[0].GetProperty("sessionId").GetString();
            var lastIdBeforeKill = fieldsBeforeKill.Max(f => f.GetProperty("fieldId").GetInt64());

            using (var second = StartService(mosquitto.Port, state))
            {
                try
                {
                    await watcher.WaitForAsync(m => m.Topic == $"{p}/field" && Json(m).GetProperty("fieldId").GetInt64() >= lastIdBeforeKill + 3,
                        TimeSpan.FromSeconds(90), "fields after the restart");
                }
                finally
                {
                    second.Kill();
                    await second.WaitForExitAsync();
                }
            }

            var fields = watcher.Messages.Where(m => m.Topic == $"{p}/field").Select(Json).ToList();
            Assert.All(fields, f => Assert.Equal(session, f.GetProperty("sessionId").GetString()));
            // Every id from 1 to the last arrived (none lost); an id that arrived twice is the same field re-sent, not reused.
            var byId = fields.GroupBy(f => f.GetProperty("fieldId").GetInt64()).OrderBy(g => g.Key).ToList();
            output.WriteLine($"field ids {byId.First().Key}..{byId.Last().Key}, {fields.Count} messages, {fields.Count - byId.Count} re-sent");
            Assert.Equal(Enumerable.Range(1, byId.Count).Select(i => (long)i), byId.Select(g => g.Key));
            foreach (var g in byId)
                Assert.Single(g.Select(f => f.GetProperty("capturedAt").GetString()).Distinct());

            // The retained counts after the restart continue the totals: they equal the sum of all the session's fields.
            var counts = watcher.Messages.Last(m => m.Topic == $"{p}/counts");
            var totals = Json(counts);
            var upTo = totals.GetProperty("fields").GetInt64();
            var summed = new Dictionary<string, long>();
            foreach (var g in byId.Where(g => g.Key <= upTo))
                foreach (var c in g.First().GetProperty("counts").EnumerateObject())
                    summed[c.Name] = summed.GetValueOrDefault(c.Name) + c.Value.GetInt64();
            Assert.True(upTo > lastIdBeforeKill);
            foreach (var t in totals.GetProperty("totals").EnumerateObject())
                Assert.Equal(summed.GetValueOrDefault(t.Name), t.Value.GetInt64());
        }
        finally
        {
            Directory.Delete(state, true);
        }
    }
}
