using System.Diagnostics;
using System.Text.Json;
using EdgeCounter.Hosting;
using EdgeCounter.IntegrationTests.Publishing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenCvSharp;
using Xunit.Abstractions;

namespace EdgeCounter.IntegrationTests.Service;

/// <summary>
/// The whole service, as it runs on a kiosk: simulated microscope, the shipped model, a real broker, and an MQTT
/// subscriber watching the documented topics.
/// </summary>
[Collection("Service")]
public class ServiceEndToEndTests(ITestOutputHelper output)
{
    internal static string[] Args(int port, string stateDirectory, params string[] more) =>
    [
        $"--EdgeCounter:DeviceId=scope-test",
        $"--EdgeCounter:StateDirectory={stateDirectory}",
        $"--EdgeCounter:Mqtt:Port={port}",
        "--EdgeCounter:Mqtt:StatsInterval=00:00:01",
        "--EdgeCounter:Source:Simulator:FramesPerSecond=15",
        "--EdgeCounter:Source:Simulator:StopDuration=00:00:01",
        "--EdgeCounter:Source:Simulator:Seed=5",
        "--EdgeCounter:Detector:IntraOpThreads=1",
        .. more,
    ];

    private static JsonElement Json(Received m) => JsonDocument.Parse(m.Payload).RootElement;

    [Fact]
    public async Task Runs_on_embedded_defaults_and_publishes_fields_images_counts_and_answers_commands()
    {
        var port = FreePort.Next();
        var state = Directory.CreateTempSubdirectory("edgecounter-e2e-").FullName;
        try
        {
            using var host = ServiceHost.Build(Args(port, state));
            await host.StartAsync();
            await using var watcher = await RecordingSubscriber.ConnectAsync(port, "edgecounter/scope-test/#");
            const string p = "edgecounter/scope-test";

            await watcher.WaitForAsync(m => m.Topic == $"{p}/available" && m.Text == "online", what: "available=online");
            var fields = await watcher.WaitForCountAsync(m => m.Topic == $"{p}/field", 4, TimeSpan.FromSeconds(60), "field");
            var first = Json(fields[0]);
            var session = first.GetProperty("sessionId").GetString()!;
            Assert.Equal([1, 2, 3, 4], fields.Take(4).Select(f => Json(f).GetProperty("fieldId").GetInt64()));
            Assert.Equal(JsonValueKind.Array, first.GetProperty("detections").ValueKind);
            Assert.Equal("CPU", first.GetProperty("executionProvider").GetString());
            Assert.Equal(640, first.GetProperty("frameWidth").GetInt32());   // the simulator's default frame: the boxes' pixels
            Assert.Equal(480, first.GetProperty("frameHeight").GetInt32());
            Assert.Equal($"{p}/field/image", first.GetProperty("imageTopic").GetString());
            Assert.EndsWith("Z", first.GetProperty("capturedAt").GetString());

            var image = await watcher.WaitForAsync(m => m.Topic == $"{p}/field/image", what: "field image");
            Assert.True(image.Retain || image.Payload.Length > 0);
            using (var decoded = Cv2.ImDecode(image.Payload, ImreadModes.Color))
            {
                Assert.False(decoded.Empty(), "field/image is not a decodable JPEG");
                Assert.True(decoded.Width >= 320);
            }
            Assert.True(image.Payload.Length < 1024 * 1024);

            var stats = Json(await watcher.WaitForAsync(m => m.Topic == $"{p}/stats" && Json(m).GetProperty("executionProvider").GetString() == "CPU"
                && Json(m).GetProperty("sourceState").GetString() == "Streaming" && Json(m).GetProperty("processedFields").GetInt64() > 0, what: "stats"));
            // The memory figures split the process: the GC's committed memory is part of the working set, never all of it
            // (the native libraries and the model are mapped beside it).
            var gcCommitted = stats.GetProperty("gcCommittedMb").GetDouble();
            Assert.InRange(gcCommitted, 0.1, stats.GetProperty("workingSetMb").GetDouble() - 1);

            // A late subscriber sees the retained counts, and they add up to the fields published so far.
            await Task.Delay(500);
            await using (var late = await RecordingSubscriber.ConnectAsync(port, $"{p}/counts"))
            {
                var counts = Json(await late.WaitForAsync(m => m.Topic == $"{p}/counts" && m.Retain, what: "retained counts"));
                Assert.Equal(session, counts.GetProperty("sessionId").GetString());
                var upTo = counts.GetProperty("fields").GetInt64();
                var summed = new Dictionary<string, long>();
                foreach (var f in watcher.Messages.Where(m => m.Topic == $"{p}/field").Select(Json)
                             .Where(f => f.GetProperty("sessionId").GetString() == session && f.GetProperty("fieldId").GetInt64() <= upTo))
                    foreach (var c in f.GetProperty("counts").EnumerateObject())
                        summed[c.Name] = summed.GetValueOrDefault(c.Name) + c.Value.GetInt64();
                foreach (var total in counts.GetProperty("totals").EnumerateObject())
                    Assert.Equal(summed.GetValueOrDefault(total.Name), total.Value.GetInt64());
                // The default report groups each add up several labels: none repeats one label's total under another name.
                Assert.Equal(["WBC", "granulocyte"], counts.GetProperty("groups").EnumerateObject().Select(g => g.Name).ToArray());
            }

            // Session commands: a malformed one is refused and changes nothing; start opens a new session.
            await watcher.PublishAsync($"{p}/session/set", "{\"action\":\"launch\"}"u8.ToArray());
            var error = Json(await watcher.WaitForAsync(m => m.Topic == $"{p}/session/error", what: "session error"));
            Assert.False(string.IsNullOrEmpty(error.GetProperty("error").GetString()));
            await watcher.PublishAsync($"{p}/session/set", "{\"action\":\"start\",\"sampleId\":\"S-42\",\"target\":200}"u8.ToArray());
            var started = Json(await watcher.WaitForAsync(m => m.Topic == $"{p}/session/state" && m.Text.Contains("S-42"), what: "state echo"));
            Assert.NotEqual(session, started.GetProperty("sessionId").GetString());
            Assert.Equal(200, started.GetProperty("target").GetInt32());
            var newSession = started.GetProperty("sessionId").GetString();
            var next = Json(await watcher.WaitForAsync(m => m.Topic == $"{p}/field" && Json(m).GetProperty("sessionId").GetString() == newSession,
                TimeSpan.FromSeconds(30), "field of the new session"));
            Assert.Equal(1, next.GetProperty("fieldId").GetInt64());
            Assert.Equal("S-42", next.GetProperty("sampleId").GetString());

            await host.StopAsync();
            await watcher.WaitForAsync(m => m.Topic == $"{p}/available" && m.Text == "stopped", what: "available=stopped");
        }
        finally
        {
            Directory.Delete(state, true);
        }
    }

    [Fact]
    public async Task A_finalized_session_is_filed_as_a_pdf_that_p_report_names_and_that_names_the_sample()
    {
        var port = FreePort.Next();
        var state = Directory.CreateTempSubdirectory("edgecounter-pdf-").FullName;
        try
        {
            using var host = ServiceHost.Build(Args(port, state));
            await host.StartAsync();
            await using var watcher = await RecordingSubscriber.ConnectAsync(port, "edgecounter/scope-test/#");
            const string p = "edgecounter/scope-test";
            await watcher.WaitForAsync(m => m.Topic == $"{p}/available" && m.Text == "online", what: "available=online");

            await watcher.PublishAsync($"{p}/session/set", "{\"action\":\"start\",\"sampleId\":\"S-PDF-1\",\"target\":20}"u8.ToArray());
            var started = Json(await watcher.WaitForAsync(m => m.Topic == $"{p}/session/state" && m.Text.Contains("S-PDF-1"), what: "state echo"));
            var sessionId = started.GetProperty("sessionId").GetString()!;
            await watcher.WaitForAsync(m => m.Topic == $"{p}/field" && Json(m).GetProperty("sessionId").GetString() == sessionId,
                TimeSpan.FromSeconds(60), "a field of the session");
            await watcher.PublishAsync($"{p}/session/set", "{\"action\":\"finalize\",\"reviewer\":\"Dr B\"}"u8.ToArray());
            var report = Json(await watcher.WaitForAsync(m => m.Topic == $"{p}/report" && Json(m).GetProperty("sessionId").GetString() == sessionId,
                TimeSpan.FromSeconds(30), "report"));

            Assert.Equal(Path.Combine("reports", sessionId + ".pdf"), report.GetProperty("pdf").GetString());
            var pdf = Path.Combine(state, report.GetProperty("pdf").GetString()!);
            Assert.True(File.Exists(pdf), $"{pdf} was not written");
            var text = PdfText.Of(File.ReadAllBytes(pdf));
            Assert.Contains("Sample id S-PDF-1", text);
            Assert.Contains("Reviewer Dr B", text);
            await host.StopAsync();
        }
        finally
        {
            Directory.Delete(state, true);
        }
    }

    [Fact]
    public async Task Publishes_to_an_external_mosquitto_broker()
    {
        await using var mosquitto = await MosquittoBroker.StartAsync();
        var state = Directory.CreateTempSubdirectory("edgecounter-ext-").FullName;
        try
        {
            await using var watcher = await RecordingSubscriber.ConnectAsync(mosquitto.Port, "edgecounter/scope-test/#");
            using var host = ServiceHost.Build(Args(mosquitto.Port, state, "--EdgeCounter:Mqtt:Mode=External", "--EdgeCounter:Mqtt:Host=127.0.0.1"));
            await host.StartAsync();
            await watcher.WaitForAsync(m => m.Topic == "edgecounter/scope-test/available" && m.Text == "online", what: "available=online");
            var fields = await watcher.WaitForCountAsync(m => m.Topic == "edgecounter/scope-test/field", 2, TimeSpan.FromSeconds(60), "field");
            Assert.Equal([1, 2], fields.Take(2).Select(f => Json(f).GetProperty("fieldId").GetInt64()));
            await host.StopAsync();
            await watcher.WaitForAsync(m => m.Topic == "edgecounter/scope-test/available" && m.Text == "stopped", what: "available=stopped");
        }
        finally
        {
            Directory.Delete(state, true);
        }
    }

    [Fact]
    public async Task Counts_an_image_folder_once_per_image_and_reports_unreadable_files_in_stats()
    {
        var port = FreePort.Next();
        var state = Directory.CreateTempSubdirectory("edgecounter-folder-").FullName;
        var folder = Directory.CreateTempSubdirectory("edgecounter-images-").FullName;
        try
        {
            // Three simulated fields as a technician's saved images, plus two files that are not images.
            using (var fields = new EdgeCounter.Simulation.SyntheticFields(11, EdgeCounter.Simulation.SlideProfile.Blood, 640, 480))
                for (var i = 0; i < 3; i++)
                    using (var image = fields.Render(i, out _))
                        Cv2.ImWrite(Path.Combine(folder, $"field-{i}.png"), image);
            File.WriteAllText(Path.Combine(folder, "field-3.png"), "not an image");
            File.WriteAllBytes(Path.Combine(folder, "field-4.jpg"), []);

            using var host = ServiceHost.Build(Args(port, state, "--EdgeCounter:Source:Kind=Folder", $"--EdgeCounter:Source:Path={folder}",
                "--EdgeCounter:Source:FramesPerSecond=10", "--EdgeCounter:Source:FolderImageHold=00:00:01.5"));
            await host.StartAsync();
            await using var watcher = await RecordingSubscriber.ConnectAsync(port, "edgecounter/scope-test/#");
            const string p = "edgecounter/scope-test";

            await watcher.WaitForCountAsync(m => m.Topic == $"{p}/field", 3, TimeSpan.FromSeconds(60), "field");
            var stats = Json(await watcher.WaitForAsync(m => m.Topic == $"{p}/stats" && Json(m).GetProperty("sourceState").GetString() == "Ended",
                TimeSpan.FromSeconds(30), "stats after the folder ended"));
            Assert.Equal(2, stats.GetProperty("corruptFrames").GetInt64());
            var fieldIds = watcher.Messages.Where(m => m.Topic == $"{p}/field").Select(m => Json(m).GetProperty("fieldId").GetInt64()).Distinct();
            Assert.Equal([1, 2, 3], fieldIds.Order());
            await host.StopAsync();
        }
        finally
        {
            Directory.Delete(state, true);
            Directory.Delete(folder, true);
        }
    }

    [Fact]
    public async Task A_plain_mosquitto_sub_without_a_client_id_can_watch_the_embedded_broker()
    {
        const string MosquittoSub = "/usr/bin/mosquitto_sub";
        if (!File.Exists(MosquittoSub)) Assert.Fail("mosquitto_sub is missing: run `apt-get install -y mosquitto-clients` (CI's .ci/run does this).");
        var port = FreePort.Next();
        var state = Directory.CreateTempSubdirectory("edgecounter-sub-").FullName;
        try
        {
            using var host = ServiceHost.Build(Args(port, state));
            await host.StartAsync();
            // Exactly what the README tells a newcomer to run (plus the port), MQTT 3.1.1 with no client id.
            var start = new ProcessStartInfo(MosquittoSub) { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { "-p", port.ToString(), "-t", "edgecounter/#", "-v", "-C", "1", "-W", "20" }) start.ArgumentList.Add(a);
            using var sub = Process.Start(start)!;
            var line = await sub.StandardOutput.ReadLineAsync();
            var stderr = await sub.StandardError.ReadToEndAsync();
            await sub.WaitForExitAsync();
            Assert.True(sub.ExitCode == 0, $"mosquitto_sub failed: {stderr}");
            Assert.StartsWith("edgecounter/scope-test/", line);
            await host.StopAsync();
        }
        finally
        {
            Directory.Delete(state, true);
        }
    }

    [Fact]
    public void Mqtt_DeviceId_alone_names_the_device_and_a_contradicting_one_stops_the_start()
    {
        static IConfiguration Config(params string[] pairs) =>
            new ConfigurationBuilder()
                .AddInMemoryCollection(pairs.Select(p => p.Split('=')).Select(kv => new KeyValuePair<string, string?>(kv[0], kv[1]))).Build();

        var alone = ServiceHost.BindAndValidate(Config("EdgeCounter:Mqtt:DeviceId=scope-7"));
        Assert.Equal("scope-7", alone.EffectiveDeviceId);
        Assert.Equal("edgecounter/scope-7", alone.Mqtt.EffectiveTopicPrefix);
        Assert.Equal("scope-7", ServiceHost.BindAndValidate(Config("EdgeCounter:DeviceId=scope-7", "EdgeCounter:Mqtt:DeviceId=scope-7")).Mqtt.DeviceId);

        var both = Assert.Throws<ConfigurationProblemException>(() =>
            ServiceHost.BindAndValidate(Config("EdgeCounter:DeviceId=scope-7", "EdgeCounter:Mqtt:DeviceId=scope-8")));
        Assert.Contains(both.Problems, p => p.Contains("EdgeCounter:Mqtt:DeviceId") && p.Contains("scope-8") && p.Contains("scope-7"));
    }

    [Fact]
    public void A_setting_given_without_the_EdgeCounter_prefix_stops_the_start_and_shows_the_spelling_that_works()
    {
        static IConfiguration Config(params string[] pairs) =>
            new ConfigurationBuilder()
                .AddInMemoryCollection(pairs.Select(p => p.Split('=')).Select(kv => new KeyValuePair<string, string?>(kv[0], kv[1]))).Build();

        var e = Assert.Throws<ConfigurationProblemException>(() =>
            ServiceHost.BindAndValidate(Config("Detector:ModelPath=models/cellnet-3scale.onnx", "deviceid=scope-7", "PATH=/usr/bin", "SOURCE=/home/x")));
        Assert.Equal(2, e.Problems.Count); // PATH, or a SOURCE variable with no section below it, is not ours
        Assert.Contains(e.Problems, p => p.StartsWith("Detector:ModelPath is outside") && p.Contains("--EdgeCounter:Detector:ModelPath=") && p.Contains("EdgeCounter__Detector__ModelPath="));
        Assert.Contains(e.Problems, p => p.StartsWith("deviceid is outside") && p.Contains("EdgeCounter:deviceid"));
        // Prefixed, the same settings are read.
        Assert.Equal("scope-7", ServiceHost.BindAndValidate(Config("EdgeCounter:DeviceId=scope-7", "PATH=/usr/bin")).EffectiveDeviceId);
    }

    [Fact]
    public async Task A_bad_configuration_stops_the_start_with_a_message_naming_the_key()
    {
        var state = Directory.CreateTempSubdirectory("edgecounter-badcfg-").FullName;
        try
        {
            var e = Assert.Throws<ConfigurationProblemException>(() => ServiceHost.Build(Args(FreePort.Next(), state,
                "--EdgeCounter:Mqtt:Port=70000", "--EdgeCounter:Source:Kind=Video", "--EdgeCounter:Source:Path=/nonexistent.mp4")));
            Assert.Contains(e.Problems, p => p.Contains("EdgeCounter:Mqtt:Port"));
            Assert.Contains(e.Problems, p => p.Contains("EdgeCounter:Source:Path"));

            var unknownKind = Assert.Throws<ConfigurationProblemException>(() => ServiceHost.Build(Args(FreePort.Next(), state, "--EdgeCounter:Source:Kind=Webcam")));
            Assert.Contains(unknownKind.Problems, p => p.Contains("Kind") && p.Contains("Webcam"));

            var reserve = Assert.Throws<ConfigurationProblemException>(() => ServiceHost.Build(Args(FreePort.Next(), state, "--EdgeCounter:StateDiskReserveBytes=-1")));
            Assert.Contains(reserve.Problems, p => p.Contains("EdgeCounter:StateDiskReserveBytes"));

            var threshold = Assert.Throws<ConfigurationProblemException>(() => ServiceHost.Build(Args(FreePort.Next(), state, "--EdgeCounter:Detector:ScoreThreshold=1.5")));
            Assert.Contains(threshold.Problems, p => p.Contains("Detector:ScoreThreshold") && p.Contains("1.5"));

            var typo = Assert.Throws<ConfigurationProblemException>(() => ServiceHost.Build(Args(FreePort.Next(), state, "--EdgeCounter:Mqtt:Prot=1884")));
            Assert.Contains(typo.Problems, p => p.Contains("Prot"));

            var model = Assert.Throws<ConfigurationProblemException>(() => ServiceHost.Build(Args(FreePort.Next(), state, "--EdgeCounter:Detector:ModelPath=/nonexistent/model.onnx")));
            Assert.Contains(model.Problems, p => p.Contains("EdgeCounter:Detector:ModelPath") && p.Contains("/nonexistent/model.onnx"));

            // A file that is not a model at all.
            var junk = Path.Combine(state, "junk.onnx");
            await File.WriteAllTextAsync(junk, "not a model");
            var wrong = Assert.Throws<ConfigurationProblemException>(() => ServiceHost.Build(Args(FreePort.Next(), state, $"--EdgeCounter:Detector:ModelPath={junk}")));
            Assert.Contains(wrong.Problems, p => p.Contains("EdgeCounter:Detector:ModelPath"));
        }
        finally
        {
            Directory.Delete(state, true);
        }
    }

    [Fact]
    public async Task The_executable_exits_with_code_2_and_names_the_key_on_an_invalid_configuration()
    {
        var (exitCode, stderr, _) = await RunProgramAsync(AppContext.BaseDirectory, ["--EdgeCounter:Mqtt:Port=0"]);
        Assert.Equal(ServiceHost.ConfigurationError, exitCode);
        Assert.Contains("EdgeCounter:Mqtt:Port", stderr);
    }

    [Fact]
    public async Task A_model_of_another_family_than_its_sidecar_says_stops_the_start_with_code_2_and_count_runs_a_yolo_graph_by_its_path()
    {
        var fixture = Path.Combine(EdgeCounter.IntegrationTests.Detection.RealModel.RepositoryRoot ?? ".", "tests", "fixtures", "families", "yolo");
        var dir = Directory.CreateTempSubdirectory("edgecounter-family-").FullName;
        try
        {
            // A YOLO graph whose sidecar says it is one of ours.
            File.Copy(Path.Combine(fixture, "model.onnx"), Path.Combine(dir, "model.onnx"));
            await File.WriteAllTextAsync(Path.Combine(dir, "model.labels.json"),
                (await File.ReadAllTextAsync(Path.Combine(fixture, "model.labels.json"))).Replace("\"family\": \"yolo\"", "\"family\": \"centernet\""));
            var (exitCode, stderr, _) = await RunProgramAsync(AppContext.BaseDirectory,
                [$"--EdgeCounter:Detector:ModelPath={Path.Combine(dir, "model.onnx")}", $"--EdgeCounter:StateDirectory={dir}", $"--EdgeCounter:Mqtt:Port={FreePort.Next()}"]);
            Assert.Equal(ServiceHost.ConfigurationError, exitCode);
            Assert.Contains("does not fit the contract of the 'centernet' family", stderr);
            Assert.Contains("output 'heatmap' is missing", stderr);

            // The same graph with its own sidecar: the family comes from the sidecar, nothing else is needed.
            var (countExit, countErr, table) = await RunProgramAsync(AppContext.BaseDirectory,
                ["count", Path.Combine(fixture, "input.png"), "--model", Path.Combine(fixture, "model.onnx"), "--provider", "cpu", "--threads", "1"]);
            Assert.True(countExit == 0, countErr);
            Assert.Contains("input.png", table);
            Assert.Contains("RBC", table);
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>Runs the built EdgeCounter.dll in <paramref name="directory"/> to its end; returns its exit code and stderr.</summary>
    private async Task<(int ExitCode, string Stderr, string Stdout)> RunProgramAsync(string directory, IEnumerable<string> args, string? libraryPath = null)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        start.ArgumentList.Add(Path.Combine(directory, "EdgeCounter.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        if (libraryPath is not null) start.Environment["LD_LIBRARY_PATH"] = libraryPath;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(); // drained too, so a chatty child cannot block on a full pipe
        var stderr = await process.StandardError.ReadToEndAsync();
        await stdout;
        await process.WaitForExitAsync();
        output.WriteLine(stderr);
        return (process.ExitCode, stderr, await stdout);
    }

    [Fact]
    public async Task Without_OpenCVs_native_library_it_says_what_to_install_and_exits_with_code_2()
    {
        // The built program without its native libraries (runtimes/): a kiosk where OpenCV's native half is missing.
        var copy = Directory.CreateTempSubdirectory("edgecounter-no-native-").FullName;
        try
        {
            foreach (var file in Directory.EnumerateFiles(AppContext.BaseDirectory, "*", SearchOption.AllDirectories))
            {
                var relative = Path.GetRelativePath(AppContext.BaseDirectory, file);
                if (relative.StartsWith("runtimes" + Path.DirectorySeparatorChar, StringComparison.Ordinal)) continue;
                Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(copy, relative))!);
                File.Copy(file, Path.Combine(copy, relative));
            }
            foreach (var args in new[] { Array.Empty<string>(), ["count", "x.jpg"] })
            {
                var (exitCode, stderr, _) = await RunProgramAsync(copy, args, libraryPath: copy); // nothing to find there
                Assert.Equal(ServiceHost.ConfigurationError, exitCode);
                Assert.Contains("OpenCV's native library could not be loaded", stderr);
                Assert.Contains(OperatingSystem.IsWindows() ? "OpenCvSharp4.runtime.win" : "libgtk-3-0", stderr);
            }
        }
        finally
        {
            Directory.Delete(copy, true);
        }
    }
}
