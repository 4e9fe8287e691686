using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeCounter.Detection;
using Microsoft.Extensions.Logging.Abstractions;
using OpenCvSharp;

namespace EdgeCounter.IntegrationTests.Detection;

/// <summary>
/// Each model family's adapter on a real ONNX graph of its layout (tests/fixtures/families, written with PyTorch's own
/// detections by models/training/families.py): the whole detector (geometry, pixel convention, the family's decode,
/// shared NMS, boxes back in frame pixels) must give PyTorch's detections. And a graph that is not of its sidecar's
/// family stops the load with a message naming the mismatch.
/// </summary>
public class FamilyAdapterTests
{
    private const float ScoreTolerance = 1e-4f;
    private const float BoxTolerancePx = 0.05f;

    private static string FixtureDirectory(string family) => Path.Combine(RealModel.RepositoryRoot ?? ".", "tests", "fixtures", "families", family);

    private static DetectorOptions OptionsFor(string family, string? labelsPath = null) => new()
    {
        ModelPath = Path.Combine(FixtureDirectory(family), "model.onnx"),
        LabelsPath = labelsPath,
        ExecutionProvider = ExecutionProviderPreference.Cpu,
        IntraOpThreads = 1,
        InputScale = 1,
    };

    private sealed record Expected(string Class, float Score, BoxF Box);

    private static (List<Expected> Detections, float[] Thresholds) Reference(string family)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(FixtureDirectory(family), "reference.json")));
        var detections = doc.RootElement.GetProperty("detections").EnumerateArray().Select(d =>
        {
            var b = d.GetProperty("box").EnumerateArray().Select(v => v.GetSingle()).ToArray();
            return new Expected(d.GetProperty("class").GetString()!, d.GetProperty("score").GetSingle(), new BoxF(b[0], b[1], b[2], b[3]));
        }).ToList();
        var labels = ModelLabels.Load(Path.Combine(FixtureDirectory(family), "model.labels.json"));
        return (detections, labels.ScoreThresholds.ToArray());
    }

    [Theory]
    [InlineData(YoloFamily.FamilyName)]
    [InlineData(FasterRcnnFamily.FamilyName)]
    public void DetectionsMatchPyTorch(string family)
    {
        var (expected, thresholds) = Reference(family);
        Assert.True(expected.Count >= 20, $"the fixture should hold enough detections to mean something, has {expected.Count}");
        using var detector = CellDetectorFactory.Open(OptionsFor(family), NullLogger.Instance);
        Assert.Equal(family, detector.Family);
        using var image = Cv2.ImRead(Path.Combine(FixtureDirectory(family), "input.png"), ImreadModes.Color);
        var actual = detector.Detect(image).Detections;

        // A score within the tolerance of its threshold may fall either side between ONNX Runtime and PyTorch.
        var classes = detector.Labels.Classes.ToList();
        bool Borderline(string cls, float score) => Math.Abs(score - thresholds[classes.IndexOf(cls)]) < ScoreTolerance;
        var unmatched = actual.ToList();
        var missing = new List<Expected>();
        foreach (var e in expected)
        {
            var match = unmatched.FirstOrDefault(a => a.Class == e.Class && Math.Abs(a.Score - e.Score) < ScoreTolerance
                && Math.Abs(a.Box.X1 - e.Box.X1) < BoxTolerancePx && Math.Abs(a.Box.Y1 - e.Box.Y1) < BoxTolerancePx
                && Math.Abs(a.Box.X2 - e.Box.X2) < BoxTolerancePx && Math.Abs(a.Box.Y2 - e.Box.Y2) < BoxTolerancePx);
            if (match is null && Borderline(e.Class, e.Score)) continue;
            if (match is null) missing.Add(e);
            else unmatched.Remove(match);
        }
        Assert.True(missing.Count == 0, $"{missing.Count} of PyTorch's {expected.Count} detections have no match among the detector's {actual.Count}: "
            + string.Join("; ", missing.Select(e => $"{e} (nearest {Nearest(actual, e)})")));
        Assert.All(unmatched, a => Assert.True(Borderline(a.Class, a.Score), $"the detector found {a}, which PyTorch did not"));
        Assert.Equal(detector.Labels.Classes.Count, detector.Model.Labels.Count);
    }

    private static string Nearest(IReadOnlyList<EdgeCounter.Detection.Detection> actual, Expected e) =>
        actual.OrderByDescending(a => a.Box.IoU(e.Box)).FirstOrDefault()?.ToString() ?? "none";

    [Fact]
    public void YoloInputIsLetterboxedIntoTheGraphsFixedSize()
    {
        using var detector = CellDetectorFactory.Open(OptionsFor(YoloFamily.FamilyName), NullLogger.Instance);
        // 512x384 shrinks to fit 256x256 and is centred: 32 rows of grey above and below.
        var g = detector.GeometryFor(512, 384, 1.0);
        Assert.Equal((256, 192, 256, 256, 0, 32), (g.ResizedWidth, g.ResizedHeight, g.PaddedWidth, g.PaddedHeight, g.OffsetX, g.OffsetY));
        Assert.False(detector.Labels.Pixels.Bgr);
        Assert.Equal(114 / 255f, detector.Labels.Pixels.PadOfPlane[0], 6);
    }

    /// <summary>The fixture's sidecar, changed, in a temporary folder (deleted by the caller).</summary>
    private static string ChangedSidecar(string family, Action<JsonObject> change, DirectoryInfo dir)
    {
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(FixtureDirectory(family), "model.labels.json")))!.AsObject();
        change(json);
        var path = Path.Combine(dir.FullName, "model.labels.json");
        File.WriteAllText(path, json.ToJsonString());
        return path;
    }

    public static TheoryData<string, string, string> Mismatches => new()
    {
        // graph of family A, sidecar saying family B: the message names what B expected
        { YoloFamily.FamilyName, CenterNetFamily.FamilyName, "output 'heatmap' is missing" },
        { YoloFamily.FamilyName, FasterRcnnFamily.FamilyName, "rank 4, expected 3" },
        { FasterRcnnFamily.FamilyName, YoloFamily.FamilyName, "rank 3, expected 4" },
    };

    [Theory]
    [MemberData(nameof(Mismatches))]
    public void AGraphOfAnotherFamilyIsRefusedNamingTheMismatch(string graphFamily, string sidecarFamily, string expected)
    {
        var dir = Directory.CreateTempSubdirectory("edgecounter-family-");
        try
        {
            var path = ChangedSidecar(graphFamily, j => j["family"] = sidecarFamily, dir);
            var e = Assert.Throws<ModelLoadException>(() => CellDetectorFactory.Open(OptionsFor(graphFamily, path), NullLogger.Instance));
            Assert.Contains($"'{sidecarFamily}' family", e.Message);
            Assert.Contains(expected, e.Message);
            Assert.Contains("model.onnx", e.Message);
        }
        finally { dir.Delete(recursive: true); }
    }

    [Fact]
    public void TheYoloAdapterChecksTheClassCountAgainstTheSidecar()
    {
        var dir = Directory.CreateTempSubdirectory("edgecounter-family-");
        try
        {
            var path = ChangedSidecar(YoloFamily.FamilyName, j =>
            {
                j["classes"]!.AsArray().Add("Other");
                j["scoreThresholds"]!["Other"] = 0.6;
            }, dir);
            var e = Assert.Throws<ModelLoadException>(() => CellDetectorFactory.Open(OptionsFor(YoloFamily.FamilyName, path), NullLogger.Instance));
            Assert.Contains("4 + 4", e.Message);
        }
        finally { dir.Delete(recursive: true); }
    }
}
