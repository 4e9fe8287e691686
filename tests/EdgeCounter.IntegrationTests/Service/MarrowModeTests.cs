using System.Text.Json;
using EdgeCounter.Hosting;
using EdgeCounter.IntegrationTests.Publishing;
using Microsoft.Extensions.Hosting;

namespace EdgeCounter.IntegrationTests.Service;

/// <summary>Counting:Mode marrow on the simulated marrow slide with the shipped (blood) model: the paper's categories
/// are the groups, the target counts nucleated cells, the subtype stage names erythroblasts and immature granulocytes
/// (learned from real PBC cells), and the lineages the model cannot see (plasma cells, megakaryocytes) say so.</summary>
[Collection("Service")]
public class MarrowModeTests
{
    private static JsonElement Json(Received m) => JsonDocument.Parse(m.Payload).RootElement;

    [Fact]
    public async Task The_service_publishes_the_marrow_categories_ratio_and_plasma_cell_share_over_nucleated_cells()
    {
        var port = FreePort.Next();
        var state = Directory.CreateTempSubdirectory("edgecounter-marrow-").FullName;
        try
        {
            using var host = ServiceHost.Build(ServiceEndToEndTests.Args(port, state, "--EdgeCounter:Counting:Mode=marrow",
                "--EdgeCounter:Source:Simulator:Profile=marrow"));
            await host.StartAsync();
            await using var watcher = await RecordingSubscriber.ConnectAsync(port, "edgecounter/scope-test/#");
            const string p = "edgecounter/scope-test";
            var counted = await watcher.WaitForAsync(m => m.Topic == $"{p}/counts" && Json(m).GetProperty("whiteCells").GetInt64() > 0,
                TimeSpan.FromSeconds(90), "counts with a nucleated cell");
            var counts = Json(counted);

            Assert.Equal(500, counts.GetProperty("target").GetInt32());
            Assert.Equal(["granulocyte", "erythroid", "lymphocyte", "monocyte", "others"], counts.GetProperty("groups").EnumerateObject().Select(g => g.Name).ToArray());
            var marrow = counts.GetProperty("marrow");
            Assert.Equal(["megakaryocyte", "plasma_cell"], marrow.GetProperty("notMeasured").EnumerateArray().Select(e => e.GetString()!).ToArray());
            Assert.Equal(JsonValueKind.Null, marrow.GetProperty("plasmaCellPercent").ValueKind);
            Assert.Equal(JsonValueKind.Null, marrow.GetProperty("percent").GetProperty("plasma_cell").ValueKind);
            Assert.Equal(JsonValueKind.Number, marrow.GetProperty("percent").GetProperty("erythroid").ValueKind);

            // Nucleated cells are the white-cell labels; red cells and platelets are counted but not part of it.
            var totals = counts.GetProperty("totals");
            string[] nucleated = ["neutrophil", "eosinophil", "basophil", "lymphocyte", "monocyte", "unidentified", "immature_granulocyte", "erythroblast"];
            Assert.Equal(nucleated.Sum(l => totals.GetProperty(l).GetInt64()), marrow.GetProperty("nucleatedCells").GetInt64());
            Assert.Equal(marrow.GetProperty("nucleatedCells").GetInt64(), counts.GetProperty("whiteCells").GetInt64());
            Assert.False(counts.GetProperty("differential").TryGetProperty("RBC", out _));
            var shares = marrow.GetProperty("percent").EnumerateObject().Where(c => c.Value.ValueKind == JsonValueKind.Number).Sum(c => c.Value.GetDouble());
            Assert.InRange(shares, 99.9, 100.1);

            // The retained session state carries it too, for a dashboard that joins late.
            await watcher.WaitForAsync(m => m.Topic == $"{p}/session/state" && Json(m).TryGetProperty("marrow", out var s) && s.ValueKind == JsonValueKind.Object,
                what: "session state with the marrow differential");
            await host.StopAsync();
        }
        finally
        {
            Directory.Delete(state, true);
        }
    }

    [Fact]
    public void An_unknown_counting_mode_stops_the_start_naming_the_key()
    {
        var state = Directory.CreateTempSubdirectory("edgecounter-marrow-bad-").FullName;
        try
        {
            var e = Assert.Throws<ConfigurationProblemException>(() => ServiceHost.Build(ServiceEndToEndTests.Args(FreePort.Next(), state, "--EdgeCounter:Counting:Mode=bone")));
            Assert.Contains(e.Problems, p => p.Contains("Mode") && p.Contains("bone"));
        }
        finally
        {
            Directory.Delete(state, true);
        }
    }
}
