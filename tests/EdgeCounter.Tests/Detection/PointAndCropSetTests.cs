using EdgeCounter.Detection;

namespace EdgeCounter.Tests.Detection;

public class PointDatasetTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("edgecounter-points-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private void Image(string id, string? points)
    {
        Directory.CreateDirectory(Path.Combine(_root, "images"));
        Directory.CreateDirectory(Path.Combine(_root, "points"));
        File.WriteAllBytes(Path.Combine(_root, "images", id + ".jpg"), [0xFF, 0xD8]); // the reader only needs the file
        if (points is not null) File.WriteAllText(Path.Combine(_root, "points", id + ".txt"), points);
    }

    private void Split(string name, params string[] ids)
    {
        Directory.CreateDirectory(Path.Combine(_root, "splits"));
        File.WriteAllLines(Path.Combine(_root, "splits", name + ".txt"), ids);
    }

    [Fact]
    public void ReadsASplitWithItsPointsAndChulaTypeNames()
    {
        Image("1", "594 95 0\n601.5 151 9\n\n");
        Image("2", "10 20 12\n");
        Image("10", "");
        Split("test", "2", "10");
        var set = PointDataset.Load(_root);   // test.txt present: the default split
        Assert.Equal("test", set.Split);
        Assert.Equal(["2", "10"], set.Images.Select(i => i.Id));
        Assert.Equal([new LabelledPoint(10, 20, 12)], set.Images[0].Points);
        Assert.Empty(set.Images[1].Points);
        Assert.Equal("elliptocyte", set.TypeName(12));
        Assert.Equal("type 99", set.TypeName(99));

        var all = PointDataset.Load(_root, "all");   // no all.txt: every points file, in numeric order
        Assert.Equal(["1", "2", "10"], all.Images.Select(i => i.Id));
        Assert.Equal([new LabelledPoint(594, 95, 0), new LabelledPoint(601.5f, 151, 9)], all.Images[0].Points);
        Assert.Equal("schistocyte", all.TypeName(9));
    }

    [Fact]
    public void ASetNamesItsOwnTypesAndImagesWithoutPointsAreLeftOutWithAWarning()
    {
        Image("1", "5 5 1\n");
        Image("2", null);
        Split("val", "1", "2");
        File.WriteAllText(Path.Combine(_root, "types.txt"), "0 normal\n1 sickle cell\n");
        var set = PointDataset.Load(_root, "val");
        Assert.Equal(["1"], set.Images.Select(i => i.Id));
        Assert.Contains(set.Warnings, w => w.Contains("2") && w.Contains("no points file"));
        Assert.Equal("sickle cell", set.TypeName(1));
    }

    [Theory]
    [InlineData("12 x 0")]
    [InlineData("12")]
    [InlineData("1 2 3 4")]
    [InlineData("1 2 normal")]
    public void ABadPointsLineNamesFileAndLine(string line)
    {
        Image("1", $"1 2 0\n{line}\n");
        var e = Assert.Throws<FormatException>(() => PointDataset.Load(_root, "all"));
        Assert.Contains("1.txt:2", e.Message);
    }

    [Fact]
    public void MissingFoldersSplitsAndImagesAreIoErrors()
    {
        Assert.Throws<DirectoryNotFoundException>(() => PointDataset.Load(Path.Combine(_root, "none")));
        Assert.Throws<DirectoryNotFoundException>(() => PointDataset.Load(_root));   // no images/ or points/
        Image("1", "1 1 0\n");
        Assert.Throws<FileNotFoundException>(() => PointDataset.Load(_root, "train"));
        Split("test", "1", "7");
        Assert.Throws<FileNotFoundException>(() => PointDataset.Load(_root, "test"));   // image 7 is not there
    }
}

public class PointMatcherTests
{
    private static (float, BoxF) Box(float score, float x1, float y1, float x2, float y2) => (score, new BoxF(x1, y1, x2, y2));

    [Fact]
    public void APointInsideABoxIsFoundOncePerBox()
    {
        // Two points in one box: one found (the one nearer the centre), one missed; a point outside every box is missed.
        var found = PointMatcher.Match([Box(0.9f, 0, 0, 40, 40)], [new(21, 19, 0), new(5, 5, 0), new(100, 100, 0)]);
        Assert.Equal([true, false, false], found);
    }

    [Fact]
    public void BoxesTakePointsBestScoreFirst()
    {
        // The weak box holds only point A; the strong box holds A and B but B is nearer its centre, so both are found.
        var points = new LabelledPoint[] { new(30, 20, 0), new(45, 20, 0) };
        Assert.Equal([true, true], PointMatcher.Match([Box(0.3f, 0, 0, 40, 40), Box(0.9f, 25, 0, 65, 40)], points));
        // A strong box that prefers A leaves the weak box, which holds only A, with nothing: B is missed.
        var a = new LabelledPoint[] { new(20, 20, 0), new(60, 20, 0) };
        Assert.Equal([true, false], PointMatcher.Match([Box(0.3f, 0, 0, 40, 40), Box(0.9f, 0, 0, 70, 40)], a));
    }

    [Fact]
    public void PointsOnTheBorderCountAsInside()
    {
        Assert.Equal([true], PointMatcher.Match([Box(0.5f, 10, 10, 20, 20)], [new(20, 10, 3)]));
        Assert.Equal([false], PointMatcher.Match([], [new(20, 10, 3)]));
    }
}

public class CropDatasetTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("edgecounter-crops-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private void Crop(string cls, string file)
    {
        Directory.CreateDirectory(Path.Combine(_root, cls));
        File.WriteAllBytes(Path.Combine(_root, cls, file), [0xFF, 0xD8]);
    }

    [Fact]
    public void LabelsCsvNamesEachCropsClass()
    {
        Crop("neutrophil", "a.jpg");
        Crop("neutrophil", "b.jpg");
        Crop("ig", "c.jpg");
        File.WriteAllText(Path.Combine(_root, "labels.csv"), "file,class,code\nneutrophil/a.jpg,neutrophil,SNE\nig/c.jpg,ig,MY\nneutrophil/b.jpg,band,BNE\n");
        var set = CropDataset.Load(_root);
        Assert.Equal(["neutrophil", "ig", "band"], set.Classes);   // the CSV wins over the folder
        Assert.Equal(3, set.Images.Count);
        Assert.EndsWith(Path.Combine("ig", "c.jpg"), set.Images[1].ImagePath);
    }

    [Fact]
    public void WithoutLabelsCsvTheFolderIsTheClass()
    {
        Crop("lymphocyte", "1.png");
        Crop("basophil", "2.jpg");
        File.WriteAllText(Path.Combine(_root, "basophil", "notes.txt"), "not an image");
        var set = CropDataset.Load(_root);
        Assert.Equal(["basophil", "lymphocyte"], set.Classes);
        Assert.Equal(2, set.Images.Count);
    }

    [Fact]
    public void BadSetsAreErrors()
    {
        Assert.Throws<DirectoryNotFoundException>(() => CropDataset.Load(Path.Combine(_root, "none")));
        Assert.Throws<FileNotFoundException>(() => CropDataset.Load(_root));   // empty
        File.WriteAllText(Path.Combine(_root, "labels.csv"), "file,class\nmonocyte/x.jpg,monocyte\n");
        Assert.Throws<FileNotFoundException>(() => CropDataset.Load(_root));   // listed image missing
        File.WriteAllText(Path.Combine(_root, "labels.csv"), "file,class\nmonocyte/x.jpg\n");
        Assert.Throws<FormatException>(() => CropDataset.Load(_root));
    }

    [Fact]
    public void TheCellNearestTheCentreOfItsClassIsTheCrops()
    {
        EdgeCounter.Detection.Detection D(string label, string cls, float cx, float cy) => new(label, cls, 0.9f, new BoxF(cx - 10, cy - 10, cx + 10, cy + 10));
        var detections = new[] { D("lymphocyte", "WBC", 20, 20), D("RBC", "RBC", 50, 50), D("monocyte", "WBC", 60, 45), D("neutrophil", "WBC", 95, 95) };
        Assert.Equal("monocyte", CropDataset.CellNearestCentre(detections, "WBC", 100, 100)!.Label);
        Assert.Null(CropDataset.CellNearestCentre(detections, "Platelets", 100, 100));
    }
}

public class CountErrorTests
{
    [Fact]
    public void SignedPercentOfTheTruthOverTheSet()
    {
        Assert.Equal(-48.0, CountError.Percent(1163, 2236.5), 1);
        Assert.Equal(10.0, CountError.Percent(110, 100), 9);
        Assert.Equal(0.0, CountError.Percent(7, 7));
        Assert.True(double.IsNaN(CountError.Percent(3, 0)));
    }
}
