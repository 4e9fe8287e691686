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
        var (stdout, errors) = await RunRecipeAsync("smoke_test.py");
        Assert.Contains("smoke test passed", stdout + errors);
    }

    private static readonly string Root = ModelLocator.FindRepositoryRoot(AppContext.BaseDirectory) ?? throw new InvalidOperationException("repository root not found");

    /// <summary>Runs models/training/SCRIPT with Debian's python (which sees python3-torch); fails the test on a non-zero exit.</summary>
    private async Task<(string Stdout, string Stderr)> RunRecipeAsync(string script, params string[] args)
    {
        var start = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Root };
        start.ArgumentList.Add(Path.Combine(Root, "models", "training", script));
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await process.WaitForExitAsync(timeout.Token);
        output.WriteLine(await stdout);
        var errors = await stderr;
        if (errors.Contains("No module named 'torch'"))
            Assert.Fail("python3-torch is missing: run `apt-get install -y python3-torch python3-torchvision python3-onnx python3-opencv` (CI's .ci/run does this)");
        Assert.True(process.ExitCode == 0, $"{script} {string.Join(" ", args)} failed ({process.ExitCode}):\n{errors}");
        return (await stdout, errors);
    }

    // Both trunks: torchvision's ResNet (the paper's ResNet-50 on a GPU) and the narrow one trained on the CPU.
    [Theory]
    [InlineData(null, "fasterrcnn-fpn-resnet18")]
    [InlineData(16, "fasterrcnn-fpn-resnet18-w16")]
    public async Task The_faster_rcnn_recipe_trains_a_few_steps_and_its_export_runs_in_the_detector(int? width, string name)
    {
        var dir = Directory.CreateTempSubdirectory("edgecounter-frcnn-").FullName;
        try
        {
            var model = Path.Combine(dir, "fasterrcnn-smoke.onnx");
            await RunRecipeAsync("fasterrcnn.py", width is { } w ? ["--smoke", "--width", $"{w}", "--out", model] : ["--smoke", "--out", model]);
            using (var sidecar = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.ChangeExtension(model, ".labels.json"))))
                Assert.Equal(name, sidecar.RootElement.GetProperty("name").GetString());

            // The exported graph, by its path alone: the sidecar says fasterrcnn, the adapter checks and runs it.
            using var detector = CellDetectorFactory.Open(new DetectorOptions
            {
                ModelPath = model, ExecutionProvider = ExecutionProviderPreference.Cpu, IntraOpThreads = 2, InputScale = 1, EvaluationScoreFloor = 0,
            }, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
            Assert.Equal("fasterrcnn", detector.Family);
            Assert.Equal([0.7f, 0.7f, 0.7f], detector.OperatingThresholds);
            using var frame = OpenCvSharp.Cv2.ImRead(Path.Combine(Root, "tests", "fixtures", "families", "fasterrcnn", "input.png"));
            var result = detector.Detect(frame);
            Assert.All(result.Detections, d => Assert.InRange(d.Box.X2, 0, frame.Cols));
            Assert.True(result.InferenceMs > 0);
        }
        finally { Directory.Delete(dir, true); }
    }
}
