using System.Xml.Linq;
using EdgeCounter.Detection;

namespace EdgeCounter.Tests.Detection;

public class LabelPairingTests
{
    private static readonly ModelLabels Model = ModelLabels.Parse(ModelLabelsTests.ContractExample, "example");

    private static LabelPairing Pair(IReadOnlyList<string> dataset, string? map = null) =>
        LabelPairing.Create(Model.ToModelInfo(), Model.Classes, dataset, map);

    [Fact]
    public void BccdClassesPairAutomaticallyIgnoringCaseAndPlural()
    {
        var p = Pair(["wbc", "RBC", "Platelet"]);
        Assert.Equal(0, p.DatasetClassOf("neutrophil", "WBC"));
        Assert.Equal(1, p.DatasetClassOf("RBC", "RBC"));
        Assert.Equal(2, p.DatasetClassOf("Platelets", "Platelets"));
        Assert.Empty(p.UnpairedDatasetClasses);
    }

    [Fact]
    public void SubtypeNamedDatasetsPairWithSubtypeLabels()
    {
        var p = Pair(["Neutrophils", "Lymphocyte", "Erythrocyte", "Megakaryocyte"], "RBC=Erythrocyte");
        Assert.Equal(0, p.DatasetClassOf("neutrophil", "WBC"));
        Assert.Equal(1, p.DatasetClassOf("lymphocyte", "WBC"));
        Assert.Equal(-1, p.DatasetClassOf("monocyte", "WBC"));     // no monocyte class in this set
        Assert.Equal(2, p.DatasetClassOf("RBC", "RBC"));
        Assert.Equal(-1, p.DatasetClassOf("Platelets", "Platelets"));
        Assert.Equal(["Megakaryocyte"], p.UnpairedDatasetClasses);
    }

    [Fact]
    public void MapFoldsSubtypesAndGroupsIntoADatasetClass()
    {
        var p = Pair(["leukocyte", "granulocyte", "RBC"], "granulocyte=granulocyte,lymphocyte=leukocyte,monocyte=leukocyte");
        Assert.Equal(1, p.DatasetClassOf("eosinophil", "WBC"));   // via the group
        Assert.Equal(0, p.DatasetClassOf("monocyte", "WBC"));
        Assert.Equal(2, p.DatasetClassOf("RBC", "RBC"));          // automatic pair kept beside the map
    }

    [Fact]
    public void MapWithUnknownNamesFails()
    {
        Assert.Throws<ArgumentException>(() => Pair(["WBC"], "myelocyte=WBC"));
        Assert.Throws<ArgumentException>(() => Pair(["WBC"], "neutrophil=Leukocyte"));
        Assert.Throws<ArgumentException>(() => Pair(["WBC"], "neutrophil"));
    }

    [Theory]
    [InlineData("Platelets", "platelet")]
    [InlineData("RBC", "rbc")]
    [InlineData("WBCs", "wbc")]
    [InlineData("Basophils ", "basophil")]
    [InlineData("plasma cell", "plasma_cell")]
    [InlineData("Band-neutrophils", "band_neutrophil")]
    public void NormalizeDropsCasePluralAndSeparators(string name, string expected) => Assert.Equal(expected, LabelPairing.Normalize(name));
}

public class VocDatasetTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "voc-" + Guid.NewGuid().ToString("N"));

    public VocDatasetTests()
    {
        Directory.CreateDirectory(Path.Combine(_root, "Annotations"));
        Directory.CreateDirectory(Path.Combine(_root, "JPEGImages"));
        Directory.CreateDirectory(Path.Combine(_root, "ImageSets", "Main"));
        WriteXml("a", ("RBC", 10, 20, 50, 60), ("WBC", 100, 100, 200, 180), ("RBC", 30, 30, 30, 50));
        WriteXml("b", ("Platelets", 1, 2, 11, 12));
    }

    private void WriteXml(string id, params (string Name, int X1, int Y1, int X2, int Y2)[] objects)
    {
        var xml = new XElement("annotation",
            new XElement("filename", id + ".jpg"),
            new XElement("size", new XElement("width", 640), new XElement("height", 480), new XElement("depth", 3)),
            objects.Select(o => new XElement("object", new XElement("name", o.Name), new XElement("difficult", 0),
                new XElement("bndbox", new XElement("xmin", o.X1), new XElement("ymin", o.Y1), new XElement("xmax", o.X2), new XElement("ymax", o.Y2)))));
        xml.Save(Path.Combine(_root, "Annotations", id + ".xml"));
    }

    [Fact]
    public void WithoutSplitFilesReadsEveryAnnotationAndSkipsDegenerateBoxes()
    {
        Assert.Equal("all", VocDataset.DefaultSplit(_root));
        var set = VocDataset.Load(_root);
        Assert.Equal(["a", "b"], set.Images.Select(i => i.Id));
        Assert.Equal(["RBC", "WBC", "Platelets"], set.ClassNames);
        var a = set.Images[0];
        Assert.Equal(2, a.Objects.Count);  // the zero-width RBC is left out ...
        Assert.Contains(set.Warnings, w => w.Contains("a:") && w.Contains("RBC"));  // ... and reported
        Assert.Equal(new BoxF(10, 20, 50, 60), a.Objects[0].Box);
        Assert.Equal(640, a.Width);
        Assert.EndsWith(Path.Combine("JPEGImages", "a.jpg"), a.ImagePath);
    }

    [Fact]
    public void TestSplitIsTheDefaultWhenPresent()
    {
        File.WriteAllLines(Path.Combine(_root, "ImageSets", "Main", "test.txt"), ["b"]);
        Assert.Equal("test", VocDataset.DefaultSplit(_root));
        var set = VocDataset.Load(_root);
        Assert.Equal("b", Assert.Single(set.Images).Id);
        Assert.Throws<FileNotFoundException>(() => VocDataset.Load(_root, "val"));
    }

    [Fact]
    public void SubtypeCsvSkipsTheHeader()
    {
        var map = SubtypeCsv.Parse(["image,subtype,bccd_split", "BloodImage_00000,NEUTROPHIL,val", "", "x.jpg,MONOCYTE,train"]);
        Assert.Equal(2, map.Count);
        Assert.Equal("NEUTROPHIL", map["bloodimage_00000"]);
        Assert.Equal("MONOCYTE", map["x"]);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}

public class BoxMatcherTests
{
    [Fact]
    public void MatchesByScoreOneToOne()
    {
        var truth = new[] { new BoxF(0, 0, 10, 10), new BoxF(100, 0, 110, 10) };
        var dets = new (float, BoxF)[] { (0.5f, new BoxF(0, 0, 10, 10)), (0.9f, new BoxF(1, 0, 11, 10)), (0.7f, new BoxF(50, 0, 60, 10)) };
        Assert.Equal([-1, 0, -1], BoxMatcher.Match(dets, truth));
        var counts = new OperatingPointCounts();
        BoxMatcher.Accumulate(counts, dets, truth);
        Assert.Equal((1, 2, 1), (counts.TruePositives, counts.FalsePositives, counts.Missed));
        Assert.Equal(1.0 / 3, counts.Precision, 9);
        Assert.Equal(0.5, counts.Recall, 9);
    }

    [Fact]
    public void FrameEdgeRecallSplitsTruthTouchingTheImageEdge()
    {
        // 100x80 image: a cell cut by the left edge (found), one cut by the bottom (missed), two whole (one found),
        // and a difficult cut cell that counts neither way.
        var truth = new[]
        {
            new BoxF(0, 10, 20, 30), new BoxF(40, 70, 60, 80), new BoxF(30, 20, 50, 40), new BoxF(60, 20, 80, 40), new BoxF(80, 0, 100, 20),
        };
        var ignore = new[] { false, false, false, false, true };
        var dets = new (float, BoxF)[] { (0.9f, new BoxF(0, 11, 19, 30)), (0.8f, new BoxF(31, 20, 50, 41)), (0.7f, new BoxF(80, 0, 100, 20)) };
        var recall = new FrameEdgeRecall();
        recall.Add(BoxMatcher.Match(dets, truth), truth, 100, 80, ignore);
        Assert.Equal((2, 1, 2, 1), (recall.CutTruth, recall.CutFound, recall.WholeTruth, recall.WholeFound));
        Assert.Equal(0.5, recall.CutRecall, 9);
        Assert.Equal(0.5, recall.WholeRecall, 9);
        // A box 3 px inside the edge is still taken as cut (detectors do not always draw a cut cell to the edge);
        // 4 px in is whole.
        var near = new FrameEdgeRecall();
        near.Add([], [new BoxF(3, 10, 20, 30), new BoxF(4, 10, 20, 30)], 100, 80);
        Assert.Equal((1, 1), (near.CutTruth, near.WholeTruth));
        Assert.True(double.IsNaN(new FrameEdgeRecall().CutRecall));
    }

    [Fact]
    public void ConfusionMatrixCountsAccuracy()
    {
        var m = new ConfusionMatrix(["a", "b"]);
        m.Add(0, 0); m.Add(0, 1); m.Add(1, 1); m.Add(1, 1);
        Assert.Equal(0.75, m.Accuracy, 9);
        Assert.Equal(2, m[1, 1]);
    }
}
