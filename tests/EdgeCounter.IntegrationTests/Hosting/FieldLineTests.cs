using EdgeCounter.Counting;
using EdgeCounter.Detection;
using EdgeCounter.Hosting;
using EdgeCounter.IntegrationTests.Publishing;
using Cell = EdgeCounter.Detection.Detection;

namespace EdgeCounter.IntegrationTests.Hosting;

/// <summary>The console line a technician reads per counted field.</summary>
public class FieldLineTests : IDisposable
{
    private static readonly string[] White = ServiceUnderTest.White;
    private readonly DirectoryInfo _state = Directory.CreateTempSubdirectory("edgecounter-fieldline-");

    public void Dispose() => _state.Delete(recursive: true);

    private CountingService Service() =>
        new(CountingCatalog.FromModel(ServiceUnderTest.Model), new CountingOptions(), new SessionStore(_state.FullName));

    private static List<Cell> Cells(params (string Label, int Count)[] cells)
    {
        var list = new List<Cell>();
        var x = 0f;
        foreach (var (label, count) in cells)
            for (var i = 0; i < count; i++, x += 10)
                list.Add(new Cell(label, White.Contains(label) ? "WBC" : label, 0.9f, new BoxF(x, 0, x + 8, 8)));
        return list;
    }

    private static string Line(CountingService service, List<Cell> cells) =>
        FieldLine.Format(service.CountField(cells), new DetectionResult(cells, 1, 20, 1), "CPU");

    [Fact]
    public void Before_the_first_white_cell_the_line_has_no_empty_differential()
    {
        var service = Service();
        var line = Line(service, Cells(("RBC", 12), ("Platelets", 2)));
        Assert.Contains("RBC 12", line);
        Assert.Contains("white cells 0/", line);
        Assert.DoesNotContain("|  |", line);
        Assert.DoesNotContain("| |", line);
        Assert.EndsWith("| 22 ms CPU", line);

        var empty = Line(service, Cells());
        Assert.Contains(": no cells | white cells 0/", empty);
        Assert.DoesNotContain("|  |", empty);
    }

    [Fact]
    public void With_white_cells_the_line_shows_the_differential_and_the_other_totals()
    {
        var service = Service();
        var line = Line(service, Cells(("neutrophil", 3), ("lymphocyte", 1), ("RBC", 5)));
        Assert.Contains("white cells 4/", line);
        Assert.Contains("| neutrophil 75% lymphocyte 25% |", line);
        Assert.Contains("| RBC 5 |", line);
    }
}
