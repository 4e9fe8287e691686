using EdgeCounter.Detection;
using OpenCvSharp;

namespace EdgeCounter.Tests.Detection;

/// <summary>The pure parts of the model families: geometry (fixed size, letterbox), pixel conventions, the YOLO and
/// torchvision decoders, the sidecar's family keys and the one-threshold option.</summary>
public class FamilyPartsTests
{
    [Fact]
    public void AFixedSizeGraphTakesTheFrameShrunkToFitAndLetterboxed()
    {
        var g = InputGeometry.For(1280, 960, 1.0, 32, fixedSize: (640, 640), centred: true);
        Assert.Equal((640, 480, 640, 640, 0, 80), (g.ResizedWidth, g.ResizedHeight, g.PaddedWidth, g.PaddedHeight, g.OffsetX, g.OffsetY));
        // Never enlarged to fill it: a small frame keeps its scale, padded on every side.
        var small = InputGeometry.For(320, 240, 1.0, 32, fixedSize: (640, 640), centred: true);
        Assert.Equal((320, 240, 160, 200), (small.ResizedWidth, small.ResizedHeight, small.OffsetX, small.OffsetY));
        Assert.False(small.NeedsResize);
        // A box in input pixels comes back without the letterbox's offset.
        Assert.Equal(new BoxF(20, 40, 200, 100), g.ToFrame(new BoxF(10, 100, 100, 130)));
        // Bottom/right padding to a fixed size: no offset.
        var corner = InputGeometry.For(320, 240, 1.0, 32, fixedSize: (640, 640), centred: false);
        Assert.Equal((0, 0, 640, 640), (corner.OffsetX, corner.OffsetY, corner.PaddedWidth, corner.PaddedHeight));
    }

    [Fact]
    public void TheWriterPlacesTheImageAtItsOffsetInTheModelsConvention()
    {
        using var image = new Mat(2, 3, MatType.CV_8UC3, new Scalar(10, 20, 30)); // B, G, R
        var plane = 5 * 4;
        var tensor = new float[3 * plane];
        var bgr255 = new PixelConvention(bgr: true, maxValue: 255, mean: [1, 2, 3], std: [2, 2, 2], padValue: 114);
        InputTensorWriter.Write(image, tensor, 5, 4, offsetX: 1, offsetY: 1, bgr255);
        // Plane 0 is blue in BGR order: (10 - 1) / 2 inside the image, (114 - 1) / 2 around it.
        Assert.Equal(4.5f, tensor[1 * 5 + 1]);
        Assert.Equal(56.5f, tensor[0]);
        Assert.Equal((20 - 2) / 2f, tensor[plane + 2 * 5 + 3]);
        Assert.Equal((30 - 3) / 2f, tensor[2 * plane + 2 * 5 + 2]);
        Assert.Equal((114 - 3) / 2f, tensor[2 * plane + 3 * 5 + 4]); // below and right of the image
        // EdgeCounter's own: RGB 0..1, black padding, bottom/right.
        InputTensorWriter.Write(image, tensor, 5, 4);
        Assert.Equal(30 / 255f, tensor[0], 6);
        Assert.Equal(10 / 255f, tensor[2 * plane], 6);
        Assert.Equal(0f, tensor[4]);
        Assert.Throws<ArgumentException>(() => InputTensorWriter.Write(image, tensor, 5, 4, 3, 0, PixelConvention.RgbUnit));
    }

    [Fact]
    public void YoloDecodeTakesEachAnchorsBestClassInEitherLayout()
    {
        // Three anchors, two classes; rows cx, cy, w, h, score0, score1.
        float[,] rows =
        {
            { 10, 50, 90 }, { 20, 60, 90 }, { 4, 8, 10 }, { 6, 10, 10 }, { 0.9f, 0.2f, 0.5f }, { 0.1f, 0.7f, 0.55f },
        };
        var byRow = new float[18];
        var byAnchor = new float[18];
        for (var r = 0; r < 6; r++)
            for (var a = 0; a < 3; a++) { byRow[r * 3 + a] = rows[r, a]; byAnchor[a * 6 + r] = rows[r, a]; }
        float[] thresholds = [0.5f, 0.6f];
        foreach (var (values, transposed) in new[] { (byRow, false), (byAnchor, true) })
        {
            var output = new List<RawDetection>();
            YoloFamily.Decode(values, 3, 2, transposed, thresholds, output);
            Assert.Equal(2, output.Count); // the third anchor's best (class 1, 0.55) is under its class's 0.6
            Assert.Equal(new RawDetection(0, -1, 0.9f, new BoxF(8, 17, 12, 23)), output[0]);
            Assert.Equal(new RawDetection(1, -1, 0.7f, new BoxF(46, 55, 54, 65)), output[1]);
        }
        Assert.Throws<ArgumentException>(() => YoloFamily.Decode(byRow.AsSpan(0, 12), 3, 2, false, thresholds, []));
    }

    [Fact]
    public void TorchvisionLabelsAreOneBasedAndUnknownOnesAreSkipped()
    {
        float[] boxes = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
        long[] labels = [1, 0, 3, 4];
        float[] scores = [0.9f, 0.9f, 0.8f, 0.9f];
        var output = new List<RawDetection>();
        FasterRcnnFamily.Decode(boxes, labels, scores, 4, classes: 3, [0.5f, 0.5f, 0.85f], output);
        // label 1 is class 0; 0 is background, 4 is beyond the sidecar's three classes, class 2's 0.8 is under 0.85
        Assert.Equal([new RawDetection(0, -1, 0.9f, new BoxF(1, 2, 3, 4))], output);
    }

    private const string YoloSidecar = """
        { "family": "yolo", "classes": ["WBC", "RBC"], "scoreThresholds": { "WBC": 0.5, "RBC": 0.5 }, "differential": ["WBC"] }
        """;

    [Fact]
    public void TheSidecarsFamilyGivesItsInputDefaultsAndTheSidecarMayChangeThem()
    {
        var centernet = ModelLabels.Parse(ModelLabelsTests.ContractExample, "example");
        Assert.Equal("centernet", centernet.Family);
        Assert.False(centernet.Letterbox);
        Assert.Equal(0, centernet.Pixels.PadValue);

        var yolo = ModelLabels.Parse(YoloSidecar, "yolo.labels.json");
        Assert.Equal(("yolo", "images", 32, true, 114), (yolo.Family, yolo.InputName, yolo.SizeMultiple, yolo.Letterbox, yolo.Pixels.PadValue));
        var frcnn = ModelLabels.Parse(YoloSidecar.Replace("\"yolo\"", "\"FasterRCNN\""), "frcnn.labels.json");
        Assert.Equal(("fasterrcnn", 1, false), (frcnn.Family, frcnn.SizeMultiple, frcnn.Letterbox));

        var changed = ModelLabels.Parse(YoloSidecar.Replace("\"family\": \"yolo\",",
            "\"family\": \"yolo\", \"input\": { \"colour\": \"BGR\", \"range\": [0, 255], \"mean\": [100, 110, 120], \"std\": [50, 50, 50], \"padding\": \"bottomRight\", \"padValue\": 0 },"), "x");
        Assert.False(changed.Letterbox);
        Assert.True(changed.Pixels.Bgr);
        Assert.Equal(-2f, changed.Pixels.PadOfPlane[0]); // (0 - 100) / 50
        Assert.Equal(-2.4f, changed.Pixels.PadOfPlane[2], 5);
    }

    [Theory]
    [InlineData("\"family\": \"yolo\"", "\"family\": \"ssd\"", "ssd")]
    [InlineData("\"family\": \"yolo\",", "\"family\": \"yolo\", \"input\": { \"padding\": \"left\" },", "input.padding")]
    [InlineData("\"family\": \"yolo\",", "\"family\": \"yolo\", \"input\": { \"range\": [0, 2] },", "input.range")]
    [InlineData("\"family\": \"yolo\",", "\"family\": \"yolo\", \"input\": { \"std\": [1, 0, 1] },", "input.std")]
    [InlineData("\"family\": \"yolo\",", "\"family\": \"yolo\", \"input\": { \"padValue\": 300 },", "input.padValue")]
    [InlineData("\"family\": \"yolo\",", "\"family\": \"yolo\", \"subtypes\": { \"of\": \"WBC\", \"labels\": [\"neutrophil\"] },", "no subtype head")]
    public void ABadFamilyOrInputKeyIsNamed(string from, string to, string named)
    {
        var json = YoloSidecar.Replace(from, to);
        Assert.NotEqual(YoloSidecar, json);
        var e = Assert.Throws<ModelLoadException>(() => ModelLabels.Parse(json, "bad.labels.json"));
        Assert.Contains(named, e.Message);
    }

    [Fact]
    public void OneScoreThresholdReplacesTheSidecarsAndPerClassOverridesStillWin()
    {
        var labels = ModelLabels.Parse(ModelLabelsTests.ContractExample, "example");
        Assert.Equal([0.3f, 0.35f, 0.4f], new DetectorOptions().OperatingThresholds(labels));
        Assert.Equal([0.7f, 0.7f, 0.7f], new DetectorOptions { ScoreThreshold = 0.7f }.OperatingThresholds(labels));
        var both = new DetectorOptions { ScoreThreshold = 0.7f, ScoreThresholdOverrides = new Dictionary<string, float> { ["platelets"] = 0.5f } };
        Assert.Equal([0.7f, 0.7f, 0.5f], both.OperatingThresholds(labels));
        var e = Assert.Throws<ArgumentException>(() => new DetectorOptions { ScoreThreshold = 1.5f }.Validate());
        Assert.Contains("Detector:ScoreThreshold", e.Message);
    }
}
