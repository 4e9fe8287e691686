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
[Collection(ModelCommandCollection.Name)]
public class EvalCommandTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("edgecounter-voc-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    /// <summary>Dataset name for a model class: plural "s" toggled, so automatic pairing has to work for it.</summary>
    private static string DatasetName(string modelClass) => modelClass.EndsWith('s') ? modelClass[..^1] : modelClass + "s";

    private (ModelLabels Labels, List<EdgeCounter.Detection.Detection> Truth) WriteVocSet(float truthThreshold, bool subtypeNames = false, string? labelsPath = null) =>
        WriteVocSet(_root, truthThreshold, subtypeNames, labelsPath: labelsPath);

    /// <summary>The parity field (a simulator crop), or a plain one when the fixture is missing.</summary>
    internal static Mat Field()
    {
        var parity = Path.Combine(RealModel.ParityDirectory, "input.png");
        return File.Exists(parity) ? Cv2.ImRead(parity) : new Mat(300, 400, MatType.CV_8UC3, new Scalar(220, 210, 230));
    }

    /// <param name="modelNames">Name the objects by the model's classes (WBC, RBC) instead of <see cref="DatasetName"/>.</param>
    /// <param name="labelsPath">The sidecar the truth is decoded with (default: the model's): a subtype stage labels
    /// the white cells above its operating thresholds.</param>
    internal static (ModelLabels Labels, List<EdgeCounter.Detection.Detection> Truth) WriteVocSet(string root, float truthThreshold, bool subtypeNames = false, bool modelNames = false, string? labelsPath = null)
    {
        Func<string, string> name = modelNames ? c => c : DatasetName;
        var labels = ModelLabels.Load(RealModel.LabelsPath);
        Directory.CreateDirectory(Path.Combine(root, "Annotations"));
        Directory.CreateDirectory(Path.Combine(root, "JPEGImages"));
        using var field = Field();
        Cv2.ImWrite(Path.Combine(root, "JPEGImages", "field.png"), field);

        // Decoded as eval decodes (score floor: maxDetections per class), the 20 best boxes of each class:
        // fewer than COCO's 100 per image and class, so recall can reach 1.
        using var detector = RealModel.Load(o => { o.EvaluationScoreFloor = truthThreshold; if (labelsPath is not null) o.LabelsPath = labelsPath; });
        var truth = detector.Detect(field).Detections.GroupBy(d => d.Class).SelectMany(g => g.OrderByDescending(d => d.Score).Take(20)).ToList();
        string F(float v) => v.ToString(CultureInfo.InvariantCulture);
        var objects = truth.Select(d => new XElement("object", new XElement("name", subtypeNames && d.Class == labels.SubtypeOf ? d.Label : name(d.Class)),
            new XElement("bndbox", new XElement("xmin", F(d.Box.X1)), new XElement("ymin", F(d.Box.Y1)),
                new XElement("xmax", F(d.Box.X2)), new XElement("ymax", F(d.Box.Y2))))).ToList();
        // A degenerate box: skipped with a warning, not counted.
        objects.Add(new XElement("object", new XElement("name", name(labels.Classes[0])),
            new XElement("bndbox", new XElement("xmin", 10), new XElement("ymin", 10), new XElement("xmax", 10), new XElement("ymax", 30))));
        new XElement("annotation", new XElement("filename", "field.png"),
            new XElement("size", new XElement("width", field.Cols), new XElement("height", field.Rows)), objects)
            .Save(Path.Combine(root, "Annotations", "field.xml"));
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
        // Operating thresholds as low as the truth's, so every white cell of the truth is "detected" (and named by
        // the subtype stage, when the model has one, as eval names it).
        var sidecar = JsonNode.Parse(File.ReadAllText(RealModel.LabelsPath))!;
        foreach (var c in ModelLabels.Load(RealModel.LabelsPath).Classes) sidecar["scoreThresholds"]![c] = 0.02;
        var labelsPath = Path.Combine(_root, "low.labels.json");
        File.WriteAllText(labelsPath, sidecar.ToJsonString());
        var (labels, truth) = WriteVocSet(truthThreshold: 0.02f, subtypeNames: true, labelsPath: labelsPath);
        var white = truth.Where(d => d.Class == labels.SubtypeOf && d.Label != ModelLabels.UnidentifiedLabel).ToList();
        Assert.NotEmpty(white);
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

    private static async Task<JsonNode> EvalJsonAsync(string json, params string[] args)
    {
        var rc = await EvalCommand.RunAsync(new CommandLine([.. args, "--model", RealModel.ModelPath, "--provider", "cpu", "--json", json]), CancellationToken.None);
        Assert.Equal(0, rc);
        return JsonNode.Parse(File.ReadAllText(json))!;
    }

    [RequiresModelFact]
    public async Task OnlyKeepsTheNamedClassesFiguresAndEveryClassHasItsCountError()
    {
        var (labels, truth) = WriteVocSet(truthThreshold: 0.02f);
        var all = await EvalJsonAsync(Path.Combine(_root, "all.json"), "--voc", _root);
        // What the service would count on this field: the detector at its operating thresholds.
        using var field = Field();
        using var detector = RealModel.Load();
        var counted = detector.Detect(field).Detections.GroupBy(d => d.Class).ToDictionary(g => g.Key, g => g.Count());
        foreach (var cls in truth.Select(d => d.Class).Distinct())
        {
            var perClass = all["perClass"]![DatasetName(cls)]!;
            var truthCount = truth.Count(d => d.Class == cls);
            Assert.Equal(CountError.Percent(counted.GetValueOrDefault(cls), truthCount), perClass["countErrorPct"]!.GetValue<double>(), 4);
            Assert.Equal(100.0 * (perClass["truePositives"]!.GetValue<int>() + perClass["falsePositives"]!.GetValue<int>() - truthCount) / truthCount,
                perClass["countErrorPct"]!.GetValue<double>(), 4);
            // Recall split by the image's edge: the two parts hold every labelled cell and every hit.
            var cut = perClass["cutByFrame"]!;
            var whole = perClass["whole"]!;
            Assert.Equal(truthCount, cut["groundTruth"]!.GetValue<int>() + whole["groundTruth"]!.GetValue<int>());
            static int Found(JsonNode part) => part["recall"] is { } r ? (int)Math.Round(r.GetValue<double>() * part["groundTruth"]!.GetValue<int>()) : 0;
            Assert.Equal(perClass["truePositives"]!.GetValue<int>(), Found(cut) + Found(whole));
        }

        var kept = DatasetName(truth[0].Class);
        var only = await EvalJsonAsync(Path.Combine(_root, "only.json"), "--voc", _root, "--only", kept.ToUpperInvariant());
        var onlyClasses = only["perClass"]!.AsObject();
        Assert.Equal([kept], onlyClasses.Select(p => p.Key));   // the set's own spelling
        foreach (var key in new[] { "AP50", "recall", "precision", "countErrorPct", "groundTruth" })
            Assert.Equal(all["perClass"]![kept]![key]!.GetValue<double>(), onlyClasses[kept]![key]!.GetValue<double>(), 6);
        Assert.Equal(onlyClasses[kept]!["AP50"]!.GetValue<double>(), only["AP50"]!.GetValue<double>(), 6);   // the mean is over the kept class

        var e = await Assert.ThrowsAsync<CommandLineException>(() => EvalCommand.RunAsync(
            new CommandLine(["--voc", _root, "--model", RealModel.ModelPath, "--provider", "cpu", "--only", "Megakaryocyte"]), CancellationToken.None));
        Assert.Contains("Megakaryocyte", e.Message);
    }

    /// <summary>A point set of the field: one point at the centre of each red cell the detector reports (types 0 and 1
    /// by turns), and one (type 2) where no red-cell box is, even at the lowest score.</summary>
    internal static (int Points, int Found) WritePointSet(string root)
    {
        Directory.CreateDirectory(Path.Combine(root, "images"));
        Directory.CreateDirectory(Path.Combine(root, "points"));
        Directory.CreateDirectory(Path.Combine(root, "splits"));
        using var field = Field();
        Cv2.ImWrite(Path.Combine(root, "images", "7.png"), field);
        using var detector = RealModel.Load();
        using var low = RealModel.Load(o => o.EvaluationScoreFloor = 0.01f);
        var red = detector.Detect(field).Detections.Where(d => d.Class == "RBC").ToList();
        var anyRed = low.Detect(field).Detections.Where(d => d.Class == "RBC").ToList();
        var lines = red.Select((d, i) => FormattableString.Invariant($"{d.Box.CenterX} {d.Box.CenterY} {i % 2}")).ToList();
        var empty = Enumerable.Range(0, field.Cols / 4).SelectMany(x => Enumerable.Range(0, field.Rows / 4).Select(y => (X: x * 4f, Y: y * 4f)))
            .First(p => anyRed.All(d => p.X < d.Box.X1 || p.X > d.Box.X2 || p.Y < d.Box.Y1 || p.Y > d.Box.Y2));
        lines.Add(FormattableString.Invariant($"{empty.X} {empty.Y} 2"));
        File.WriteAllLines(Path.Combine(root, "points", "7.txt"), lines);
        File.WriteAllLines(Path.Combine(root, "splits", "test.txt"), ["7"]);
        return (red.Count + 1, red.Count);
    }

    [RequiresModelFact]
    public async Task PointsAreFoundInsideRedCellBoxesAndOnlyRecallIsReported()
    {
        var (points, found) = WritePointSet(_root);
        Assert.True(found >= 2, $"{found} red cells on the field");
        var report = await EvalJsonAsync(Path.Combine(_root, "points.json"), "--points", _root, "--only", "RBC");
        Assert.Equal("test", report["dataset"]!["split"]!.GetValue<string>());
        var rbc = report["perClass"]!["RBC"]!;
        Assert.Equal(points, rbc["points"]!.GetValue<int>());
        Assert.Equal(found, rbc["found"]!.GetValue<int>());
        Assert.Equal((double)found / points, rbc["recall"]!.GetValue<double>(), 6);
        Assert.Equal((double)found / points, rbc["maxRecall"]!.GetValue<double>(), 6);   // the empty spot has no box at any score
        Assert.Null(rbc["countErrorPct"]);
        Assert.Null(rbc["precision"]);
        Assert.Contains("not defined", report["note"]!.GetValue<string>());
        var perType = report["perType"]!;
        Assert.Equal(1.0, perType["normal"]!["recall"]!.GetValue<double>());
        Assert.Equal(found / 2, perType["macrocyte"]!["points"]!.GetValue<int>());
        Assert.Equal(0.0, perType["microcyte"]!["recall"]!.GetValue<double>());

        await Assert.ThrowsAsync<CommandLineException>(() => EvalCommand.RunAsync(
            new CommandLine(["--points", _root, "--model", RealModel.ModelPath, "--provider", "cpu", "--only", "WBC"]), CancellationToken.None));
        await Assert.ThrowsAsync<CommandLineException>(() => EvalCommand.RunAsync(
            new CommandLine(["--points", _root, "--model", RealModel.ModelPath, "--provider", "cpu", "--point-class", "Erythroblast"]), CancellationToken.None));
    }

    /// <summary>A crop set from simulator fields: crop A (the detector calls it subtype a) in a/ and, against the truth,
    /// in b/; crop B (subtype b) in b/ and in ig/ (a class the model does not know); a blank crop in a/.</summary>
    internal static (string A, string B) WriteCropSet(string root)
    {
        using var detector = RealModel.Load();
        var labels = detector.Labels;
        var crops = new Dictionary<string, Mat>();
        using var fields = new EdgeCounter.Simulation.SyntheticFields(3, EdgeCounter.Simulation.SlideProfile.Blood, 640, 480);
        for (var i = 0; i < 40 && crops.Count < 2; i++)
        {
            using var field = fields.Render(i, out _);
            foreach (var white in detector.Detect(field).Detections.Where(d => d.Class == labels.SubtypeOf))
            {
                var x = (int)Math.Clamp(white.Box.CenterX - 100, 0, field.Cols - 200);
                var y = (int)Math.Clamp(white.Box.CenterY - 100, 0, field.Rows - 200);
                var crop = new Mat(field, new Rect(x, y, 200, 200)).Clone();
                var cell = CropDataset.CellNearestCentre(detector.Detect(crop).Detections.Where(d => d.Score >= labels.ScoreThresholds[labels.SubtypeClassIndex]), labels.SubtypeOf!, 200, 200);
                if (cell is null || crops.ContainsKey(cell.Label)) { crop.Dispose(); continue; }
                crops[cell.Label] = crop;
                if (crops.Count == 2) break;
            }
        }
        Assert.True(crops.Count == 2, "simulator fields with white cells of two subtypes");
        var (a, b) = (crops.Keys.First(), crops.Keys.Last());
        void Write(string cls, string file, Mat image) { Directory.CreateDirectory(Path.Combine(root, cls)); Cv2.ImWrite(Path.Combine(root, cls, file), image); }
        Write(a, "1.png", crops[a]);
        Write(b, "2.png", crops[a]);
        Write(b, "3.png", crops[b]);
        Write("ig", "4.png", crops[b]);
        using (var blank = new Mat(200, 200, MatType.CV_8UC3, new Scalar(225, 215, 235))) Write(a, "5.png", blank);
        foreach (var m in crops.Values) m.Dispose();
        return (a, b);
    }

    [RequiresModelFact]
    public async Task CropsGiveSubtypeAccuracyOverDecidedAndAllCropsAndUnidentifiedIsNotWrong()
    {
        var (a, b) = WriteCropSet(_root);
        // The crops are at the model's scale (cut from simulator fields): no estimate, so the accounting is exact.
        var report = await EvalJsonAsync(Path.Combine(_root, "crops.json"), "--crops", _root, "--input-scale", "1");
        Assert.Equal("configured", report["scale"]!["source"]!.GetValue<string>());
        var s = report["subtypes"]!;
        Assert.Equal(4, s["crops"]!.GetValue<int>());            // the ig crop is not one of them
        Assert.Equal(3, s["decided"]!.GetValue<int>());
        Assert.Equal(2.0 / 3, s["accuracy"]!.GetValue<double>(), 6);
        Assert.Equal(2.0 / 4, s["accuracyAllCrops"]!.GetValue<double>(), 6);
        Assert.Equal(1, s["noWhiteCell"]!.GetValue<int>());
        Assert.Equal(0.0, s["unidentifiedRate"]!.GetValue<double>());
        Assert.Equal(0.5, s["recall"]![a]!.GetValue<double>());
        Assert.Equal(0.5, s["recall"]![b]!.GetValue<double>());
        Assert.Equal(1, report["otherClasses"]!["ig"]!["crops"]!.GetValue<int>());
        Assert.Equal(1, report["otherClasses"]!["ig"]!["predicted"]![b]!.GetValue<int>());
        // Called a: crops 1 and 2 (of a's two crops, one blank) -> +0 %; called b: crops 3 and ig's -> +0 % of b's two.
        Assert.Equal(0.0, report["perClass"]![a]!["countErrorPct"]!.GetValue<double>(), 6);
        Assert.Equal(0.0, report["perClass"]![b]!["countErrorPct"]!.GetValue<double>(), 6);

        // Without a scale given, crops are measured as the service sees them: the scale comes from their red cells.
        var automatic = await EvalJsonAsync(Path.Combine(_root, "auto.json"), "--crops", _root);
        Assert.StartsWith("estimat", automatic["scale"]!["source"]!.GetValue<string>());

        // A subtype stage unsure of crop A: the model's subtype a renamed "unidentified" in its sidecar. Crop A in b/
        // is no longer a wrong subtype but an unidentified cell; folder a/ no longer names a subtype.
        var sidecar = JsonNode.Parse(File.ReadAllText(RealModel.LabelsPath))!;
        sidecar["subtypes"]!.AsObject().Remove("stage"); // the subtype head plays the unsure stage here
        foreach (var group in sidecar["groups"]!.AsObject().Select(g => g.Value!.AsArray()).Append(sidecar["differential"]!.AsArray()))
            for (var i = group.Count - 1; i >= 0; i--) if (group[i]!.GetValue<string>() == ModelLabels.UnidentifiedLabel) group.RemoveAt(i);
        var subtypeLabels = sidecar["subtypes"]!["labels"]!.AsArray();
        var index = subtypeLabels.Select(n => n!.GetValue<string>()).ToList().IndexOf(a);
        subtypeLabels[index] = ModelLabels.UnidentifiedLabel;
        foreach (var group in sidecar["groups"]!.AsObject().Select(g => g.Value!.AsArray()))
            for (var i = 0; i < group.Count; i++) if (group[i]!.GetValue<string>() == a) group[i] = ModelLabels.UnidentifiedLabel;
        var differential = sidecar["differential"]!.AsArray();
        for (var i = 0; i < differential.Count; i++) if (differential[i]!.GetValue<string>() == a) differential[i] = ModelLabels.UnidentifiedLabel;
        var unsure = Path.Combine(_root, "unsure.labels.json");
        File.WriteAllText(unsure, sidecar.ToJsonString());
        var second = await EvalJsonAsync(Path.Combine(_root, "unsure.json"), "--crops", _root, "--labels", unsure, "--input-scale", "1");
        var u = second["subtypes"]!;
        Assert.Equal(2, u["crops"]!.GetValue<int>());
        Assert.Equal(1, u["unidentified"]!.GetValue<int>());
        Assert.Equal(0.5, u["unidentifiedRate"]!.GetValue<double>());
        Assert.Equal(1.0, u["accuracy"]!.GetValue<double>());
        Assert.Equal(0.5, u["accuracyAllCrops"]!.GetValue<double>());
        Assert.Equal(2, second["otherClasses"]![a]!["crops"]!.GetValue<int>());
    }

    [RequiresModelFact]
    public async Task TheSuiteRunsEverySetThatIsThereIntoOneTable()
    {
        var datasets = Path.Combine(_root, "datasets");
        var bccd = Path.Combine(datasets, "bccd");
        WriteVocSet(bccd, truthThreshold: 0.02f);
        Directory.CreateDirectory(Path.Combine(bccd, "ImageSets", "Main"));
        File.WriteAllLines(Path.Combine(bccd, "ImageSets", "Main", "test.txt"), ["field"]);
        WriteVocSet(Path.Combine(datasets, "draaslan"), truthThreshold: 0.02f, modelNames: true);
        WritePointSet(Path.Combine(datasets, "chula-rbc12"));
        WriteCropSet(Path.Combine(datasets, "lisc-crops"));
        var json = Path.Combine(_root, "suite.json");
        var markdown = Path.Combine(_root, "suite.md");
        var args = new[] { "--suite", "--datasets", datasets, "--synthetic-fields", "2", "--model", RealModel.ModelPath, "--provider", "cpu", "--json", json, "--markdown", markdown };
        Assert.Equal(0, await EvalCommand.RunAsync(new CommandLine(args), CancellationToken.None));

        var rows = JsonNode.Parse(File.ReadAllText(json))!["rows"]!.AsArray();
        Assert.Equal(["BCCD test", "BCCD test", "draaslan all", "Chula RBC-12 test", "LISC crops", "SegPC-2021 val", "SegPC-2021 val", "simulator, held out",
                "simulator marrow, held out (synthetic fields only)"],
            rows.Select(r => r!["set"]!.GetValue<string>()));
        Assert.Equal(0.75, rows[0]!["report"]!["model"]!["inputScale"]!.GetValue<double>());
        Assert.StartsWith("estimat", rows[1]!["report"]!["scale"]!["source"]!.GetValue<string>());   // automatic: estimating or estimated
        Assert.Equal(["WBC", "RBC"], rows[2]!["report"]!["perClass"]!.AsObject().Select(p => p.Key).Order().Reverse());
        Assert.Equal("points", rows[3]!["report"]!["kind"]!.GetValue<string>());
        Assert.Equal("crops", rows[4]!["report"]!["kind"]!.GetValue<string>());
        // The shipped (blood) model has no plasma_cell class: the marrow rows say so instead of running.
        foreach (var k in new[] { 5, 6, 8 }) Assert.Contains("plasma_cell", rows[k]!["problem"]!.GetValue<string>());
        Assert.Equal(2, rows[7]!["report"]!["dataset"]!["images"]!.GetValue<int>());
        var table = File.ReadAllText(markdown);
        Assert.Contains("| set | options | images | mAP50 | AP50 | recall | count error | subtypes | µm/px |", table);
        Assert.Contains("| draaslan all | `--auto-scale --only WBC,RBC` | 1 |", table);
        Assert.Contains("| simulator, held out | `synth --fields 2 --seed 99 --wbc-label merged; eval unresized` | 2 |", table);

        Directory.Delete(Path.Combine(datasets, "draaslan"), recursive: true);   // a set that is not there fails the suite, the rest still runs
        Assert.Equal(1, await EvalCommand.RunAsync(new CommandLine(args), CancellationToken.None));
        Assert.Contains("not found", JsonNode.Parse(File.ReadAllText(json))!["rows"]![2]!["problem"]!.GetValue<string>());
        await Assert.ThrowsAsync<CommandLineException>(() => EvalCommand.RunAsync(new CommandLine(["--suite", "--only", "RBC"]), CancellationToken.None));
    }

    [Fact]
    public async Task UnknownOptionsAndMissingSetsAreReported()
    {
        await Assert.ThrowsAsync<CommandLineException>(() => EvalCommand.RunAsync(new CommandLine(["--voc", _root, "--bogus", "1"]), CancellationToken.None));
        await Assert.ThrowsAsync<CommandLineException>(() => EvalCommand.RunAsync(new CommandLine([]), CancellationToken.None));
        Assert.Equal(1, await EvalCommand.RunAsync(new CommandLine(["--voc", Path.Combine(_root, "none")]), CancellationToken.None));
        Assert.Equal(1, await EvalCommand.RunAsync(new CommandLine(["--points", Path.Combine(_root, "none")]), CancellationToken.None));
        Assert.Equal(1, await EvalCommand.RunAsync(new CommandLine(["--crops", Path.Combine(_root, "none")]), CancellationToken.None));
        await Assert.ThrowsAsync<CommandLineException>(() => EvalCommand.RunAsync(new CommandLine(["--voc", _root, "--crops", _root]), CancellationToken.None));
        await Assert.ThrowsAsync<CommandLineException>(() => EvalCommand.RunAsync(new CommandLine(["--voc", _root, "--auto-scale", "--input-scale", "2"]), CancellationToken.None));
    }
}
