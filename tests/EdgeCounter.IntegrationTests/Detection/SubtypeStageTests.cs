using System.Text.Json;
using EdgeCounter.Detection;
using Microsoft.Extensions.Logging.Abstractions;
using OpenCvSharp;

namespace EdgeCounter.IntegrationTests.Detection;

/// <summary>
/// The shipped white-cell subtype stage (models/cellnet-subtypes.onnx): the C# crop and ONNX Runtime agree with
/// PyTorch on the recipe's fixture (tests/fixtures/parity-subtypes, written by models/training/subtypes.py), and the
/// detector's white cells carry the stage's verdict.
/// </summary>
public class SubtypeStageTests
{
    private static string StageModel => Path.Combine(RealModel.RepositoryRoot ?? ".", "models", "cellnet-subtypes.onnx");
    private static string Fixture => Path.Combine(RealModel.RepositoryRoot ?? ".", "tests", "fixtures", "parity-subtypes");

    private static SubtypeClassifier LoadStage() =>
        new(StageModel, SubtypeStageLabels.Load(DetectorOptions.DefaultLabelsPath(StageModel)), ExecutionProviderPreference.Cpu, 2, allowSpinning: false, cpuMemoryArena: true, NullLogger.Instance);

    [RequiresModelFact]
    public void ProbabilitiesMatchPyTorchOnTheFixtureIncludingACropReachingPastTheImage()
    {
        using var reference = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixture, "reference.json")));
        var root = reference.RootElement;
        using var stage = LoadStage();
        Assert.Equal(root.GetProperty("classes").EnumerateArray().Select(e => e.GetString()!), stage.Labels.Classes);
        using var image = Cv2.ImRead(Path.Combine(Fixture, "input.png"), ImreadModes.Color);
        var boxes = root.GetProperty("boxes").EnumerateArray()
            .Select(b => b.EnumerateArray().Select(v => v.GetSingle()).ToArray())
            .Select(b => new BoxF(b[0], b[1], b[2], b[3])).ToList();
        Assert.Contains(boxes, b => b.X1 < 0 || b.Y1 < 0); // the fixture's crop reaches past the image: black there
        var probabilities = stage.Probabilities(image, boxes).ToArray();
        var expected = root.GetProperty("probabilities").EnumerateArray().SelectMany(r => r.EnumerateArray().Select(v => v.GetSingle())).ToArray();
        Assert.Equal(expected.Length, probabilities.Length);
        for (var i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - probabilities[i]) < 2e-3f, $"probability {i}: PyTorch {expected[i]}, C# {probabilities[i]}");
        for (var k = 0; k < boxes.Count; k++)
            Assert.Equal(1f, probabilities.AsSpan(k * stage.Labels.Classes.Count, stage.Labels.Classes.Count).ToArray().Sum(), 3);
    }

    [RequiresModelFact]
    public void ManyCellsRunInBoundedBatchesWithTheSameProbabilitiesAsOneAtATime()
    {
        using var stage = LoadStage();
        using var image = Cv2.ImRead(Path.Combine(Fixture, "input.png"), ImreadModes.Color);
        var classes = stage.Labels.Classes.Count;
        // More cells than one batch holds, and not a multiple of it: a crowded marrow field.
        var boxes = Enumerable.Range(0, 2 * SubtypeClassifier.MaxBatch + 3)
            .Select(i => new BoxF(8 + 9 * (i % 7), 6 + 11 * (i / 7), 48 + 9 * (i % 7), 50 + 11 * (i / 7))).ToList();
        var together = stage.Probabilities(image, boxes).ToArray();
        Assert.Equal(boxes.Count * classes, together.Length);
        for (var k = 0; k < boxes.Count; k++)
        {
            var alone = stage.Probabilities(image, [boxes[k]]).ToArray();
            for (var c = 0; c < classes; c++)
                Assert.True(Math.Abs(alone[c] - together[k * classes + c]) < 1e-4f, $"cell {k}, class {c}: alone {alone[c]}, in the batch {together[k * classes + c]}");
        }
    }

    /// <summary>A temporary folder with the shipped detector, the stage (its sidecar edited by <paramref name="editStage"/>)
    /// and a copy of the detector's sidecar that names the stage.</summary>
    private static (string Folder, string Model) ModelFolderWithStage(Action<System.Text.Json.Nodes.JsonNode>? editStage = null)
    {
        var folder = Directory.CreateTempSubdirectory("stage-").FullName;
        var model = Path.Combine(folder, "cellnet.onnx");
        File.Copy(RealModel.ModelPath, model);
        File.Copy(StageModel, Path.Combine(folder, "cellnet-subtypes.onnx"));
        var stageSidecar = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(DetectorOptions.DefaultLabelsPath(StageModel)))!;
        editStage?.Invoke(stageSidecar);
        File.WriteAllText(Path.Combine(folder, "cellnet-subtypes.labels.json"), stageSidecar.ToJsonString());
        var sidecar = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(RealModel.LabelsPath))!;
        sidecar["subtypes"]!["stage"] = "cellnet-subtypes.onnx";
        File.WriteAllText(DetectorOptions.DefaultLabelsPath(model), sidecar.ToJsonString());
        return (folder, model);
    }

    [RequiresModelFact]
    public void AModelThatNamesTheStageLabelsItsWhiteCellsWithTheStagesVerdict()
    {
        // The shipped detector with a copy of its sidecar that names the stage (so this holds whichever sidecar ships).
        var (folder, model) = ModelFolderWithStage();
        try
        {

            using var field = Cv2.ImRead(Path.Combine(RealModel.ParityDirectory, "input.png"), ImreadModes.Color);
            using var withStage = new OnnxCellDetector(new DetectorOptions { ModelPath = model, ExecutionProvider = ExecutionProviderPreference.Cpu, IntraOpThreads = 2 }, NullLogger.Instance);
            using var headOnly = new OnnxCellDetector(new DetectorOptions { ModelPath = model, ExecutionProvider = ExecutionProviderPreference.Cpu, IntraOpThreads = 2, UseSubtypeStage = false }, NullLogger.Instance);
            Assert.NotNull(withStage.SubtypeStage);
            Assert.Null(headOnly.SubtypeStage);
            Assert.Contains(ModelLabels.UnidentifiedLabel, withStage.Model.Labels);

            var cells = withStage.Detect(field).Detections.Where(d => d.Class == "WBC").ToList();
            var headCells = headOnly.Detect(field).Detections.Where(d => d.Class == "WBC").ToList();
            Assert.NotEmpty(cells);
            Assert.Equal(headCells.Select(d => d.Box), cells.Select(d => d.Box)); // the stage changes labels, never boxes
            using var stage = LoadStage();
            var probabilities = stage.Probabilities(field, cells.Select(d => d.Box).ToList()).ToArray();
            var k = stage.Labels.Classes.Count;
            for (var i = 0; i < cells.Count; i++)
                Assert.Equal(SubtypeClassifier.Decide(stage.Labels, probabilities.AsSpan(i * k, k)), cells[i].Label);
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    [RequiresModelFact]
    public void AStageNamingASubtypeTheDetectorDoesNotKnowIsRefusedAtLoad()
    {
        var (folder, model) = ModelFolderWithStage(stageSidecar =>
        {
            stageSidecar["classes"]![0] = "band";
            stageSidecar["differential"]![0] = "band";
        });
        try
        {
            var e = Assert.Throws<ModelLoadException>(() => new OnnxCellDetector(new DetectorOptions { ModelPath = model, ExecutionProvider = ExecutionProviderPreference.Cpu }, NullLogger.Instance));
            Assert.Contains("'band', which is not a subtype", e.Message);
        }
        finally { Directory.Delete(folder, recursive: true); }
    }
}
