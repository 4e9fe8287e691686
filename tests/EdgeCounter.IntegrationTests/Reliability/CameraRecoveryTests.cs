using System.Text.Json;
using EdgeCounter.Hosting;
using EdgeCounter.IntegrationTests.Publishing;
using EdgeCounter.IntegrationTests.Service;
using EdgeCounter.Simulation;
using Microsoft.Extensions.Hosting;
using OpenCvSharp;

namespace EdgeCounter.IntegrationTests.Reliability;

/// <summary>
/// A camera that is not there at start, appears, streams, and drops out again. No camera exists on a CI machine, so the
/// "camera" is a stream URL-like path that the real camera source opens through FFmpeg: a video recorded from the
/// simulated microscope, which appears only after the service has started.
/// </summary>
[Collection("Service")]
public class CameraRecoveryTests
{
    private static JsonElement Json(Received m) => JsonDocument.Parse(m.Payload).RootElement;

    private static void RecordSimulatedVideo(string path, int seconds)
    {
        using var microscope = new SimulatedMicroscope(new MicroscopeOptions { Seed = 21, FramesPerSecond = 15, StopDuration = TimeSpan.FromSeconds(1) });
        using var writer = new VideoWriter(path, FourCC.MJPG, 15, new Size(640, 480));
        Assert.True(writer.IsOpened(), "OpenCV could not write an MJPG video");
        for (long i = 0; i < seconds * 15; i++)
        {
            using var frame = microscope.RenderFrame(i, out _);
            writer.Write(frame);
        }
    }

    [Fact]
    public async Task A_camera_that_is_missing_then_appears_then_drops_out_is_reopened_and_counting_resumes()
    {
        var port = FreePort.Next();
        var state = Directory.CreateTempSubdirectory("edgecounter-camera-").FullName;
        var stream = Path.Combine(state, "camera-stream.avi");
        const string p = "edgecounter/scope-test";
        try
        {
            using var host = ServiceHost.Build(ServiceEndToEndTests.Args(port, state,
                "--EdgeCounter:Source:Kind=Camera", $"--EdgeCounter:Source:Path={stream}",
                "--EdgeCounter:Source:ReopenDelay=00:00:00.2", "--EdgeCounter:Source:MaxReopenDelay=00:00:00.5",
                // The recorded stream is read faster than real time, so take fields as soon as they are still.
                "--EdgeCounter:Fields:Debounce=00:00:00"));
            await host.StartAsync();
            await using var watcher = await RecordingSubscriber.ConnectAsync(port, $"{p}/#");

            var missing = Json(await watcher.WaitForAsync(m => m.Topic == $"{p}/stats" && Json(m).GetProperty("sourceState").GetString() == "Reconnecting",
                TimeSpan.FromSeconds(20), "stats while the camera is missing"));
            Assert.Contains("could not be opened", missing.GetProperty("sourceError").GetString());
            await watcher.WaitForAsync(m => m.Topic == $"{p}/available" && m.Text == "online", what: "available while the camera is missing");

            var recording = Path.Combine(state, "recording.avi");
            RecordSimulatedVideo(recording, seconds: 8);
            File.Move(recording, stream); // the camera appears

            await watcher.WaitForCountAsync(m => m.Topic == $"{p}/field", 2, TimeSpan.FromSeconds(60), "fields once the camera is there");
            // The stream ends (the camera drops out): the source reconnects and the service stays up.
            await watcher.WaitForAsync(m => m.Topic == $"{p}/stats" && Json(m).GetProperty("sourceState").GetString() == "Reconnecting"
                && Json(m).GetProperty("processedFields").GetInt64() >= 2, TimeSpan.FromSeconds(60), "stats after the camera dropped out");
            Assert.DoesNotContain(watcher.Messages, m => m.Topic == $"{p}/available" && m.Text != "online");
            await host.StopAsync();
        }
        finally
        {
            Directory.Delete(state, true);
        }
    }
}
