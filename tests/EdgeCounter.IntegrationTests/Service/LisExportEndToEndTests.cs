using System.Text.Json;
using EdgeCounter.Hosting;
using EdgeCounter.IntegrationTests.Lis;
using EdgeCounter.IntegrationTests.Publishing;
using Microsoft.Extensions.Hosting;

namespace EdgeCounter.IntegrationTests.Service;

/// <summary>The real service with Report:Hl7 set: a session signed off while the LIS is down is delivered as ORU^R01
/// by the next start over the same state directory, and one signed off while it is up goes out at once.</summary>
[Collection("Service")]
public class LisExportEndToEndTests
{
    private const string P = "edgecounter/scope-test";
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    private static string[] Args(int mqttPort, string state, int lisPort) => ServiceEndToEndTests.Args(mqttPort, state,
        "--EdgeCounter:Report:Hl7:Host=127.0.0.1", $"--EdgeCounter:Report:Hl7:Port={lisPort}", "--EdgeCounter:Report:Hl7:ReceivingFacility=HAEM",
        "--EdgeCounter:Report:Hl7:RetryInterval=00:00:00.500", "--EdgeCounter:Report:Hl7:RejectedRetryInterval=00:00:01");

    private static async Task SignOffAsync(RecordingSubscriber watcher, string sampleId, bool waitForAField)
    {
        await watcher.PublishAsync($"{P}/session/set", JsonSerializer.SerializeToUtf8Bytes(new { action = "start", sampleId, target = 20 }));
        if (waitForAField)
            await watcher.WaitForAsync(m => m.Topic == $"{P}/field" && m.Text.Contains($"\"sampleId\":\"{sampleId}\""), Wait, $"a field of {sampleId}");
        else
            await watcher.WaitForAsync(m => m.Topic == $"{P}/session/state" && m.Text.Contains(sampleId), Wait, $"{sampleId} started");
        await watcher.PublishAsync($"{P}/session/set", """{"action":"finalize","reviewer":"Dr B"}"""u8.ToArray());
        await watcher.WaitForAsync(m => m.Topic == $"{P}/report" && m.Text.Contains($"\"sampleId\":\"{sampleId}\""), Wait, $"the report of {sampleId}");
    }

    [Fact]
    public async Task A_signed_report_reaches_the_LIS_as_ORU_R01_also_when_it_was_down_until_a_restart()
    {
        var mqttPort = FreePort.Next();
        var lisPort = FreePort.Next(); // nobody listens there yet: the LIS is down
        var state = Directory.CreateTempSubdirectory("edgecounter-lis-").FullName;
        try
        {
            using (var host = ServiceHost.Build(Args(mqttPort, state, lisPort)))
            {
                await host.StartAsync();
                await using var watcher = await RecordingSubscriber.ConnectAsync(mqttPort, $"{P}/#");
                await watcher.WaitForAsync(m => m.Topic == $"{P}/available" && m.Text == "online", Wait, "online");
                await SignOffAsync(watcher, "S-1", waitForAField: true);
                await host.StopAsync();
            }

            await using var lis = new MllpTestListener(lisPort);
            using (var host = ServiceHost.Build(Args(mqttPort, state, lisPort)))
            {
                await host.StartAsync();
                var kept = Assert.Single(await lis.WaitForAsync(1, Wait));
                Assert.Contains("|ORU^R01^ORU_R01|", kept);
                Assert.Equal(("S-1", "HAEM", "scope-test"), (MllpTestListener.Field(kept, "OBR", 2), MllpTestListener.Field(kept, "MSH", 6),
                    MllpTestListener.Field(kept, "MSH", 4)));
                var observations = kept.Split('\r').Where(s => s.StartsWith("OBX|", StringComparison.Ordinal)).ToList();
                Assert.Contains(observations, o => o.Split('|')[3].StartsWith("770-8^", StringComparison.Ordinal) && o.Split('|')[11] == "F");
                Assert.Contains(observations, o => o.Contains("|EC-REVIEWER^") && o.Split('|')[5] == "Dr B");
                Assert.Contains(observations, o => o.StartsWith("OBX|", StringComparison.Ordinal) && o.Contains("|EC-WBC-COUNTED^"));

                // The LIS up: the next sign-off goes out at once, with its own control id.
                await using var watcher = await RecordingSubscriber.ConnectAsync(mqttPort, $"{P}/#");
                await SignOffAsync(watcher, "S-2", waitForAField: false);
                var both = await lis.WaitForAsync(2, Wait);
                Assert.Equal("S-2", MllpTestListener.Field(both[1], "OBR", 2));
                Assert.NotEqual(MllpTestListener.Field(both[0], "MSH", 10), MllpTestListener.Field(both[1], "MSH", 10));
                await host.StopAsync();
            }
            Assert.Equal(2, lis.Received.Count); // each acknowledged once, none sent again
        }
        finally
        {
            Directory.Delete(state, true);
        }
    }
}
