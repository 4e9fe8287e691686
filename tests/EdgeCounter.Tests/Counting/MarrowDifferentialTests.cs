using EdgeCounter.Counting;
using EdgeCounter.Detection;
using EdgeCounter.Reporting;
using static EdgeCounter.Tests.Counting.CountingTestData;

namespace EdgeCounter.Tests.Counting;

public sealed class MarrowDifferentialTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgecounter-marrow-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly string[] MarrowWhite =
        ["neutrophil", "myelocyte", "eosinophil", "lymphocyte", "monocyte", "plasma_cell", "blast"];

    /// <summary>A marrow model as its sidecar would describe it: white lineages in the differential, erythroblasts and
    /// megakaryocytes detected but not white cells, mature red cells and platelets.</summary>
    private static ModelInfo MarrowModel() => new("marrow-test", "0.1.0",
        [.. MarrowWhite, "erythroblast", "megakaryocyte", "RBC", "Platelets"],
        new Dictionary<string, IReadOnlyList<string>> { ["WBC"] = MarrowWhite },
        MarrowWhite);

    private static Func<string, long> Counts(params (string Label, long Count)[] counts) =>
        label => counts.FirstOrDefault(c => c.Label == label).Count;

    [Fact]
    public void The_seven_categories_ratio_and_plasma_cell_share_are_over_nucleated_cells_only()
    {
        var marrow = MarrowDifferential.For(MarrowModel());
        Assert.Equal(MarrowDifferential.Categories, marrow.Members.Keys);
        Assert.Equal(["neutrophil", "myelocyte", "eosinophil"], marrow.Members["granulocyte"]);
        Assert.Equal(["erythroblast"], marrow.Members["erythroid"]);
        Assert.Equal(["blast"], marrow.Members["others"]);
        Assert.Empty(marrow.NotMeasured);
        Assert.DoesNotContain("RBC", marrow.NucleatedLabels);
        Assert.DoesNotContain("Platelets", marrow.NucleatedLabels);
        Assert.DoesNotContain("megakaryocyte", marrow.NucleatedLabels);

        var summary = marrow.Summarize(Counts(("neutrophil", 200), ("myelocyte", 80), ("eosinophil", 20), ("erythroblast", 100),
            ("lymphocyte", 50), ("plasma_cell", 30), ("monocyte", 10), ("blast", 10), ("megakaryocyte", 3), ("RBC", 4000), ("Platelets", 300)));

        Assert.Equal(500, summary.NucleatedCells);
        Assert.Equal(3.0, summary.MyeloidErythroidRatio);
        Assert.Equal(6.0, summary.PlasmaCellPercent);
        Assert.Equal(60.0, summary.Percent["granulocyte"]);
        Assert.Equal(20.0, summary.Percent["erythroid"]);
        Assert.False(summary.Percent.ContainsKey("megakaryocyte"));
        Assert.Equal(100.0, summary.Percent.Values.Sum()!.Value, 6);
        var ci = summary.PlasmaCellPercentCi95!;
        Assert.True(ci[0] < 6.0 && 6.0 < ci[1] && ci[0] > 3 && ci[1] < 9, $"[{ci[0]}, {ci[1]}]");
    }

    [Fact]
    public void A_blood_model_reports_the_lineages_it_cannot_see_as_not_measured_not_as_zero()
    {
        // The shipped blood model's labels: the five white cells, unidentified, red cells, platelets.
        string[] white = [.. WhiteLabels, "unidentified"];
        var marrow = MarrowDifferential.For([.. white, "RBC", "Platelets"], white);
        Assert.Equal(["erythroid", "megakaryocyte", "plasma_cell"], marrow.NotMeasured);
        Assert.Equal(["unidentified"], marrow.Members["others"]);

        var summary = marrow.Summarize(Counts(("neutrophil", 60), ("lymphocyte", 30), ("monocyte", 10)));
        Assert.Null(summary.PlasmaCellPercent);
        Assert.Null(summary.PlasmaCellPercentCi95);
        Assert.Null(summary.MyeloidErythroidRatio);
        Assert.Null(summary.Percent["erythroid"]);
        Assert.Equal(60.0, summary.Percent["granulocyte"]);
    }

    [Fact]
    public void Before_the_first_erythroid_cell_the_ratio_is_undefined_and_a_white_label_it_does_not_know_is_others()
    {
        var model = new ModelInfo("m", "1", ["neutrophil", "smudge", "erythroblast", "RBC"], new Dictionary<string, IReadOnlyList<string>>(),
            ["neutrophil", "smudge"]);
        var marrow = MarrowDifferential.For(model);
        Assert.Equal(["smudge"], marrow.Members["others"]);
        var summary = marrow.Summarize(Counts(("neutrophil", 5), ("smudge", 5)));
        Assert.Null(summary.MyeloidErythroidRatio);
        Assert.Equal(0.0, summary.Percent["erythroid"]);
        Assert.Equal(50.0, summary.Percent["others"]);
    }

    [Fact]
    public void A_model_without_any_nucleated_cell_cannot_give_a_marrow_differential()
    {
        var model = new ModelInfo("rbc-only", "1", ["RBC", "Platelets"], new Dictionary<string, IReadOnlyList<string>>(), []);
        var e = Assert.Throws<ArgumentException>(() => CountingCatalog.FromModel(model, mode: CountingMode.Marrow));
        Assert.Contains("nucleated", e.Message);
    }

    [Fact]
    public void Options_default_to_a_target_of_500_nucleated_cells_in_marrow_mode_and_100_white_cells_in_blood_mode()
    {
        Assert.Equal(100, new CountingOptions().EffectiveDefaultTarget);
        Assert.Equal(500, new CountingOptions { Mode = CountingMode.Marrow }.EffectiveDefaultTarget);
        Assert.Equal(300, new CountingOptions { Mode = CountingMode.Marrow, DefaultTarget = 300 }.EffectiveDefaultTarget);
        Assert.Contains(new CountingOptions { Mode = (CountingMode)7 }.Validate(), e => e.StartsWith("Counting:Mode"));
    }

    [Fact]
    public void A_marrow_session_groups_by_category_completes_at_its_nucleated_target_and_its_report_carries_the_marrow_figures()
    {
        var catalog = CountingCatalog.FromModel(MarrowModel(), new Dictionary<string, string[]> { ["mononuclear"] = ["lymphocyte", "monocyte"] },
            CountingMode.Marrow);
        var service = new CountingService(catalog, new CountingOptions { Mode = CountingMode.Marrow }, new SessionStore(_dir));
        Assert.Equal(500, service.Snapshot().Target);
        Assert.Equal([.. MarrowDifferential.Categories, "mononuclear"], service.Snapshot().Groups.Keys);

        // 250 fields of two nucleated cells, a megakaryocyte now and then and many red cells: only nucleated cells count.
        FieldCountResult last = null!;
        for (var i = 0; i < 250; i++)
        {
            var field = i % 2 == 0 ? Field(("neutrophil", 1), ("erythroblast", 1), ("RBC", 20)) : Field(("plasma_cell", 1), ("lymphocyte", 1), ("Platelets", 3));
            if (i % 50 == 0) field = [.. field, .. Field(("megakaryocyte", 1))];
            last = service.CountField(field);
            if (i < 249) Assert.False(last.CompletedNow);
        }
        Assert.True(last.CompletedNow);
        var counts = last.Counts;
        Assert.Equal(500, counts.WhiteCells);
        Assert.Equal(SessionState.Completed, counts.State);
        Assert.Equal(125, counts.Groups["plasma_cell"]);
        Assert.Equal(5, counts.Groups["megakaryocyte"]);
        Assert.Equal(125, counts.Groups["mononuclear"] - counts.Groups["monocyte"]);
        Assert.Equal(25.0, counts.Differential["plasma_cell"]); // the per-label differential is of nucleated cells too
        Assert.False(counts.Differential.ContainsKey("RBC"));
        Assert.Equal(1.0, counts.Marrow!.MyeloidErythroidRatio);
        Assert.Equal(25.0, counts.Marrow.PlasmaCellPercent);

        var report = SessionReport.Create(service.Review(), "marrow-test", "0.1.0", new ReportOptions(), DateTimeOffset.UnixEpoch);
        Assert.Equivalent(counts.Marrow, report.Marrow, strict: true);
        Assert.StartsWith("500 nucleated cells counted", report.Precision);
        var csv = ReportCsv.Format(report);
        Assert.Contains("marrow_category,count,percent_of_nucleated", csv);
        Assert.Contains("plasma_cell,125,25", csv);
        Assert.Contains("megakaryocyte,5,", csv);
        Assert.Contains("myeloidErythroidRatio,1", csv);
        Assert.Contains("plasmaCellPercent,25", csv);
    }
}
