using System.Text.Json;
using EdgeCounter.Hosting;
using EdgeCounter.IntegrationTests.Publishing;
using OpenCvSharp;

namespace EdgeCounter.IntegrationTests.Service;

/// <summary>The service with a camera of unknown pixel size: it estimates the scale from the red cells and says so in P/stats.</summary>
[Collection("Service")]
public class AutoScaleServiceTests
{
    private static JsonElement Json(Received m) => JsonDocument.Parse(m.Payload).RootElement;

    [Fact]
    public async Task Without_a_configured_scale_the_service_estimates_it_and_publishes_it_in_stats()
    {
        var port = FreePort.Next();
        var state = Directory.CreateTempSubdirectory("edgecounter-autoscale-").FullName;
        var folder = Directory.CreateTempSubdirectory("edgecounter-autoscale-images-").FullName;
        try
        {
            // A technician's saved fields from a 50x objective (0.2 µm/px); nothing tells the service that.
            using (var fields = new EdgeCounter.Simulation.SyntheticFields(12, EdgeCounter.Simulation.SlideProfile.Blood, 640, 480, 0.2))
                for (var i = 0; i < 2; i++)
                    using (var image = fields.Render(i, out _))
                        Cv2.ImWrite(Path.Combine(folder, $"field-{i}.png"), image);

            using var host = ServiceHost.Build(ServiceEndToEndTests.Args(port, state, "--EdgeCounter:Source:Kind=Folder", $"--EdgeCounter:Source:Path={folder}",
                "--EdgeCounter:Source:FramesPerSecond=10", "--EdgeCounter:Source:FolderImageHold=00:00:01.5"));
            await host.StartAsync();
            await using var watcher = await RecordingSubscriber.ConnectAsync(port, "edgecounter/scope-test/#");
            const string p = "edgecounter/scope-test";
            var stats = Json(await watcher.WaitForAsync(m => m.Topic == $"{p}/stats" && Json(m).GetProperty("pixelScale").ValueKind == JsonValueKind.Object
                    && Json(m).GetProperty("pixelScale").GetProperty("source").GetString() == "estimated",
                TimeSpan.FromSeconds(60), "stats with an estimated pixel scale"));
            var scale = stats.GetProperty("pixelScale");
            Assert.InRange(scale.GetProperty("micrometresPerPixel").GetDouble(), 0.19, 0.21);
            Assert.InRange(scale.GetProperty("inputScale").GetDouble(), 1.9, 2.1);
            Assert.True(scale.GetProperty("redCells").GetInt32() >= 40);
            await host.StopAsync();
        }
        finally
        {
            Directory.Delete(state, true);
            Directory.Delete(folder, true);
        }
    }

    [Fact]
    public async Task A_configured_scale_is_used_as_it_is()
    {
        var port = FreePort.Next();
        var state = Directory.CreateTempSubdirectory("edgecounter-fixedscale-").FullName;
        try
        {
            using var host = ServiceHost.Build(ServiceEndToEndTests.Args(port, state, "--EdgeCounter:Source:Simulator:MicrometresPerPixel=0.15"));
            await host.StartAsync();
            await using var watcher = await RecordingSubscriber.ConnectAsync(port, "edgecounter/scope-test/#");
            var stats = Json(await watcher.WaitForAsync(m => m.Topic == "edgecounter/scope-test/stats", TimeSpan.FromSeconds(30), "stats"));
            var scale = stats.GetProperty("pixelScale");
            Assert.Equal("configured", scale.GetProperty("source").GetString());   // the simulator says its pixel size
            Assert.Equal(1.5, scale.GetProperty("inputScale").GetDouble(), 6);
            Assert.Equal(0.15, scale.GetProperty("micrometresPerPixel").GetDouble(), 6);
            await host.StopAsync();
        }
        finally
        {
            Directory.Delete(state, true);
        }
    }
}
