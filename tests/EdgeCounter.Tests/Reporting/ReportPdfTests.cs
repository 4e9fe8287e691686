using System.Globalization;
using EdgeCounter.Counting;
using EdgeCounter.Reporting;
using UglyToad.PdfPig;

namespace EdgeCounter.Tests.Reporting;

/// <summary>The report's PDF built with PDFsharp and read back with PdfPig: what a lab files is on the page.</summary>
public sealed class ReportPdfTests
{
    private static readonly DateTimeOffset Started = new(2026, 12, 3, 8, 15, 0, TimeSpan.Zero);

    /// <summary>A signed 100-cell differential with reference ranges, one flag and one amendment.</summary>
    internal static SessionReport BloodReport()
    {
        var counts = new Dictionary<string, long>
        {
            ["neutrophil"] = 58, ["lymphocyte"] = 30, ["monocyte"] = 7, ["eosinophil"] = 4, ["basophil"] = 1, ["RBC"] = 4120, ["Platelets"] = 212,
        };
        var ranges = new Dictionary<string, double[]> { ["neutrophil"] = [40, 75], ["lymphocyte"] = [20, 40], ["monocyte"] = [2, 6], ["eosinophil"] = [1, 6] };
        var differential = counts.Where(c => c.Key is not ("RBC" or "Platelets")).ToDictionary(c => c.Key, c =>
        {
            var (low, high) = ProportionInterval.Wilson95Percent(c.Value, 100);
            var range = ranges.GetValueOrDefault(c.Key);
            return new DifferentialLine(c.Value, c.Value, [Math.Round(low, 2), Math.Round(high, 2)], range,
                range is [_, var top] && c.Value > top ? "high" : null);
        });
        var amendment = new CellCorrection(3, 87, CellCorrection.Reclassify, "lymphocyte", "monocyte", "Dr B", Started.AddMinutes(41), Amendment: true);
        return new SessionReport("20261203-081500-ab12", "S-PDF-UNIT", SessionState.Final, Started, Started.AddMinutes(9), Started.AddMinutes(12),
            "Dr B", 64, 100, counts, new Dictionary<string, long> { ["WBC"] = 100, ["granulocyte"] = 63 }, differential,
            SessionReport.PrecisionNote(100), 3, [amendment], "cellnet-3scale", "1.4.0", Started.AddMinutes(41))
        { Csv = "reports/20261203-081500-ab12.csv", Pdf = "reports/20261203-081500-ab12.pdf" };
    }

    /// <summary>The page's words in reading order, joined by single spaces.</summary>
    internal static string Text(byte[] pdf)
    {
        using var document = PdfDocument.Open(pdf);
        return string.Join(" ", document.GetPages().SelectMany(p => p.GetWords()).Select(w => w.Text));
    }

    private static string P(double value) => value.ToString("0.0", CultureInfo.InvariantCulture);

    [Fact]
    public void The_pdf_names_the_sample_each_differential_line_with_its_interval_the_reviewer_and_the_amendment()
    {
        var report = BloodReport();
        var pdf = ReportPdf.Build(report);
        // Set EDGECOUNTER_SAMPLE_PDF to keep a copy (docs/report-page.png is rendered from it).
        if (Environment.GetEnvironmentVariable("EDGECOUNTER_SAMPLE_PDF") is { Length: > 0 } keep) File.WriteAllBytes(keep, pdf);

        Assert.StartsWith("%PDF-", System.Text.Encoding.ASCII.GetString(pdf, 0, 5));
        using (var document = PdfDocument.Open(pdf)) Assert.Equal(1, document.NumberOfPages);
        var text = Text(pdf);
        Assert.Contains("Sample id S-PDF-UNIT", text);
        Assert.Contains("Session id 20261203-081500-ab12", text);
        Assert.Contains("Reviewer Dr B", text);
        Assert.Contains("Finalized 2026-12-03T08:27:00Z", text);
        Assert.Contains("cellnet-3scale 1.4.0", text);
        foreach (var (label, line) in report.Differential)
            Assert.Contains($"{label} {line.Count} {P(line.Percent)} {P(line.Ci95[0])}–{P(line.Ci95[1])}", text);
        var monocyte = report.Differential["monocyte"];
        Assert.Contains($"monocyte 7 7.0 {P(monocyte.Ci95[0])}–{P(monocyte.Ci95[1])} 2.0–6.0 high", text); // 7 % above 2-6 %
        Assert.Contains("RBC 4120", text);
        Assert.Contains("Platelets 212", text);
        Assert.Contains(report.Precision, text);
        Assert.Contains("Amendments after sign-off", text);
        Assert.Contains("3 87 lymphocyte → monocyte Dr B 2026-12-03T08:56:00Z", text);
        Assert.Contains("No patient name", text);
    }

    [Fact]
    public void A_marrow_report_carries_the_nucleated_count_the_ME_ratio_the_plasma_cells_and_what_was_not_measured()
    {
        var marrow = new MarrowSummary(500,
            new Dictionary<string, double?> { ["granulocyte"] = 60, ["erythroid"] = 20, ["lymphocyte"] = 12, ["megakaryocyte"] = null,
                ["plasma_cell"] = 6, ["monocyte"] = 2, ["others"] = null },
            3.0, 6.0, [4.3, 8.4], ["others"]);
        var report = BloodReport() with { Marrow = marrow, Amendments = [], SampleId = "M-7",
            Groups = new Dictionary<string, long> { ["granulocyte"] = 300, ["erythroid"] = 100, ["lymphocyte"] = 60, ["megakaryocyte"] = 3, ["plasma_cell"] = 30, ["monocyte"] = 10 } };

        var text = Text(ReportPdf.Build(report));
        Assert.Contains("Bone marrow differential", text);
        Assert.Contains("Nucleated cells 500", text);
        Assert.Contains("M:E ratio 3.00", text);
        Assert.Contains("Plasma cells 6.0 % (95 % interval 4.3–8.4)", text);
        Assert.Contains("plasma_cell 30 6.0", text);
        Assert.Contains("others not measured", text);
        Assert.DoesNotContain("Amendments after sign-off", text);
    }

    [Fact]
    public void A_long_differential_flows_onto_a_second_page_with_the_footer_on_each()
    {
        var report = BloodReport();
        var many = Enumerable.Range(1, 60).ToDictionary(i => $"label{i:00}", i => new DifferentialLine(i, 1, [0.5, 2.5], null, null));
        var pdf = ReportPdf.Build(report with { Differential = many });
        using var document = PdfDocument.Open(pdf);
        Assert.True(document.NumberOfPages >= 2);
        foreach (var page in document.GetPages())
            Assert.Contains($"page {page.Number} of {document.NumberOfPages}", string.Join(" ", page.GetWords().Select(w => w.Text)));
        Assert.Contains("label60 60", Text(pdf));
    }

    [Fact]
    public void Without_a_font_file_the_error_says_which_package_to_install()
    {
        var nowhere = Path.Combine(Path.GetTempPath(), "edgecounter-no-fonts-" + Guid.NewGuid().ToString("N"));
        var e = Assert.Throws<ReportFontMissingException>(() =>
            ReportFonts.Locate([(Path.Combine(nowhere, "DejaVuSans.ttf"), Path.Combine(nowhere, "DejaVuSans-Bold.ttf"))]));
        Assert.Contains("apt-get install fonts-dejavu-core", e.Message);
        Assert.Contains(nowhere, e.Message);
        Assert.Equal("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", ReportFonts.Install().RegularPath); // as Debian's package installs it
    }
}
