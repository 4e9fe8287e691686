using System.Globalization;
using System.Text.Json.Nodes;
using System.Xml.Linq;
using EdgeCounter.Commands;
using EdgeCounter.Detection;
using OpenCvSharp;

namespace EdgeCounter.IntegrationTests.Detection;

/// <summary>
/// <c>eval</c> end to end on a small VOC set written here: the ground truth is the detector's own output on the
/// parity field (or a drawn one), so every figure that follows from it is known.
/// </summary>
[Collection(ConsoleCollection.Name)]
public class EvalCommandTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("edgecounter-voc-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    /// <summary>Dataset name for a model class: plural "s" toggled, so automatic pairing has to work for it.</summary>
    private static string DatasetName(string modelClass) => modelClass.EndsWith('s') ? modelClass[..^1] : modelClass + "s";

    private (ModelLabels Labels, List<EdgeCounter.Detection.Detection> Truth) WriteVocSet(float truthThreshold, bool subtypeNames = false)
    {
        var labels = ModelLabels.Load(RealModel.LabelsPath);
        Directory.CreateDirectory(Path.Combine(_root, "Annotations"));
        Directory.CreateDirectory(Path.Combine(_root, "JPEGImages"));
        var parity = Path.Combine(RealModel.ParityDirectory, "input.png");
        using var field = File.Exists(parity) ? Cv2.ImRead(parity) : new Mat(300, 400, MatType.CV_8UC3, new Scalar(220, 210, 230));
        Cv2.ImWrite(Path.Combine(_root, "JPEGImages", "field.png"), field);

        // Decoded as eval decodes (score floor: maxDetections per class), the 20 best boxes of each class:
        // fewer than COCO's 100 per image and class, so recall can reach 1.
        using var detector = RealModel.Load(o => o.EvaluationScoreFloor = truthThreshold);
        var truth = detector.Detect(field).Detections.GroupBy(d => d.Class).SelectMany(g => g.OrderByDescending(d => d.Score).Take(20)).ToList();
        string F(float v) => v.ToString(CultureInfo.InvariantCulture);
        var objects = truth.Select(d => new XElement("object", new XElement("name", subtypeNames && d.Class == labels.SubtypeOf ? d.Label : DatasetName(d.Class)),
            new XElement("bndbox", new XElement("xmin", F(d.Box.X1)), new XElement("ymin", F(d.Box.Y1)),
                new XElement("xmax", F(d.Box.X2)), new XElement("ymax", F(d.Box.Y2))))).ToList();
        // A degenerate box: skipped with a warning, not counted.
        objects.Add(new XElement("object", new XElement("name", DatasetName(labels.Classes[0])),
            new XElement("bndbox", new XElement("xmin", 10), new XElement("ymin", 10), new XElement("xmax", 10), new XElement("ymax", 30))));
        new XElement("annotation", new XElement("filename", "field.png"),
            new XElement("size", new XElement("width", field.Cols), new XElement("height", field.Rows)), objects)
            .Save(Path.Combine(_root, "Annotations", "field.xml"));
        return (labels, truth);
    }

    [RequiresModelFact]
    public async Task ItsOwnDetectionsAsTruthScorePerfectAP()
    {
        var (labels, truth) = WriteVocSet(truthThreshold: 0.02f);
        Assert.NotEmpty(truth);
        var json = Path.Combine(_root, "out", "eval.json");
        var rc = await EvalCommand.RunAsync(new CommandLine(["--voc", _root, "--model", RealModel.ModelPath, "--provider", "cpu", "--min-score", "0.01", "--json", json]), CancellationToken.None);
        Assert.Equal(0, rc);

        var report = JsonNode.Parse(File.ReadAllText(json))!;
        Assert.Equal("all", report["dataset"]!["split"]!.GetValue<string>());
        Assert.Equal(1, report["dataset"]!["skippedBoxes"]!.GetValue<int>());
        Assert.Equal(1.0, report["AP50"]!.GetValue<double>(), 6);
        Assert.Equal(1.0, report["AP"]!.GetValue<double>(), 6);
        Assert.Equal(1.0, report["AP75"]!.GetValue<double>(), 6);
        foreach (var cls in truth.Select(d => d.Class).Distinct())
        {
            var perClass = report["perClass"]![DatasetName(cls)]!;  // keyed by the dataset's names
            Assert.Equal(truth.Count(d => d.Class == cls), perClass["groundTruth"]!.GetValue<int>());
            Assert.Equal(1.0, perClass["AP50"]!.GetValue<double>(), 6);
            // At the operating thresholds the detector reports exactly the truth boxes above them.
            var threshold = labels.ScoreThresholds[labels.Classes.ToList().IndexOf(cls)];
            var expectedRecall = (double)truth.Count(d => d.Class == cls && d.Score > threshold) / truth.Count(d => d.Class == cls);
            Assert.Equal(expectedRecall, perClass["recall"]!.GetValue<double>(), 6);
            var reported = perClass["truePositives"]!.GetValue<int>() + perClass["falsePositives"]!.GetValue<int>();
            Assert.Equal(Math.Abs(reported - truth.Count(d => d.Class == cls)), perClass["countMAE"]!.GetValue<double>(), 6); // one image
        }
        Assert.True(report["timing"]!["meanMs"]!.GetValue<double>() > 0);
    }

    [RequiresModelFact]
    public async Task MapFoldsEveryModelClassIntoOneDatasetClass()
    {
        var (labels, truth) = WriteVocSet(truthThreshold: 0.02f);
        // Into the class whose best box scores lowest, so boxes folded in from the others rank above its own.
        var targetClass = truth.GroupBy(d => d.Class).OrderBy(g => g.Max(d => d.Score)).First().Key;
        var target = DatasetName(targetClass);
        // Fold all classes into one: boxes of other classes become hits for it; its truth is only its own boxes.
        var map = string.Join(",", labels.Classes.Select(c => $"{c}={target}").Concat(labels.Subtypes.Select(s => $"{s}={target}")));
        var json = Path.Combine(_root, "mapped.json");
        var rc = await EvalCommand.RunAsync(new CommandLine(["--voc", _root, "--model", RealModel.ModelPath, "--provider", "cpu", "--map", map, "--json", json]), CancellationToken.None);
        Assert.Equal(0, rc);
        var report = JsonNode.Parse(File.ReadAllText(json))!;
        var perClass = report["perClass"]!.AsObject();
        Assert.Equal([target], perClass.Select(p => p.Key)); // the other dataset classes have no model counterpart left
        Assert.Equal(truth.Count(d => d.Class == targetClass), perClass[target]!["groundTruth"]!.GetValue<int>());
        if (truth.Any(d => d.Class != targetClass))
            Assert.True(perClass[target]!["AP50"]!.GetValue<double>() < 1); // the folded-in boxes are false positives now
    }

    [RequiresModelFact]
    public async Task SubtypeNamedObjectsGiveSubtypeAccuracy()
    {
        var (labels, truth) = WriteVocSet(truthThreshold: 0.02f, subtypeNames: true);
        var white = truth.Where(d => d.Class == labels.SubtypeOf).ToList();
        Assert.NotEmpty(white);
        // Operating thresholds as low as the truth's, so every white cell of the truth is "detected".
        var sidecar = JsonNode.Parse(File.ReadAllText(RealModel.LabelsPath))!;
        foreach (var c in labels.Classes) sidecar["scoreThresholds"]![c] = 0.02;
        var labelsPath = Path.Combine(_root, "low.labels.json");
        File.WriteAllText(labelsPath, sidecar.ToJsonString());
        var json = Path.Combine(_root, "subtypes.json");
        var rc = await EvalCommand.RunAsync(new CommandLine(["--voc", _root, "--model", RealModel.ModelPath, "--labels", labelsPath, "--provider", "cpu", "--json", json]), CancellationToken.None);
        Assert.Equal(0, rc);
        var report = JsonNode.Parse(File.ReadAllText(json))!;
        var subtypes = report["subtypes"]!;
        Assert.Equal("object names", subtypes["source"]!.GetValue<string>());
        Assert.Equal(white.Count, subtypes["matched"]!.GetValue<int>());
        Assert.Equal(1.0, subtypes["accuracy"]!.GetValue<double>(), 6);
        var confusion = subtypes["confusion"]!.AsArray();
        for (var t = 0; t < labels.Subtypes.Count; t++)
            Assert.Equal(white.Count(d => d.Label == labels.Subtypes[t]), confusion[t]![t]!.GetValue<int>());
        foreach (var label in white.Select(d => d.Label).Distinct())
            Assert.Equal(1.0, report["perClass"]![label]!["AP50"]!.GetValue<double>(), 6); // subtype-named classes pair with labels
    }

    [Fact]
    public async Task UnknownOptionsAndMissingSetsAreReported()
    {
        await Assert.ThrowsAsync<CommandLineException>(() => EvalCommand.RunAsync(new CommandLine(["--voc", _root, "--bogus", "1"]), CancellationToken.None));
        await Assert.ThrowsAsync<CommandLineException>(() => EvalCommand.RunAsync(new CommandLine([]), CancellationToken.None));
        Assert.Equal(1, await EvalCommand.RunAsync(new CommandLine(["--voc", Path.Combine(_root, "none")]), CancellationToken.None));
    }
}
