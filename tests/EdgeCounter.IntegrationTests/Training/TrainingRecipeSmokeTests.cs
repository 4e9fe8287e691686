using System.Diagnostics;
using EdgeCounter.Detection;
using Xunit.Abstractions;

namespace EdgeCounter.IntegrationTests.Training;

/// <summary>The training recipe still trains and exports: a few steps on toy fields, loss down, ONNX checked.</summary>
public class TrainingRecipeSmokeTests(ITestOutputHelper output)
{
    [Fact]
    public async Task The_recipe_trains_a_few_steps_and_exports_a_checked_onnx_model()
    {
        const string Python = "/usr/bin/python3"; // Debian's python, which sees python3-torch
        var root = ModelLocator.FindRepositoryRoot(AppContext.BaseDirectory) ?? throw new InvalidOperationException("repository root not found");
        var script = Path.Combine(root, "models", "training", "smoke_test.py");
        var start = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = root };
        start.ArgumentList.Add(script);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await process.WaitForExitAsync(timeout.Token);
        output.WriteLine(await stdout);
        var errors = await stderr;
        if (errors.Contains("No module named 'torch'"))
            Assert.Fail("python3-torch is missing: run `apt-get install -y python3-torch python3-torchvision python3-onnx python3-opencv` (CI's .ci/run does this)");
        Assert.True(process.ExitCode == 0, $"smoke test failed ({process.ExitCode}):\n{errors}");
        Assert.Contains("smoke test passed", await stdout + errors);
    }

    [Fact]
    public async Task The_faster_rcnn_recipe_trains_a_few_steps_and_its_export_runs_in_the_detector()
    {
        const string Python = "/usr/bin/python3";
        var root = ModelLocator.FindRepositoryRoot(AppContext.BaseDirectory) ?? throw new InvalidOperationException("repository root not found");
        var dir = Directory.CreateTempSubdirectory("edgecounter-frcnn-").FullName;
        try
        {
            var model = Path.Combine(dir, "fasterrcnn-smoke.onnx");
            var start = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = root };
            foreach (var a in new[] { Path.Combine(root, "models", "training", "fasterrcnn.py"), "--smoke", "--out", model }) start.ArgumentList.Add(a);
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
            await process.WaitForExitAsync(timeout.Token);
            output.WriteLine(await stdout);
            var errors = await stderr;
            Assert.True(process.ExitCode == 0, $"fasterrcnn.py --smoke failed ({process.ExitCode}):\n{errors}");

            // The exported graph, by its path alone: the sidecar says fasterrcnn, the adapter checks and runs it.
            using var detector = CellDetectorFactory.Open(new DetectorOptions
            {
                ModelPath = model, ExecutionProvider = ExecutionProviderPreference.Cpu, IntraOpThreads = 2, InputScale = 1, EvaluationScoreFloor = 0,
            }, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
            Assert.Equal("fasterrcnn", detector.Family);
            Assert.Equal([0.7f, 0.7f, 0.7f], detector.OperatingThresholds);
            using var frame = OpenCvSharp.Cv2.ImRead(Path.Combine(root, "tests", "fixtures", "families", "fasterrcnn", "input.png"));
            var result = detector.Detect(frame);
            Assert.All(result.Detections, d => Assert.InRange(d.Box.X2, 0, frame.Cols));
            Assert.True(result.InferenceMs > 0);
        }
        finally { Directory.Delete(dir, true); }
    }
}
