using EdgeCounter.Detection;

namespace EdgeCounter.Tests.Detection;

public class ModelLabelsTests
{
    // The sidecar example of docs/model-contract.md.
    internal const string ContractExample = """
        {
          "name": "edgecounter-cellnet",
          "version": "1.0.0",
          "input": { "name": "image", "layout": "NCHW", "colour": "RGB", "range": [0, 1],
                     "sizeMultiple": 32, "micrometresPerPixel": 0.1, "stride": 4 },
          "classes": ["WBC", "RBC", "Platelets"],
          "subtypes": { "of": "WBC", "labels": ["neutrophil", "eosinophil", "basophil", "lymphocyte", "monocyte"] },
          "groups": {
            "WBC": ["neutrophil", "eosinophil", "basophil", "lymphocyte", "monocyte"],
            "granulocyte": ["neutrophil", "eosinophil", "basophil"]
          },
          "differential": ["neutrophil", "eosinophil", "basophil", "lymphocyte", "monocyte"],
          "scoreThresholds": { "WBC": 0.3, "RBC": 0.35, "Platelets": 0.4 },
          "nmsIou": 0.5,
          "crossClassIou": 0.5,
          "crossClassOf": ["WBC", "RBC"],
          "containment": 0.8,
          "partsOf": ["WBC"],
          "minSizeOfRedCell": { "WBC": 0.5 },
          "maxDetections": 300,
          "testScales": [1.0, 1.15, 1.3],
          "redCellDiameterPx": 85.7
        }
        """;

    [Fact]
    public void A_model_with_its_own_licence_says_so_and_one_without_has_none()
    {
        Assert.Null(ModelLabels.Parse(ContractExample, "example").Licence);
        var marrow = ContractExample.Replace("\"version\": \"1.0.0\",", "\"version\": \"1.0.0\", \"licence\": \"CC BY-NC-SA 4.0 (SegPC-2021)\",");
        Assert.Equal("CC BY-NC-SA 4.0 (SegPC-2021)", ModelLabels.Parse(marrow, "marrow").Licence);
        Assert.Null(ModelLabels.Parse(ContractExample.Replace("\"version\": \"1.0.0\",", "\"version\": \"1.0.0\", \"licence\": \" \","), "blank").Licence);
    }

    [Fact]
    public void ParsesTheContractExample()
    {
        var m = ModelLabels.Parse(ContractExample, "example");
        Assert.Equal("edgecounter-cellnet", m.Name);
        Assert.Equal(["WBC", "RBC", "Platelets"], m.Classes);
        Assert.Equal("WBC", m.SubtypeOf);
        Assert.Equal(0, m.SubtypeClassIndex);
        Assert.Equal(4, m.Stride);
        Assert.Equal(32, m.SizeMultiple);
        Assert.Equal(0.1, m.MicrometresPerPixel);
        Assert.Equal([0.3f, 0.35f, 0.4f], m.ScoreThresholds);
        Assert.Equal(300, m.MaxDetections);
        Assert.Equal(0.5f, m.CrossClassIou);
        Assert.Equal([true, true, false], m.CrossClassOf!);
        Assert.Equal(0.8f, m.Containment);
        Assert.Equal([true, false, false], m.PartsOf!);
        Assert.Equal([0.5f, 0f, 0f], m.MinSizeOfRedCell!);
        Assert.Equal([1.0, 1.15, 1.3], m.TestScales);
        Assert.Equal("RBC", m.RedCellClass);       // no redCellClass: the class named RBC
        Assert.Equal(85.7, m.RedCellDiameterPx);
        // Labels: the subtype class is replaced by its subtypes, in place.
        Assert.Equal(["neutrophil", "eosinophil", "basophil", "lymphocyte", "monocyte", "RBC", "Platelets"], m.Labels);
        var info = m.ToModelInfo();
        Assert.Equal(["neutrophil", "eosinophil", "basophil"], info.Groups["granulocyte"]);
        Assert.Equal(5, info.DifferentialLabels.Count);
    }

    [Theory]
    [InlineData("\"partsOf\": [\"WBC\"]", "\"partsOf\": [\"lobe\"]", "\"partsOf\" names 'lobe', which is not a class")]
    [InlineData("\"containment\": 0.8,", "", "\"partsOf\" needs \"containment\"")]
    public void A_partsOf_that_names_no_class_or_has_no_containment_is_refused(string from, string to, string message)
    {
        var e = Assert.Throws<ModelLoadException>(() => ModelLabels.Parse(ContractExample.Replace(from, to), "example"));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void WithoutTestScalesTheGraphIsOnePass()
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(ContractExample)!.AsObject();
        Assert.True(node.Remove("testScales"));
        var json = node.ToJsonString();
        Assert.Equal([1.0], ModelLabels.Parse(json, "example").TestScales);
    }

    [Fact]
    public void WithoutOneCellRulesClassesNeverSuppressEachOther()
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(ContractExample)!.AsObject();
        Assert.True(node.Remove("crossClassIou"));
        Assert.True(node.Remove("crossClassOf"));
        Assert.True(node.Remove("containment"));
        Assert.True(node.Remove("partsOf"));
        Assert.True(node.Remove("minSizeOfRedCell"));
        var m = ModelLabels.Parse(node.ToJsonString(), "example");
        Assert.Null(m.CrossClassIou);
        Assert.Null(m.CrossClassOf);
        Assert.Null(m.Containment);
        Assert.Null(m.PartsOf);
        Assert.Null(m.MinSizeOfRedCell);
    }

    [Fact]
    public void TheRedCellRulerDefaultsTo75MicrometresAtTheModelScaleAndFollowsANamedClass()
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(ContractExample)!.AsObject();
        Assert.True(node.Remove("redCellDiameterPx"));
        node["input"]!["micrometresPerPixel"] = 0.2;
        var m = ModelLabels.Parse(node.ToJsonString(), "example");
        Assert.Equal(ModelLabels.TypicalRedCellMicrometres / 0.2, m.RedCellDiameterPx, 9);   // 7.5 µm at 0.2 µm/px
        node["redCellClass"] = "platelets";
        Assert.Equal("Platelets", ModelLabels.Parse(node.ToJsonString(), "example").RedCellClass); // the class's own spelling
        var noRbc = ContractExample.Replace("\"RBC\"", "\"Erythrocyte\"").Replace("\"minSizeOfRedCell\": { \"WBC\": 0.5 },", "");
        Assert.Null(ModelLabels.Parse(noRbc, "example").RedCellClass);                    // no ruler: no calibration
    }

    [Fact]
    public void TheSizeRuleNeedsARedCellToMeasureAgainst()
    {
        var noRbc = ContractExample.Replace("\"RBC\"", "\"Erythrocyte\"");
        var e = Assert.Throws<ModelLoadException>(() => ModelLabels.Parse(noRbc, "example"));
        Assert.Contains("minSizeOfRedCell", e.Message);
        var node = System.Text.Json.Nodes.JsonNode.Parse(noRbc)!.AsObject();
        node["redCellClass"] = "Erythrocyte";
        Assert.Equal([0.5f, 0f, 0f], ModelLabels.Parse(node.ToJsonString(), "example").MinSizeOfRedCell!);
    }

    [Fact]
    public void NamesMatchIgnoringCaseAndKeepTheirDeclaredSpelling()
    {
        var json = ContractExample.Replace("\"of\": \"WBC\"", "\"of\": \"wbc\"")
            .Replace("\"granulocyte\": [\"neutrophil\"", "\"granulocyte\": [\"Neutrophil\"")
            .Replace("\"differential\": [\"neutrophil\"", "\"differential\": [\"NEUTROPHIL\"");
        var m = ModelLabels.Parse(json, "example");
        Assert.Equal("WBC", m.SubtypeOf);
        Assert.Equal(["neutrophil", "eosinophil", "basophil", "lymphocyte", "monocyte", "RBC", "Platelets"], m.Labels);
        Assert.Equal(["neutrophil", "eosinophil", "basophil"], m.Groups["granulocyte"]);
        Assert.Equal("neutrophil", m.Differential[0]);
    }

    [Fact]
    public void OverridesReplaceThresholdsByClassNameIgnoringCase()
    {
        var m = ModelLabels.Parse(ContractExample, "example");
        Assert.Equal([0.3f, 0.1f, 0.4f], m.ThresholdsWith(new Dictionary<string, float> { ["rbc"] = 0.1f }));
        Assert.Throws<ArgumentException>(() => m.ThresholdsWith(new Dictionary<string, float> { ["Monocyte"] = 0.1f }));
    }

    [Theory]
    [InlineData("\"classes\": [\"WBC\", \"RBC\", \"Platelets\"]", "\"classes\": []", "classes")]
    [InlineData("\"of\": \"WBC\"", "\"of\": \"Leukocyte\"", "Leukocyte")]
    [InlineData("\"granulocyte\": [\"neutrophil\"", "\"granulocyte\": [\"myelocyte\"", "myelocyte")]
    [InlineData("\"RBC\": 0.35, ", "", "RBC")]
    [InlineData("\"Platelets\": 0.4", "\"Platelets\": 1.4", "Platelets")]
    [InlineData("\"colour\": \"RGB\"", "\"colour\": \"HSV\"", "HSV")]
    [InlineData("\"maxDetections\": 300", "\"maxDetections\": 0", "maxDetections")]
    [InlineData("\"crossClassIou\": 0.5", "\"crossClassIou\": 1.5", "crossClassIou")]
    [InlineData("\"containment\": 0.8", "\"containment\": 0", "containment")]
    [InlineData("{ \"WBC\": 0.5 }", "{ \"Blast\": 0.5 }", "Blast")]
    [InlineData("{ \"WBC\": 0.5 }", "{ \"WBC\": 1.5 }", "minSizeOfRedCell.WBC")]
    [InlineData("\"crossClassOf\": [\"WBC\", \"RBC\"]", "\"crossClassOf\": [\"WBC\", \"Plasma\"]", "Plasma")]
    [InlineData("[1.0, 1.15, 1.3]", "[1.0, -1.15]", "testScales")]
    [InlineData("[1.0, 1.15, 1.3]", "[]", "testScales")]
    [InlineData("\"redCellDiameterPx\": 85.7", "\"redCellDiameterPx\": 0", "redCellDiameterPx")]
    [InlineData("\"redCellDiameterPx\": 85.7", "\"redCellDiameterPx\": 85.7, \"redCellClass\": \"Erythrocyte\"", "redCellClass")]
    [InlineData("\"micrometresPerPixel\": 0.1", "\"micrometresPerPixel\": -0.1", "micrometresPerPixel")]
    public void InvalidSidecarsFailWithAMessageNamingTheProblem(string from, string to, string named)
    {
        var json = ContractExample.Replace(from, to);
        Assert.NotEqual(ContractExample, json);
        var e = Assert.Throws<ModelLoadException>(() => ModelLabels.Parse(json, "bad.labels.json"));
        Assert.Contains(named, e.Message);
        Assert.Contains("bad.labels.json", e.Message);
    }

    [Fact]
    public void BrokenJsonAndMissingFilesAreModelLoadErrors()
    {
        Assert.Throws<ModelLoadException>(() => ModelLabels.Parse("{ \"classes\": [", "x"));
        var missing = Path.Combine(Path.GetTempPath(), Guid.NewGuid() + ".labels.json");
        var e = Assert.Throws<ModelLoadException>(() => ModelLabels.Load(missing));
        Assert.Contains(missing, e.Message);
    }
}

public class DetectorOptionsTests
{
    [Fact]
    public void LabelsDefaultToTheModelNameWithLabelsJson()
    {
        var o = new DetectorOptions { ModelPath = Path.Combine("models", "cellnet.onnx") };
        Assert.Equal(Path.Combine("models", "cellnet.labels.json"), o.ResolvedLabelsPath);
        o.LabelsPath = "other.json";
        Assert.Equal("other.json", o.ResolvedLabelsPath);
    }

    [Fact]
    public void InputScaleComesFromTheOptionElseTheCameraPixelSizeElseOne()
    {
        Assert.Equal(1.0, new DetectorOptions().ResolveInputScale(0.1));
        Assert.Equal(2.0, new DetectorOptions { CameraMicrometresPerPixel = 0.2 }.ResolveInputScale(0.1), 9);
        Assert.Equal(0.5, new DetectorOptions { CameraMicrometresPerPixel = 0.2, InputScale = 0.5 }.ResolveInputScale(0.1));
        Assert.Equal(1.0, new DetectorOptions { CameraMicrometresPerPixel = 0.2 }.ResolveInputScale(null));
    }

    [Fact]
    public void AScaleGivenByHandOverridesTheAutomaticOne()
    {
        Assert.True(new DetectorOptions().AutoScale);
        Assert.False(new DetectorOptions().HasConfiguredScale);
        Assert.True(new DetectorOptions { InputScale = 0.75 }.HasConfiguredScale);
        Assert.True(new DetectorOptions { CameraMicrometresPerPixel = 0.16 }.HasConfiguredScale);
    }

    [Fact]
    public void ValidateRejectsNonsense()
    {
        Assert.Throws<ArgumentException>(() => new DetectorOptions { InputScale = 0 }.Validate());
        Assert.Throws<ArgumentException>(() => new DetectorOptions { InputScale = DetectorOptions.MaxInputScale * 1.01 }.Validate());
        Assert.Throws<ArgumentException>(() => new DetectorOptions { CameraMicrometresPerPixel = -1 }.Validate());
        Assert.Throws<ArgumentException>(() => new DetectorOptions { ScoreThresholdOverrides = new Dictionary<string, float> { ["RBC"] = 2 } }.Validate());
        new DetectorOptions { InputScale = 1.5 }.Validate();
    }
}
