using System.Text.Json;
using EdgeCounter.Detection;
using Microsoft.ML.OnnxRuntime;
using OpenCvSharp;

namespace EdgeCounter.IntegrationTests.Detection;

/// <summary>
/// The same image through PyTorch (tests/fixtures/parity/reference.json, written by models/training/export.py) and
/// through the C# detector on ONNX Runtime must agree: raw outputs at the reference cells, and the decoded detections.
/// Each shipped graph has its own fixture: the default (one pass) and the three-scale variant, whose in-graph resizes
/// are sized from the input and must agree with PyTorch's at an input size other than the export's example.
/// </summary>
public class ParityTests
{
    private const float ScoreTolerance = 1e-4f;
    private const float BoxTolerancePx = 0.05f;

    private static JsonElement Reference(string variant)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(RealModel.ParityDirectoryOf(variant), "reference.json")));
        return doc.RootElement.Clone();
    }

    private static Dictionary<string, float> Thresholds(JsonElement reference) =>
        reference.GetProperty("scoreThresholds").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetSingle());

    private static float[] Floats(JsonElement array) => array.EnumerateArray().Select(e => e.GetSingle()).ToArray();

    [RequiresParityFixtureTheory]
    [InlineData("")]
    [InlineData(RealModel.ThreeScale)]
    public void RawOutputsMatchPyTorchAtTheReferenceCells(string variant)
    {
        var reference = Reference(variant);
        var modelPath = RealModel.ModelPathOf(variant);
        var labels = ModelLabels.Load(DetectorOptions.DefaultLabelsPath(modelPath));
        using var bgr = Cv2.ImRead(Path.Combine(RealModel.ParityDirectoryOf(variant), "input.png"), ImreadModes.Color);
        Assert.Equal(reference.GetProperty("width").GetInt32(), bgr.Cols);
        Assert.Equal(reference.GetProperty("height").GetInt32(), bgr.Rows);

        // The detector's own preprocessing: geometry and tensor writer.
        var g = InputGeometry.For(bgr.Cols, bgr.Rows, 1.0, labels.SizeMultiple);
        Assert.Equal(reference.GetProperty("paddedWidth").GetInt32(), g.PaddedWidth);
        Assert.Equal(reference.GetProperty("paddedHeight").GetInt32(), g.PaddedHeight);
        var tensor = new float[3 * g.PaddedWidth * g.PaddedHeight];
        InputTensorWriter.Write(bgr, tensor, g.PaddedWidth, g.PaddedHeight);

        using var options = new SessionOptions();
        using var session = new InferenceSession(modelPath, options);
        using var input = OrtValue.CreateTensorValueFromMemory(tensor, [1, 3, g.PaddedHeight, g.PaddedWidth]);
        string[] names = ["heatmap", "size", "offset", "subtype"];
        using var outputs = session.Run(new RunOptions(), [labels.InputName], [input], names);
        var byName = names.Zip(outputs).ToDictionary(p => p.First, p => p.Second);

        var raw = reference.GetProperty("raw");
        foreach (var shape in raw.GetProperty("shapes").EnumerateObject())
        {
            var expected = shape.Value.EnumerateArray().Select(e => e.GetInt64()).ToArray();
            if (expected.Length == 3) expected = [1, .. expected]; // written without the batch dimension
            Assert.Equal(expected, byName[shape.Name].GetTensorTypeAndShape().Shape);
        }
        var w = (int)byName["heatmap"].GetTensorTypeAndShape().Shape[3];
        var plane = w * (int)byName["heatmap"].GetTensorTypeAndShape().Shape[2];
        var heatmap = byName["heatmap"].GetTensorDataAsSpan<float>().ToArray();
        var size = byName["size"].GetTensorDataAsSpan<float>().ToArray();
        var offset = byName["offset"].GetTensorDataAsSpan<float>().ToArray();
        var subtype = byName["subtype"].GetTensorDataAsSpan<float>().ToArray();
        var checkedCells = 0;
        foreach (var cell in raw.GetProperty("heatmapMax").EnumerateArray())
        {
            var c = labels.Classes.ToList().IndexOf(cell.GetProperty("class").GetString()!);
            var k = cell.GetProperty("row").GetInt32() * w + cell.GetProperty("col").GetInt32();
            Assert.Equal(cell.GetProperty("value").GetSingle(), heatmap[c * plane + k], ScoreTolerance);
            var s = Floats(cell.GetProperty("size"));
            Assert.Equal(s[0], size[k], s[0] * 1e-3f);
            Assert.Equal(s[1], size[plane + k], s[1] * 1e-3f);
            var o = Floats(cell.GetProperty("offset"));
            Assert.Equal(o[0], offset[k], 1e-3f);
            Assert.Equal(o[1], offset[plane + k], 1e-3f);
            if (cell.TryGetProperty("subtype", out var sub))
            {
                var p = Floats(sub);
                for (var i = 0; i < p.Length; i++) Assert.Equal(p[i], subtype[i * plane + k], 1e-3f);
            }
            // Peaks above the threshold: the decoder's candidate count per class.
            if (cell.TryGetProperty("peakCount", out var peaks))
            {
                var t = Thresholds(reference)[labels.Classes[c]];
                var count = heatmap.AsSpan(c * plane, plane).ToArray().Count(v => v > t);
                Assert.InRange(count, peaks.GetInt32() - 1, peaks.GetInt32() + 1); // a value on the threshold may flip
            }
            checkedCells++;
        }
        Assert.Equal(labels.Classes.Count, checkedCells);
    }

    [RequiresParityFixtureTheory]
    [InlineData("")]
    [InlineData(RealModel.ThreeScale)]
    public void DetectionsMatchPyTorch(string variant)
    {
        var reference = Reference(variant);
        var thresholds = Thresholds(reference);
        using var detector = RealModel.Load(o => { o.ModelPath = RealModel.ModelPathOf(variant); o.ScoreThresholdOverrides = thresholds; });
        using var bgr = Cv2.ImRead(Path.Combine(RealModel.ParityDirectoryOf(variant), "input.png"), ImreadModes.Color);
        var detections = detector.Detect(bgr).Detections.ToList();

        float width = bgr.Cols, height = bgr.Rows;
        var expected = reference.GetProperty("detections").EnumerateArray().Select(e =>
        {
            var b = Floats(e.GetProperty("box"));
            // PyTorch's decode does not clip; the C# detector clips boxes to the frame.
            var box = new BoxF(Math.Clamp(b[0], 0, width), Math.Clamp(b[1], 0, height), Math.Clamp(b[2], 0, width), Math.Clamp(b[3], 0, height));
            return (Class: e.GetProperty("class").GetString()!, Label: e.GetProperty("label").GetString()!, Score: e.GetProperty("score").GetSingle(), Box: box);
        }).ToList();
        Assert.NotEmpty(expected); // a fixture without detections would prove nothing

        bool Borderline(string cls, float score) => MathF.Abs(score - thresholds[cls]) < ScoreTolerance;
        var unmatched = detections.ToList();
        var missing = new List<string>();
        foreach (var e in expected)
        {
            var match = unmatched.Where(d => d.Class == e.Class)
                .OrderByDescending(d => d.Box.IoU(e.Box)).FirstOrDefault();
            if (match is null || match.Box.IoU(e.Box) < 0.9f)
            {
                if (!Borderline(e.Class, e.Score)) missing.Add($"{e.Class} {e.Score} {e.Box}");
                continue;
            }
            unmatched.Remove(match);
            Assert.Equal(e.Score, match.Score, ScoreTolerance);
            Assert.Equal(e.Box.X1, match.Box.X1, BoxTolerancePx);
            Assert.Equal(e.Box.Y1, match.Box.Y1, BoxTolerancePx);
            Assert.Equal(e.Box.X2, match.Box.X2, BoxTolerancePx);
            Assert.Equal(e.Box.Y2, match.Box.Y2, BoxTolerancePx);
            Assert.Equal(e.Label, match.Label);
        }
        Assert.True(missing.Count == 0, $"{missing.Count} PyTorch detections not found in C#: {string.Join("; ", missing.Take(5))}");
        var extra = unmatched.Where(d => !Borderline(d.Class, d.Score)).ToList();
        Assert.True(extra.Count == 0, $"{extra.Count} C# detections not in PyTorch's: {string.Join("; ", extra.Take(5))}");
    }
}
