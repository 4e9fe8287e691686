using System.Text;
using System.Text.Json;
using EdgeCounter.Hosting;
using EdgeCounter.IntegrationTests.Service;
using Microsoft.Extensions.Hosting;

namespace EdgeCounter.IntegrationTests.Publishing;

/// <summary>Home Assistant MQTT discovery on the real service and broker, driven as Home Assistant would: read the
/// configs, press a button by publishing its payload to its command topic, say "online" on homeassistant/status.</summary>
[Collection("Service")]
public class HomeAssistantDiscoveryTests
{
    private const string P = "edgecounter/scope-test";

    private static JsonElement Json(Received m) => JsonDocument.Parse(m.Payload).RootElement;

    [Fact]
    public async Task Entities_are_announced_their_buttons_work_they_are_announced_again_when_home_assistant_restarts_and_plain_counts_match()
    {
        var port = FreePort.Next();
        var state = Directory.CreateTempSubdirectory("edgecounter-ha-").FullName;
        try
        {
            using var host = ServiceHost.Build(ServiceEndToEndTests.Args(port, state));
            await host.StartAsync();
            await using var ha = await RecordingSubscriber.ConnectAsync(port, "homeassistant/#");
            await using var scope = await RecordingSubscriber.ConnectAsync(port, $"{P}/#");

            bool IsConfig(Received m) => m.Topic.StartsWith("homeassistant/", StringComparison.Ordinal) && m.Topic.EndsWith("/config", StringComparison.Ordinal);
            await ha.WaitForCountAsync(IsConfig, 20, TimeSpan.FromSeconds(30), "discovery configs");
            // Retained: a Home Assistant that connects later gets them all.
            await Task.Delay(1000); // the whole announcement, which the first configs belong to
            var firstRound = ha.Messages.Count(IsConfig);
            await using var later = await RecordingSubscriber.ConnectAsync(port, "homeassistant/#");
            var configs = await later.WaitForCountAsync(m => IsConfig(m) && m.Retain, firstRound, TimeSpan.FromSeconds(10), "retained discovery configs");
            Assert.Contains(configs, m => m.Topic == "homeassistant/sensor/edgecounter_scope-test/count_rbc/config");
            Assert.Contains(configs, m => m.Topic == "homeassistant/image/edgecounter_scope-test/field/config");

            // The start button, pressed: a new session.
            var before = Json(await scope.WaitForAsync(m => m.Topic == $"{P}/session/state", what: "session state")).GetProperty("sessionId").GetString();
            var start = Json(configs.Single(m => m.Topic == "homeassistant/button/edgecounter_scope-test/start/config"));
            await scope.PublishAsync(start.GetProperty("command_topic").GetString()!, Encoding.UTF8.GetBytes(start.GetProperty("payload_press").GetString()!));
            await scope.WaitForAsync(m => m.Topic == $"{P}/session/state" && Json(m).GetProperty("sessionId").GetString() != before,
                TimeSpan.FromSeconds(20), "a new session after the start button");

            // Home Assistant restarted: it says online, and is told again.
            await ha.PublishAsync("homeassistant/status", "online"u8.ToArray());
            await ha.WaitForCountAsync(IsConfig, firstRound * 2, TimeSpan.FromSeconds(20), "discovery again after homeassistant/status online");

            // Plain numbers beside the JSON: each label's retained topic holds the same total as P/counts.
            var counts = Json(await scope.WaitForAsync(m => m.Topic == $"{P}/counts" && Json(m).GetProperty("fields").GetInt64() >= 2,
                TimeSpan.FromSeconds(60), "counts after two fields"));
            await Task.Delay(1000); // the plain numbers of this counts message are queued with it
            await using var late = await RecordingSubscriber.ConnectAsync(port, $"{P}/counts/+");
            var labels = counts.GetProperty("totals").EnumerateObject().ToList();
            var plain = await late.WaitForCountAsync(m => m.Retain, labels.Count, TimeSpan.FromSeconds(10), "retained plain counts");
            var latest = Json(scope.Messages.Last(m => m.Topic == $"{P}/counts")).GetProperty("totals");
            foreach (var label in labels)
                Assert.Equal(latest.GetProperty(label.Name).GetInt64().ToString(),
                    plain.Last(m => m.Topic == $"{P}/counts/{label.Name}").Text);
            await host.StopAsync();
        }
        finally { Directory.Delete(state, recursive: true); }
    }
}
