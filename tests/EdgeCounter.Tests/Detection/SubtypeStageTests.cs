using EdgeCounter.Detection;
using OpenCvSharp;

namespace EdgeCounter.Tests.Detection;

public class SubtypeStageTests
{
    private const string StageSidecar = """
        {
          "name": "edgecounter-cellnet-subtypes", "version": "1.0.0",
          "input": { "name": "crop", "layout": "NCHW", "colour": "RGB", "range": [0, 1], "size": 96, "context": 1.5, "outside": "black" },
          "output": "probabilities",
          "classes": ["neutrophil", "eosinophil", "basophil", "lymphocyte", "monocyte", "ig", "erythroblast", "platelet"],
          "differential": ["neutrophil", "eosinophil", "basophil", "lymphocyte", "monocyte"],
          "unidentifiedBelow": 0.6,
          "temperature": 1.3
        }
        """;

    private static SubtypeStageLabels Parse(string json)
    {
        var path = Path.Combine(Path.GetTempPath(), $"stage-{Guid.NewGuid():N}.labels.json");
        File.WriteAllText(path, json);
        try { return SubtypeStageLabels.Load(path); }
        finally { File.Delete(path); }
    }

    [Fact]
    public void ParsesTheStageSidecar()
    {
        var s = Parse(StageSidecar);
        Assert.Equal(96, s.Size);
        Assert.Equal(1.5, s.Context);
        Assert.Equal(8, s.Classes.Count);
        Assert.Equal(["neutrophil", "eosinophil", "basophil", "lymphocyte", "monocyte"], s.Differential);
        Assert.Equal(0.6f, s.UnidentifiedBelow);
        Assert.Equal("crop", s.InputName);
    }

    [Theory]
    [InlineData("\"differential\": [\"neutrophil\", \"band\"]", "'band', which is not one of the classes")]
    [InlineData("\"unidentifiedBelow\": 1.5", "unidentifiedBelow")]
    [InlineData("\"classes\": []", "\"classes\" is missing or empty")]
    public void RejectsABrokenSidecarNamingTheProblem(string replacement, string expected)
    {
        var key = replacement[..(replacement.IndexOf(':'))];
        var lines = StageSidecar.Split('\n').Select(l => l.TrimStart().StartsWith(key, StringComparison.Ordinal) ? "  " + replacement + (l.TrimEnd().EndsWith(',') ? "," : "") : l);
        var e = Assert.Throws<ModelLoadException>(() => Parse(string.Join('\n', lines)));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void ADetectorSidecarWithAStageAddsTheUnidentifiedLabel()
    {
        var json = ModelLabelsTests.ContractExample
            .Replace("\"labels\": [\"neutrophil\", \"eosinophil\", \"basophil\", \"lymphocyte\", \"monocyte\"] }",
                     "\"labels\": [\"neutrophil\", \"eosinophil\", \"basophil\", \"lymphocyte\", \"monocyte\"], \"stage\": \"cellnet-subtypes.onnx\" }")
            .Replace("\"differential\": [\"neutrophil\", \"eosinophil\", \"basophil\", \"lymphocyte\", \"monocyte\"]",
                     "\"differential\": [\"neutrophil\", \"eosinophil\", \"basophil\", \"lymphocyte\", \"monocyte\", \"unidentified\"]");
        var m = ModelLabels.Parse(json, "example");
        Assert.Equal("cellnet-subtypes.onnx", m.SubtypeStage);
        Assert.Equal(["neutrophil", "eosinophil", "basophil", "lymphocyte", "monocyte", "unidentified", "RBC", "Platelets"], m.Labels);
        Assert.Contains("unidentified", m.ToModelInfo().DifferentialLabels);
        // Without a stage, "unidentified" is no label: a differential naming it is refused.
        var without = json.Replace(", \"stage\": \"cellnet-subtypes.onnx\"", "");
        Assert.Contains("'unidentified', which is not a label", Assert.Throws<ModelLoadException>(() => ModelLabels.Parse(without, "example")).Message);
    }

    [Fact]
    public void TheCropIsTheBoxWithItsContextScaledToTheNetworkSizeAndBlackOutsideTheFrame()
    {
        // A white disc of radius 10 centred at (15, 40) on grey: its box (5, 30)-(25, 50), context 1.5 -> a 30 px square
        // from x 0 to 30: the crop's centre is the disc, and the crop reaches past the frame's left edge at context 2.
        using var frame = new Mat(100, 120, MatType.CV_8UC3, new Scalar(90, 90, 90));
        Cv2.Circle(frame, new Point(15, 40), 10, Scalar.White, -1, LineTypes.AntiAlias);
        using var crop = new Mat();
        SubtypeClassifier.CropCell(frame, new BoxF(5, 30, 25, 50), 1.5, 96, crop);
        Assert.Equal(new Size(96, 96), crop.Size());
        Assert.Equal(255, crop.At<Vec3b>(48, 48).Item0);
        Assert.Equal(90, crop.At<Vec3b>(2, 2).Item0); // the corner is the grey field, still inside the frame
        SubtypeClassifier.CropCell(frame, new BoxF(5, 30, 25, 50), 2.0, 96, crop);
        Assert.Equal(0, crop.At<Vec3b>(48, 1).Item0); // 40 px square from x -5: its left edge is outside the frame
        Assert.Equal(255, crop.At<Vec3b>(48, 48).Item0);
    }

    [Theory]
    [InlineData(new[] { 0.9f, 0.05f, 0, 0, 0.05f, 0, 0, 0 }, "neutrophil")]
    [InlineData(new[] { 0.1f, 0.05f, 0, 0.2f, 0.65f, 0, 0, 0 }, "monocyte")]
    [InlineData(new[] { 0.55f, 0.45f, 0, 0, 0, 0, 0, 0 }, "unidentified")] // not sure enough
    [InlineData(new[] { 0.1f, 0, 0, 0, 0, 0.1f, 0, 0.8f }, "unidentified")] // most like a platelet: never a silent guess
    public void ACellIsNamedOnlyWhenTheStageIsSureAndItIsOneOfTheDifferential(float[] probabilities, string expected)
    {
        Assert.Equal(expected, SubtypeClassifier.Decide(Parse(StageSidecar), probabilities));
    }

    [Theory]
    [InlineData(new[] { 0.05f, 0, 0, 0, 0, 0.9f, 0.05f, 0 }, "immature_granulocyte", "unidentified")]
    [InlineData(new[] { 0.05f, 0, 0, 0.1f, 0, 0, 0.85f, 0 }, "erythroblast", "unidentified")]
    [InlineData(new[] { 0.1f, 0, 0, 0, 0, 0.45f, 0.45f, 0 }, "unidentified", "unidentified")] // not sure enough either way
    [InlineData(new[] { 0.1f, 0, 0, 0, 0, 0.1f, 0, 0.8f }, "unidentified", "unidentified")] // a platelet clump is no precursor
    public void Precursors_are_named_only_when_asked_and_the_stage_is_sure(float[] probabilities, string named, string notNamed)
    {
        var stage = Parse(StageSidecar.Replace("\"temperature\": 1.3", "\"temperature\": 1.3, \"precursors\": {\"ig\": \"immature_granulocyte\", \"erythroblast\": \"erythroblast\"}"));
        Assert.Equal(named, SubtypeClassifier.Decide(stage with { NamePrecursors = true }, probabilities));
        Assert.Equal(notNamed, SubtypeClassifier.Decide(stage, probabilities));
        Assert.Equal(["immature_granulocyte", "erythroblast"], SubtypeClassifier.NamedPrecursors(stage with { NamePrecursors = true }));
        Assert.Empty(SubtypeClassifier.NamedPrecursors(stage));
    }

    [Fact]
    public void A_precursor_that_is_a_differential_class_or_takes_a_differential_label_is_refused()
    {
        var e = Assert.Throws<ModelLoadException>(() => Parse(StageSidecar.Replace("\"temperature\": 1.3", "\"temperature\": 1.3, \"precursors\": {\"ig\": \"neutrophil\"}")));
        Assert.Contains("precursors", e.Message);
        Assert.Throws<ModelLoadException>(() => Parse(StageSidecar.Replace("\"temperature\": 1.3", "\"temperature\": 1.3, \"precursors\": {\"monocyte\": \"promonocyte\"}")));
    }
}
