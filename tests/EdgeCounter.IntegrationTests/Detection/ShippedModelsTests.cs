using System.Text.Json;
using EdgeCounter.Detection;
using EdgeCounter.Simulation;
using Microsoft.Extensions.Logging.Abstractions;
using OpenCvSharp;

namespace EdgeCounter.IntegrationTests.Detection;

/// <summary>
/// Every detector shipped in models/ (each sidecar with score thresholds: the default, its variants, the Faster R-CNN)
/// opens by its path alone, as <c>Detector:ModelPath</c> does it, runs as the family its sidecar names, and finds most
/// of the cells of simulated fields at the model's own scale at its operating thresholds. A graph exported with the
/// wrong pre-processing (colour order, range, padding) or decoded by the wrong adapter finds next to none.
/// </summary>
public class ShippedModelsTests
{
    /// <summary>The graph file of each sidecar in models/ that has score thresholds (a subtype stage's has none).</summary>
    private static List<string> ShippedDetectorFiles()
    {
        var files = new List<string>();
        foreach (var sidecar in Directory.GetFiles(Path.Combine(RealModel.RepositoryRoot ?? ".", "models"), "*.labels.json").Order(StringComparer.Ordinal))
        {
            using var json = JsonDocument.Parse(File.ReadAllText(sidecar));
            if (json.RootElement.TryGetProperty("scoreThresholds", out _))
                files.Add(Path.GetFileName(sidecar)[..^".labels.json".Length] + ".onnx");
        }
        return files;
    }

    public static TheoryData<string> ShippedDetectors() => new(ShippedDetectorFiles());

    [Fact]
    public void The_default_model_and_the_paper_architecture_are_among_them()
    {
        var files = ShippedDetectorFiles();
        Assert.Contains(ModelLocator.DefaultModelFile, files);
        Assert.Contains(files, n => n.StartsWith("fasterrcnn", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(ShippedDetectors))]
    public void A_shipped_detector_opens_by_its_path_alone_and_finds_the_cells_of_simulated_fields(string file)
    {
        var path = Path.Combine(RealModel.RepositoryRoot ?? ".", "models", file);
        var family = ModelLabels.Load(DetectorOptions.DefaultLabelsPath(path)).Family;
        using var detector = CellDetectorFactory.Open(new DetectorOptions
        {
            ModelPath = path, CameraMicrometresPerPixel = 0.1, ExecutionProvider = ExecutionProviderPreference.Cpu, IntraOpThreads = 2,
        }, NullLogger.Instance);
        Assert.Equal(family, detector.Family, ignoreCase: true);

        using var microscope = new SimulatedMicroscope(new MicroscopeOptions
        {
            Seed = 31, Width = 640, Height = 480, FramesPerSecond = 30, MicrometresPerPixel = 0.1,
            StopDuration = TimeSpan.FromSeconds(5), StopDurationJitter = TimeSpan.Zero, DefocusProbability = 0,
        });
        int red = 0, redFound = 0, white = 0, whiteFound = 0;
        for (var i = 0; i < 6; i++)
        {
            using var frame = microscope.RenderFrame(10 + 200 * i, out var truth);
            Assert.False(truth.Moving);
            var detections = detector.Detect(frame).Detections;
            bool Found(CellTruth cell, string cls) => detections.Any(d => d.Class == cls
                && d.Box.IoU(new BoxF(cell.Box.X, cell.Box.Y, cell.Box.X + cell.Box.Width, cell.Box.Y + cell.Box.Height)) >= 0.5f);
            foreach (var cell in truth.Cells.Where(c => !c.Truncated))
            {
                var label = VocAnnotation.Label(cell.Type, WbcLabelMode.Merged); // the held-out simulator set's labels
                if (label == "RBC") { red++; if (Found(cell, label)) redFound++; }
                else if (label == "WBC") { white++; if (Found(cell, label)) whiteFound++; }
            }
        }
        Assert.True(red >= 50 && white >= 3, $"the fields hold {red} whole red and {white} whole white cells: too few to judge");
        Assert.True(redFound >= 0.7 * red, $"{file}: {redFound} of {red} whole red cells found");
        Assert.True(whiteFound >= 0.5 * white, $"{file}: {whiteFound} of {white} whole white cells found");
    }
}
