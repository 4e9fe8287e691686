using System.Collections.Concurrent;
using System.Text.Json;
using EdgeCounter.Hosting;
using EdgeCounter.IntegrationTests.Publishing;
using EdgeCounter.IntegrationTests.Service;
using EdgeCounter.Web;
using Microsoft.Extensions.DependencyInjection;
using PuppeteerSharp;
using Xunit.Abstractions;

namespace EdgeCounter.IntegrationTests.Web;

/// <summary>
/// Many microscopes, one broker: 50 devices (the service's real counting and publishing parts, each with its own
/// outbox) publish to one mosquitto, the ward broker, which bridges <c>edgecounter/#</c> to a central broker (here the
/// embedded broker of a running EdgeCounter, whose /ward page a browser watches). An aggregating subscriber on each
/// broker must see every field of every device, and the ward page must list every device (docs/ward.md).
/// </summary>
[Collection("Service")]
public class WardLoadTests(ITestOutputHelper output)
{
    private const int Devices = 50, FieldsEach = 6;

    [Fact]
    public async Task Fifty_microscopes_on_one_broker_every_field_of_every_device_arrives_and_the_ward_page_lists_them_all()
    {
        var centralPort = FreePort.Next();
        var state = Directory.CreateTempSubdirectory("edgecounter-ward-").FullName;
        try
        {
            using var central = ServiceHost.Build(ServiceEndToEndTests.Args(centralPort, state));
            await central.StartAsync();
            // The ward broker forwards every EdgeCounter topic to the central one (docs/ward.md: the same lines).
            await using var ward = await MosquittoBroker.StartAsync(extraConfig: $"""
                connection central
                address 127.0.0.1:{centralPort}
                topic edgecounter/# out 1
                bridge_protocol_version mqttv311
                try_private false
                cleansession true
                clientid ward-bridge
                """);
            await using var atWard = await RecordingSubscriber.ConnectAsync(ward.Port, "edgecounter/+/field");
            await using var atCentre = await RecordingSubscriber.ConnectAsync(centralPort, "edgecounter/+/field");

            var devices = new List<ServiceUnderTest>();
            using var image = ServiceUnderTest.NoisyImage(320, 240);
            try
            {
                for (var d = 0; d < Devices; d++)
                {
                    var device = ServiceUnderTest.Create(ward.Port, publishImages: false, configure: o => o.DeviceId = $"ward-scope-{d:00}");
                    devices.Add(device);
                    await device.Publisher.StartAsync();
                }
                // All at once, as a busy ward: every device counts its fields concurrently.
                await Task.WhenAll(devices.Select(device => Task.Run(() =>
                {
                    for (var i = 0; i < FieldsEach; i++)
                        Assert.True(device.Report(ServiceUnderTest.MakeField(image, i, "neutrophil", "lymphocyte", "RBC")).Accepted);
                })));

                // The central broker also carries the central service's own fields: only the ward's devices are counted here.
                static HashSet<(string Device, long Field)> Fields(RecordingSubscriber s) => s.Messages
                    .Where(m => m.Topic.StartsWith("edgecounter/ward-scope-", StringComparison.Ordinal))
                    .Select(m => JsonDocument.Parse(m.Payload).RootElement)
                    .Select(f => (f.GetProperty("sessionId").GetString()!, f.GetProperty("fieldId").GetInt64())).ToHashSet();
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
                while ((Fields(atWard).Count < Devices * FieldsEach || Fields(atCentre).Count < Devices * FieldsEach) && DateTime.UtcNow < deadline)
                    await Task.Delay(200);
                // De-duplicated by (sessionId, fieldId), as docs/mqtt.md tells subscribers to: every field of every device.
                var expected = devices.SelectMany(d => Enumerable.Range(1, FieldsEach).Select(i => (d.Counting.Snapshot().SessionId, (long)i))).ToHashSet();
                output.WriteLine($"ward broker: {atWard.Messages.Count} field messages, {Fields(atWard).Count} distinct; central: {atCentre.Messages.Count}, {Fields(atCentre).Count} distinct");
                Assert.Equal(expected.Order(), Fields(atWard).Order());
                Assert.Equal(expected.Order(), Fields(atCentre).Order());
                Assert.All(devices, d => Assert.Equal(0, d.Publisher.GetStats().DroppedResults));

                // The central service's ward page lists every microscope the ward broker carries, with its progress.
                var url = central.Services.GetRequiredService<WebEndpoints>().BoundUrls.Single();
                await using var browser = await Puppeteer.LaunchAsync(new LaunchOptions
                {
                    ExecutablePath = "/usr/bin/chromium", Headless = true, Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
                });
                await using var page = await browser.NewPageAsync();
                await page.GoToAsync(url + "/ward");
                await page.WaitForFunctionAsync($"() => document.querySelectorAll('#ward tr[data-device^=\"ward-scope-\"] .white').length === {Devices}" +
                    $" && [...document.querySelectorAll('#ward tr[data-device^=\"ward-scope-\"] .white')].every(c => c.textContent.startsWith('{2 * FieldsEach} /'))",
                    new WaitForFunctionOptions { Timeout = 60_000, PollingInterval = 250 });
            }
            finally
            {
                foreach (var d in devices) await d.DisposeAsync();
            }
            await central.StopAsync();
        }
        finally { Directory.Delete(state, recursive: true); }
    }
}
