using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using EdgeCounter.Acquisition;
using EdgeCounter.Counting;
using EdgeCounter.Hosting;
using EdgeCounter.Simulation;
using Microsoft.Extensions.Options;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace EdgeCounter.Commands.Bench;

/// <summary>
/// The real service host in-process (simulated microscope in real time, the model, the embedded broker) with an MQTT
/// subscriber on the <c>field</c> topic. For each published field: message arrival (wall clock) minus the moment the
/// simulated stage stopped at that field (in focus) minus the configured debounce.
/// </summary>
public static class EndToEndBench
{
    public const string DeviceId = "bench";

    private sealed record Handled(int StopIndex, DateTimeOffset CapturedAt, DateTimeOffset StageStill, bool ArrivedSharp, double DetectMs);

    private sealed record Arrived(long FieldId, DateTimeOffset At);

    /// <param name="overrides">Command-line style service settings (--EdgeCounter:Key=Value) applied after the bench's own.</param>
    public static async Task RunAsync(BenchReport report, IReadOnlyList<string> overrides, TimeSpan duration, CancellationToken cancellationToken)
    {
        var state = Directory.CreateTempSubdirectory("edgecounter-bench-").FullName;
        var port = FreePort();
        string[] args =
        [
            $"--EdgeCounter:DeviceId={DeviceId}",
            $"--EdgeCounter:StateDirectory={state}",
            "--EdgeCounter:Mqtt:Mode=Embedded",
            $"--EdgeCounter:Mqtt:Port={port}",
            "--EdgeCounter:Source:Kind=Simulated",
            "--EdgeCounter:Source:RealTime=true",
            // A 30 fps camera; short stops so a short run sees several fields; no revisits (they are not published).
            "--EdgeCounter:Source:Simulator:FramesPerSecond=30",
            "--EdgeCounter:Source:Simulator:StopDuration=00:00:01",
            "--EdgeCounter:Source:Simulator:RevisitProbability=0",
            "--EdgeCounter:Source:Simulator:Seed=11",
            $"--EdgeCounter:Counting:DefaultTarget={Counting.CountingOptions.MaxTarget}",
            "--EdgeCounter:ConsoleFieldLines=false",
            "--EdgeCounter:Web:Enabled=false", // an offline run: no HTTP port taken
            .. overrides,
        ];
        try
        {
            using var host = ServiceHost.Build(args, builder => builder.Logging.SetMinimumLevel(Environment.GetEnvironmentVariable("BENCH_DEBUG") is null ? LogLevel.Warning : LogLevel.Information));
            var settings = host.Services.GetRequiredService<IOptions<EdgeCounterOptions>>().Value;
            var debounce = settings.Fields.Debounce;
            var source = host.Services.GetRequiredService<IFrameSource>() as SimulatedFrameSource
                ?? throw new InvalidOperationException("the end-to-end bench needs the simulated source");
            var handled = new ConcurrentDictionary<long, Handled>();
            host.Services.GetRequiredService<CountingWorker>().FieldHandled += outcome =>
            {
                // Published fields only (revisits are skipped before detection); truth says which stop the frame shows.
                if (outcome.Fate != FieldFate.Counted || outcome.Detection is null || outcome.Count?.Tally is not { } tally || source.Microscope is not { } microscope || source.TruthOf(outcome.Field.FrameIndex) is not { StopIndex: >= 0 } truth) return;
                StopInfo stop;
                // The stage script grows on the capture thread; this stop is long generated, but an observer must never
                // take the worker down with it.
                try { stop = microscope.GetStop(truth.StopIndex); }
                catch (Exception) { return; }
                // Frames are stamped run start + frame time, so the run start on the wall clock is capturedAt - truth time.
                var runStart = outcome.Field.CapturedAt - truth.Time;
                var still = stop.SharpFrom > stop.Arrive ? stop.SharpFrom : stop.Arrive;
                handled[tally.FieldId] = new Handled(truth.StopIndex, outcome.Field.CapturedAt, runStart + still, stop.InitialDefocusSigma == 0, outcome.Detection.TotalMs);
            };

            var arrivals = new ConcurrentQueue<Arrived>();
            using var client = new MqttClientFactory().CreateMqttClient();
            client.ApplicationMessageReceivedAsync += e =>
            {
                var at = DateTimeOffset.UtcNow;
                using var json = JsonDocument.Parse(e.ApplicationMessage.Payload);
                arrivals.Enqueue(new Arrived(json.RootElement.GetProperty("fieldId").GetInt64(), at));
                return Task.CompletedTask;
            };

            var clock = Stopwatch.StartNew();
            await host.StartAsync(cancellationToken);
            await client.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", port).WithClientId("bench-subscriber-" + Guid.NewGuid().ToString("N")[..8])
                .WithProtocolVersion(MqttProtocolVersion.V500).WithTimeout(TimeSpan.FromSeconds(10)).Build(), cancellationToken);
            await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
                .WithTopicFilter(f => f.WithTopic($"edgecounter/{DeviceId}/field").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)).Build(),
                cancellationToken);

            // Run for the duration, and at least until two fields arrived (the first stop starts cold and is not scored),
            // but never longer than the duration plus a generous margin.
            var rss = new List<double>();
            var limit = duration + TimeSpan.FromSeconds(20);
            while (clock.Elapsed < limit && (clock.Elapsed < duration || arrivals.Count < 3))
            {
                await Task.Delay(200, cancellationToken);
                if (!arrivals.IsEmpty) rss.Add(ResidentMegabytes());
            }
            await client.DisconnectAsync(cancellationToken: cancellationToken);
            var monitor = host.Services.GetRequiredService<PipelineMonitor>();
            var frames = monitor.Frames;
            var taken = monitor.FieldsTaken;
            var dropped = monitor.DroppedFields;
            var cameraFps = monitor.CameraFps;
            await host.StopAsync(CancellationToken.None);

            var latencies = new List<double>();
            var latenciesAll = new List<double>();
            var captureToPublish = new List<double>();
            var stopToTake = new List<double>();
            var detect = new List<double>();
            foreach (var arrival in arrivals)
            {
                if (!handled.TryGetValue(arrival.FieldId, out var h) || h.StopIndex == 0) continue;
                var latency = (arrival.At - h.StageStill - debounce).TotalMilliseconds;
                latenciesAll.Add(latency);
                if (h.ArrivedSharp) latencies.Add(latency);
                captureToPublish.Add((arrival.At - h.CapturedAt).TotalMilliseconds);
                stopToTake.Add((h.CapturedAt - h.StageStill - debounce).TotalMilliseconds);
                detect.Add(h.DetectMs);
            }
            var sharp = new Samples(latencies);
            var all = new Samples(latenciesAll);
            const string group = "End to end (service host, simulator 640x480 @ 30 fps real time, embedded broker)";
            report.Add(group, "stop to field message, minus debounce", "stop_to_publish_ms", sharp.Count > 0 ? sharp.Median : all.Median, "ms",
                $"median over {(sharp.Count > 0 ? sharp.Count : all.Count)} fields{(sharp.Count > 0 ? " (stops that arrive in focus)" : "")}, p95 {(sharp.Count > 0 ? sharp : all).P95:0}, debounce {debounce.TotalMilliseconds:0} ms");
            report.Add(group, "same, all stops (clock from focus settled)", "stop_to_publish_ms_all_stops", all.Median, "ms", $"n={all.Count}");
            report.Add(group, "  of which: stop to taken frame, minus debounce", "stop_to_take_ms", new Samples(stopToTake).Median, "ms",
                "camera frame period and the field stage (motion needs one still frame pair)");
            report.Add(group, "  of which: frame captured to field message", "capture_to_publish_ms", new Samples(captureToPublish).Median, "ms", "detection + count + publish + broker");
            report.Add(group, "detector inside the service", "service_detect_ms", new Samples(detect).Median, "ms");
            report.Add(group, "fields published", "service_fields", arrivals.Count, "fields", $"{taken} taken, {dropped} replaced by a newer one; the first stop (cold start) is not scored");
            report.Add(group, "camera frames delivered", "service_camera_fps", cameraFps, "fps", $"{frames} frames in {clock.Elapsed.TotalSeconds:0.0} s");
            report.Add(group, "process RSS, steady state (max)", "rss_mb", rss.Count > 0 ? rss.Max() : ResidentMegabytes(), "MB", $"median {new Samples(rss).Median:0} MB over {rss.Count} samples");
        }
        finally
        {
            try { Directory.Delete(state, true); } catch (IOException) { }
        }
    }

    public static double ResidentMegabytes()
    {
        using var process = Process.GetCurrentProcess();
        return process.WorkingSet64 / (1024.0 * 1024.0);
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try { return ((IPEndPoint)listener.LocalEndpoint).Port; }
        finally { listener.Stop(); }
    }
}
