using System.Text.Json;
using EdgeCounter.Hosting;
using EdgeCounter.Publishing;
using Microsoft.Extensions.DependencyInjection;
using EdgeCounter.IntegrationTests.Publishing;
using EdgeCounter.IntegrationTests.Service;
using Microsoft.Extensions.Hosting;
using Xunit.Abstractions;

namespace EdgeCounter.IntegrationTests.Reliability;

/// <summary>The hospital broker goes away in the middle of a simulated run and comes back: no field result is lost.</summary>
[Collection("Service")]
public class BrokerOutageTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_persistent_subscriber_gets_every_field_id_with_no_gap_across_a_mosquitto_outage()
    {
        await using var mosquitto = await MosquittoBroker.StartAsync();
        var state = Directory.CreateTempSubdirectory("edgecounter-outage-").FullName;
        const string p = "edgecounter/scope-test";
        try
        {
            // The dashboard: persistent session, QoS 1, so the broker keeps its messages while it is away.
            await using var dashboard = await RecordingSubscriber.ConnectAsync(mosquitto.Port, $"{p}/field", "ward-dashboard", cleanSession: false);
            using var host = ServiceHost.Build(ServiceEndToEndTests.Args(mosquitto.Port, state,
                "--EdgeCounter:Mqtt:Mode=External", "--EdgeCounter:Mqtt:Host=127.0.0.1",
                "--EdgeCounter:Mqtt:ReconnectMinDelay=00:00:00.2", "--EdgeCounter:Mqtt:ReconnectMaxDelay=00:00:01"));
            await host.StartAsync();

            await dashboard.WaitForCountAsync(m => m.Topic == $"{p}/field", 2, TimeSpan.FromSeconds(60), "fields before the outage");
            await mosquitto.StopAsync();
            var down = DateTimeOffset.UtcNow;
            await Task.Delay(TimeSpan.FromSeconds(6)); // the service keeps counting fields meanwhile (about 3)
            var up = DateTimeOffset.UtcNow;
            await mosquitto.StartAgainAsync();
            await dashboard.ReconnectAsync();

            // Count distinct field ids, not messages: at-least-once delivery may repeat a field sent across the cut.
            long[] Ids() => dashboard.Messages.Where(m => m.Topic == $"{p}/field")
                .Select(m => JsonDocument.Parse(m.Payload).RootElement.GetProperty("fieldId").GetInt64()).Distinct().ToArray();
            var before = Ids().Length;
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (Ids().Length < before + 4 && DateTime.UtcNow < deadline) await Task.Delay(200);
            Assert.Equal(1, host.Services.GetRequiredService<MqttPublisher>().GetStats().Reconnects); // one outage, one reconnect
            await host.StopAsync();

            var fields = dashboard.Messages.Where(m => m.Topic == $"{p}/field").Select(m => JsonDocument.Parse(m.Payload).RootElement).ToList();
            var ids = fields.Select(f => f.GetProperty("fieldId").GetInt64()).Distinct().Order().ToList();
            var duringOutage = fields.Count(f => f.GetProperty("capturedAt").GetDateTimeOffset() is var at && at > down && at < up);
            Assert.True(duringOutage >= 1, "no field was counted while the broker was down: the outage tested nothing");
            output.WriteLine($"field ids received: {string.Join(",", ids)}");
            Assert.Equal(Enumerable.Range(1, ids.Count).Select(i => (long)i), ids);
            Assert.True(ids.Count >= 6);
        }
        finally
        {
            Directory.Delete(state, true);
        }
    }
}
