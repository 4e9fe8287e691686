using EdgeCounter.Counting;
using EdgeCounter.Detection;
using EdgeCounter.Tests.Detection;

namespace EdgeCounter.Tests.Counting;

public class DetectionTallyTests
{
    private static readonly ModelInfo Model = ModelLabels.Parse(ModelLabelsTests.ContractExample, "example").ToModelInfo();

    private static EdgeCounter.Detection.Detection D(string label, string cls) => new(label, cls, 0.9f, new BoxF(0, 0, 1, 1));

    [Fact]
    public void CountsLabelsGroupsAndDifferential()
    {
        var t = new DetectionTally(Model);
        t.Add([D("neutrophil", "WBC"), D("neutrophil", "WBC"), D("eosinophil", "WBC"), D("lymphocyte", "WBC"), D("RBC", "RBC"), D("RBC", "RBC")]);
        Assert.Equal(2, t.Count("neutrophil"));
        Assert.Equal(0, t.Count("Platelets"));
        Assert.Equal(Model.Labels, t.Labels.Select(l => l.Label));
        Assert.Equal(4, t.Groups.Single(g => g.Group == "WBC").Count);
        Assert.Equal(3, t.Groups.Single(g => g.Group == "granulocyte").Count);
        Assert.Equal(50.0, t.DifferentialPercent!["neutrophil"], 9);
        Assert.Equal(0, t.DifferentialPercent!["monocyte"], 9);

        var total = new DetectionTally(Model);
        total.Add(t); total.Add(t);
        Assert.Equal(12, total.Total);
    }

    [Fact]
    public void AgreesWithACountingSessionOverTheSameDetections()
    {
        EdgeCounter.Detection.Detection[] field = [D("neutrophil", "WBC"), D("monocyte", "WBC"), D("monocyte", "WBC"), D("RBC", "RBC")];
        var catalog = CountingCatalog.FromModel(Model);
        var tally = new DetectionTally(catalog);
        tally.Add(field);
        var session = CountingSession.Start(catalog, "s", "sample", 100, DateTimeOffset.UnixEpoch);
        Assert.True(session.TryAddField(field, DateTimeOffset.UnixEpoch, out _));
        Assert.Equal(session.GroupTotals().Select(g => (g.Key, g.Value)), tally.Groups);
        Assert.Equal(session.Differential(), tally.DifferentialPercent);
    }

    [Fact]
    public void DifferentialIsUndefinedWithoutWhiteCells()
    {
        var t = new DetectionTally(Model);
        t.Add([D("RBC", "RBC")]);
        Assert.Null(t.DifferentialPercent);
        Assert.Equal(Model.DifferentialLabels, t.DifferentialLabels);
    }
}
