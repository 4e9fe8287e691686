using System.Text.Json.Nodes;
using EdgeCounter.Detection;
using Microsoft.Extensions.Logging;
using OpenCvSharp;
using LogLevel = Microsoft.Extensions.Logging.LogLevel;

namespace EdgeCounter.IntegrationTests.Detection;

/// <summary>The detector on ONNX Runtime with the committed model: loading, contract checks, buffers, scaling.</summary>
public class OnnxCellDetectorTests : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("edgecounter-det-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    /// <summary>A field the model has something to say about: the parity input when present, else a drawn smear.</summary>
    private static Mat Field()
    {
        var parity = Path.Combine(RealModel.ParityDirectory, "input.png");
        if (File.Exists(parity)) return Cv2.ImRead(parity, ImreadModes.Color);
        var m = new Mat(300, 400, MatType.CV_8UC3, new Scalar(225, 215, 235));
        var rng = new Random(3);
        for (var i = 0; i < 25; i++)
            Cv2.Circle(m, new Point(rng.Next(20, 380), rng.Next(20, 280)), rng.Next(14, 22), new Scalar(150, 120, 210), -1, LineTypes.AntiAlias);
        Cv2.Circle(m, new Point(200, 150), 30, new Scalar(170, 60, 110), -1, LineTypes.AntiAlias);
        return m;
    }

    /// <summary>Thresholds low enough that even an early model reports boxes, so the checks below have something to check.</summary>
    private static Dictionary<string, float> LowThresholds(ModelLabels labels) => labels.Classes.ToDictionary(c => c, _ => 0.02f);

    private string WriteSidecar(Action<JsonObject> edit)
    {
        var json = JsonNode.Parse(File.ReadAllText(RealModel.LabelsPath))!.AsObject();
        edit(json);
        var path = Path.Combine(_temp, Guid.NewGuid().ToString("N") + ".labels.json");
        File.WriteAllText(path, json.ToJsonString());
        return path;
    }

    private static ModelLoadException LoadFails(Action<DetectorOptions> configure) =>
        Assert.Throws<ModelLoadException>(() => RealModel.Load(configure).Dispose());

    [Fact]
    public void TheRepositoryRootIsFoundSoModelTestsDoNotSkipByMistake()
    {
        Assert.NotNull(RealModel.RepositoryRoot);
        Assert.True(File.Exists(Path.Combine(RealModel.RepositoryRoot!, "EdgeCounter.sln")));
    }

    [RequiresModelFact]
    public void LoadsOnCpuAndDescribesTheModelFromTheSidecar()
    {
        var log = new ListLogger();
        using var detector = RealModel.Load(logger: log);
        var labels = ModelLabels.Load(RealModel.LabelsPath);
        Assert.Equal("CPU", detector.ExecutionProvider);
        Assert.Equal(labels.Labels, detector.Model.Labels);
        Assert.Equal(labels.Groups.Keys.Order(), detector.Model.Groups.Keys.Order());
        Assert.Equal(labels.ScoreThresholds, detector.ScoreThresholds);
        Assert.Contains(log.Lines, l => l.Message.Contains("CPU execution provider"));
    }

    [RequiresModelFact]
    public void AutoFallsBackToCpuWithAWarningOrUsesCuda()
    {
        var log = new ListLogger();
        using var detector = RealModel.Load(o => o.ExecutionProvider = ExecutionProviderPreference.Auto, log);
        if (detector.ExecutionProvider == "CPU")
            // Either the CUDA runtime is not installed (said before trying), or it is and the provider still failed.
            Assert.Contains(log.Lines, l => (l.Level == LogLevel.Information && l.Message.Contains("CUDA runtime not installed"))
                                            || (l.Level == LogLevel.Warning && l.Message.Contains("CUDA execution provider unavailable")));
        else
        {
            Assert.Equal("CUDA", detector.ExecutionProvider);
            Assert.Contains(log.Lines, l => l.Message.Contains("CUDA execution provider loaded"));
        }
    }

    [RequiresModelFact]
    public void MissingModelFileIsNamed()
    {
        var path = Path.Combine(_temp, "nope.onnx");
        var e = LoadFails(o => o.ModelPath = path);
        Assert.Contains(path, e.Message);
    }

    [RequiresModelFact]
    public void MissingSidecarIsNamed()
    {
        var path = Path.Combine(_temp, "missing.labels.json");
        var e = LoadFails(o => o.LabelsPath = path);
        Assert.Contains(path, e.Message);
        // Default sidecar path: a model copied without its labels file.
        var lonely = Path.Combine(_temp, "lonely.onnx");
        File.Copy(RealModel.ModelPath, lonely);
        e = LoadFails(o => o.ModelPath = lonely);
        Assert.Contains("lonely.labels.json", e.Message);
    }

    [RequiresModelFact]
    public void WithoutASidecarTheLabelsComeFromTheModelMetadata()
    {
        // Protobuf merges concatenated messages, so appending ModelProto field 14 (metadata_props) to the model's
        // bytes yields the same model carrying a "labels" entry: the sidecar's JSON with a different name.
        var json = File.ReadAllText(RealModel.LabelsPath).Replace("\"edgecounter-cellnet\"", "\"from-metadata\"");
        var entry = new List<byte>();
        AppendField(entry, 1, "labels"u8.ToArray());
        AppendField(entry, 2, System.Text.Encoding.UTF8.GetBytes(json));
        var bytes = new List<byte>(File.ReadAllBytes(RealModel.ModelPath));
        AppendField(bytes, 14, entry.ToArray());
        var path = Path.Combine(_temp, "embedded.onnx");
        File.WriteAllBytes(path, bytes.ToArray());
        if (ModelLabels.Load(RealModel.LabelsPath).SubtypeStage is { } stage) // the stage's files go beside the model
            foreach (var file in new[] { stage, Path.ChangeExtension(stage, ".labels.json") })
                File.Copy(Path.Combine(Path.GetDirectoryName(RealModel.ModelPath)!, file), Path.Combine(_temp, file));

        using var detector = RealModel.Load(o => o.ModelPath = path);
        Assert.Equal(ModelLabels.Load(RealModel.LabelsPath).Labels, detector.Model.Labels);
        Assert.Equal("from-metadata", detector.Model.Name);
    }

    private static void AppendField(List<byte> message, int field, byte[] payload)
    {
        AppendVarint(message, (ulong)(field << 3 | 2)); // wire type 2: length-delimited
        AppendVarint(message, (ulong)payload.Length);
        message.AddRange(payload);
    }

    private static void AppendVarint(List<byte> message, ulong value)
    {
        while (value >= 0x80) { message.Add((byte)(value | 0x80)); value >>= 7; }
        message.Add((byte)value);
    }

    [RequiresModelFact]
    public void InvalidSidecarIsNamed()
    {
        var path = Path.Combine(_temp, "broken.labels.json");
        File.WriteAllText(path, "{ \"classes\": [\"WBC\", ");
        var e = LoadFails(o => o.LabelsPath = path);
        Assert.Contains("not valid JSON", e.Message);
    }

    [RequiresModelFact]
    public void SidecarWithMoreClassesThanTheHeatmapIsAContractError()
    {
        var path = WriteSidecar(j =>
        {
            j["classes"]!.AsArray().Add("Megakaryocyte");
            j["scoreThresholds"]!.AsObject()["Megakaryocyte"] = 0.5;
        });
        var e = LoadFails(o => o.LabelsPath = path);
        Assert.Contains("heatmap", e.Message);
        Assert.Contains("does not fit the contract", e.Message);
    }

    [RequiresModelFact]
    public void WrongInputNameIsAContractError()
    {
        var path = WriteSidecar(j => j["input"]!["name"] = "pixels");
        var e = LoadFails(o => o.LabelsPath = path);
        Assert.Contains("'pixels'", e.Message);
        Assert.Contains("'image'", e.Message);
    }

    [RequiresModelFact]
    public void WrongStrideIsAContractError()
    {
        var path = WriteSidecar(j => j["input"]!["stride"] = 8);
        var e = LoadFails(o => o.LabelsPath = path);
        Assert.Contains("stride 8", e.Message);
    }

    [RequiresModelFact]
    public void WrongSubtypeCountIsAContractError()
    {
        var path = WriteSidecar(j => j["subtypes"]!["labels"]!.AsArray().Add("myelocyte"));
        var e = LoadFails(o => o.LabelsPath = path);
        Assert.Contains("subtype", e.Message);
    }

    [RequiresModelFact]
    public void OneScoreThresholdKeepsOnlyDetectionsAboveIt()
    {
        using var detector = RealModel.Load(o => o.ScoreThreshold = 0.7f);
        using var sidecar = RealModel.Load();
        Assert.All(detector.ScoreThresholds, t => Assert.Equal(0.7f, t));
        using var field = Field();
        var at07 = detector.Detect(field).Detections;
        var atSidecar = sidecar.Detect(field).Detections;
        Assert.All(at07, d => Assert.True(d.Score > 0.7f, $"{d}"));
        // The sidecar's thresholds are lower: 0.7 keeps a subset of its cells.
        Assert.True(at07.Count < atSidecar.Count, $"{at07.Count} at 0.7, {atSidecar.Count} at the sidecar's");
    }

    [RequiresModelFact]
    public void WithoutOnnxRuntimesMemoryArenaTheDetectionsAreTheSameRunAfterRun()
    {
        using var pooled = RealModel.Load(o => o.CpuMemoryArena = true);
        using var unpooled = RealModel.Load(o => o.CpuMemoryArena = false);
        using var field = Field();
        var expected = pooled.Detect(field).Detections;
        Assert.NotEmpty(expected);
        // Several runs: buffers allocated afresh each time must not carry anything from the run before.
        for (var run = 0; run < 3; run++)
        {
            var got = unpooled.Detect(field).Detections;
            Assert.Equal(expected.Count, got.Count);
            for (var i = 0; i < got.Count; i++)
            {
                Assert.Equal(expected[i].Label, got[i].Label);
                Assert.Equal(expected[i].Score, got[i].Score, 5);
            }
        }
    }

    [RequiresModelFact]
    public void DetectionsAreInTheFrameAboveTheirThresholdsAndLabelled()
    {
        var labels = ModelLabels.Load(RealModel.LabelsPath);
        using var detector = RealModel.Load(o => o.ScoreThresholdOverrides = LowThresholds(labels));
        using var field = Field();
        var result = detector.Detect(field);
        Assert.NotEmpty(result.Detections);
        Assert.True(result.Detections.Count <= labels.MaxDetections);
        Assert.All(result.Detections, d =>
        {
            Assert.Contains(d.Label, detector.Model.Labels);
            Assert.Contains(d.Class, labels.Classes);
            // The subtype stage looks at every white cell the count keeps (here, down to the low override) and may
            // call one unidentified.
            Assert.Equal(d.Class == labels.SubtypeOf, labels.Subtypes.Contains(d.Label) || d.Label == ModelLabels.UnidentifiedLabel);
            Assert.True(d.Score > 0.02f && d.Score <= 1);
            Assert.InRange(d.Box.X1, 0, field.Cols); Assert.InRange(d.Box.X2, d.Box.X1, field.Cols);
            Assert.InRange(d.Box.Y1, 0, field.Rows); Assert.InRange(d.Box.Y2, d.Box.Y1, field.Rows);
        });
        Assert.True(result.InferenceMs > 0 && result.PreprocessMs >= 0 && result.PostprocessMs >= 0);
        // No two boxes of one class overlap more than the NMS threshold (NMS runs before clipping: inner boxes only).
        bool Inner(BoxF b) => b.X1 > 0 && b.Y1 > 0 && b.X2 < field.Cols && b.Y2 < field.Rows;
        foreach (var group in result.Detections.Where(d => Inner(d.Box)).GroupBy(d => d.Class))
        {
            var list = group.ToList();
            for (var i = 0; i < list.Count; i++)
                for (var k = i + 1; k < list.Count; k++)
                    Assert.True(list[i].Box.IoU(list[k].Box) <= labels.NmsIou + 1e-6f);
        }
    }

    [RequiresModelFact]
    public void TheThreeScaleGraphBesideTheDefaultFindsWhatTheOnePassGraphIsSureOf()
    {
        using var onePass = RealModel.Load();
        using var threeScale = RealModel.Load(o => o.ModelPath = RealModel.ModelPathOf(RealModel.ThreeScale));
        Assert.Equal([1.0], onePass.Labels.TestScales);
        Assert.Equal([1.0, 1.15, 1.3], threeScale.Labels.TestScales);
        Assert.Equal(onePass.Labels.Classes, threeScale.Labels.Classes);
        Assert.Equal(onePass.Model.Name, threeScale.Model.Name);
        Assert.Equal($"{onePass.Model.Version}+{RealModel.ThreeScale}", threeScale.Model.Version); // results say which graph made them

        using var field = Field();
        var confident = onePass.Detect(field).Detections;
        using var threeScaleLow = RealModel.Load(o => { o.ModelPath = RealModel.ModelPathOf(RealModel.ThreeScale); o.ScoreThresholdOverrides = LowThresholds(threeScale.Labels); });
        var candidates = threeScaleLow.Detect(field).Detections;
        Assert.NotEmpty(confident);
        // Same weights, and sizes come from the input scale: each cell one graph is sure of is the other's candidate, same box.
        Assert.All(confident, d => Assert.Contains(candidates, c => c.Class == d.Class && c.Box.IoU(d.Box) > 0.7f));
    }

    [RequiresModelFact]
    public void ReusedBuffersGiveTheSameAnswerAcrossSizes()
    {
        var labels = ModelLabels.Load(RealModel.LabelsPath);
        using var field = Field();
        using var small = new Mat(field, new Rect(0, 0, field.Cols - 37, field.Rows - 51)).Clone();
        using var fresh = RealModel.Load(o => o.ScoreThresholdOverrides = LowThresholds(labels));
        var expectedSmall = fresh.Detect(small).Detections;

        using var detector = RealModel.Load(o => o.ScoreThresholdOverrides = LowThresholds(labels));
        var first = detector.Detect(field).Detections;
        var smallAfterLarge = detector.Detect(small).Detections; // padding region holds stale values from the large frame
        var again = detector.Detect(field).Detections;
        Assert.Equal(first, again);
        Assert.Equal(expectedSmall, smallAfterLarge);
    }

    [RequiresModelFact]
    public void InputScaleMapsBoxesBackToFramePixels()
    {
        var labels = ModelLabels.Load(RealModel.LabelsPath);
        using var field = Field();
        // The same field at twice the size, detected with InputScale 0.5, gives the original's boxes doubled.
        using var doubled = new Mat();
        Cv2.Resize(field, doubled, new Size(field.Cols * 2, field.Rows * 2), 0, 0, InterpolationFlags.Linear);
        using var plain = RealModel.Load(o => o.ScoreThresholdOverrides = LowThresholds(labels));
        using var scaled = RealModel.Load(o => { o.ScoreThresholdOverrides = LowThresholds(labels); o.InputScale = 0.5; });
        Assert.Equal(0.5, scaled.InputScale);
        var reference = plain.Detect(field).Detections.OrderByDescending(d => d.Score).Take(10).ToList();
        var result = scaled.Detect(doubled).Detections;
        Assert.NotEmpty(reference);
        var matched = reference.Count(r => result.Any(d => d.Class == r.Class && d.Box.IoU(r.Box.Scale(2, 2)) > 0.7f));
        Assert.True(matched >= reference.Count * 0.8, $"{matched} of {reference.Count} boxes found at the doubled scale");
        Assert.All(result, d => Assert.InRange(d.Box.X2, 0, doubled.Cols));
    }

    [RequiresModelFact]
    public void CameraPixelSizeSetsTheInputScale()
    {
        var labels = ModelLabels.Load(RealModel.LabelsPath);
        Assert.NotNull(labels.MicrometresPerPixel);
        using var detector = RealModel.Load(o => o.CameraMicrometresPerPixel = labels.MicrometresPerPixel * 2);
        Assert.Equal(2.0, detector.InputScale, 9);
    }

    [RequiresModelFact]
    public void AcceptsGrayAndBgraAndRejectsAfterDispose()
    {
        var detector = RealModel.Load();
        using var field = Field();
        using var gray = field.CvtColor(ColorConversionCodes.BGR2GRAY);
        using var bgra = field.CvtColor(ColorConversionCodes.BGR2BGRA);
        detector.Detect(gray);
        Assert.Equal(detector.Detect(field).Detections, detector.Detect(bgra).Detections);
        detector.Dispose();
        Assert.Throws<ObjectDisposedException>(() => detector.Detect(field));
    }
}
