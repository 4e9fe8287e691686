using System.Globalization;
using EdgeCounter.Counting;
using PdfSharp.Drawing;
using PdfSharp.Pdf;

namespace EdgeCounter.Reporting;

/// <summary>
/// The report as a PDF a lab files (reports/&lt;sessionId&gt;.pdf): A4, the session's facts, the differential with its
/// intervals, reference ranges and flags, the other totals, the precision note, the marrow figures (marrow mode) and the
/// amendments. Pure but for reading the font files once (<see cref="ReportFonts"/>): the same report gives the same pages.
/// </summary>
public static class ReportPdf
{
    private static readonly XBrush Muted = new XSolidBrush(XColor.FromArgb(90, 90, 90));
    private static readonly XBrush FlagBrush = new XSolidBrush(XColor.FromArgb(180, 20, 20));
    private static readonly XBrush HeaderFill = new XSolidBrush(XColor.FromArgb(235, 238, 242));

    private const string NoPatientData = "No patient name or other patient data is on this report: the sample id is the only link to the patient.";

    /// <summary>Throws <see cref="ReportFontMissingException"/> when no font is installed.</summary>
    public static byte[] Build(SessionReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        ReportFonts.Install();
        var fonts = new Fonts();
        using var document = new PdfDocument();
        document.Info.Title = $"{Title(report)}: sample {report.SampleId}";
        document.Info.Subject = $"Session {report.SessionId}";
        document.Info.Creator = "EdgeCounter";
        document.Info.CreationDate = report.IssuedAt.UtcDateTime;
        document.Info.ModificationDate = report.IssuedAt.UtcDateTime;

        using (var flow = new PdfPageFlow(document))
        {
            Heading(flow, fonts, report);
            Facts(flow, fonts, report);
            Differential(flow, fonts, report);
            if (report.Marrow is { } marrow) Marrow(flow, fonts, report, marrow);
            OtherTotals(flow, fonts, report);
            Section(flow, fonts, "Precision");
            flow.Paragraph(report.Precision, fonts.Body);
            Amendments(flow, fonts, report);
        }
        Footers(document, fonts, report);

        using var stream = new MemoryStream();
        document.Save(stream, closeStream: false);
        return stream.ToArray();
    }

    private sealed class Fonts
    {
        public readonly XFont Title = new(ReportFonts.Family, 17, XFontStyleEx.Bold);
        public readonly XFont Section = new(ReportFonts.Family, 11.5, XFontStyleEx.Bold);
        public readonly XFont Body = new(ReportFonts.Family, 9.5);
        public readonly XFont Bold = new(ReportFonts.Family, 9.5, XFontStyleEx.Bold);
        public readonly XFont Small = new(ReportFonts.Family, 7.5);
    }

    private static string Title(SessionReport report) => report.Marrow is null ? "White cell differential" : "Bone marrow differential";

    private static void Heading(PdfPageFlow flow, Fonts fonts, SessionReport report)
    {
        flow.Text(Title(report), fonts.Title, flow.Left);
        var status = report.State switch
        {
            SessionState.Final when report.Amendments.Count > 0 => "FINAL, AMENDED",
            SessionState.Final => "FINAL",
            var s => s.ToString().ToUpperInvariant() + " (not signed)",
        };
        flow.Y += 4;
        flow.Text(status, fonts.Section, flow.Left, report.Amendments.Count > 0 ? FlagBrush : null, rightAlignedWidth: flow.Width);
        flow.Y += fonts.Title.GetHeight() + 2;
        flow.Rule(1.2, XColors.Black);
        flow.Y += 10;
    }

    private static void Facts(PdfPageFlow flow, Fonts fonts, SessionReport report)
    {
        var cells = report.Marrow is null ? "White cells counted" : "Nucleated cells counted";
        (string, string)[] left =
        [
            ("Sample id", report.SampleId), ("Session id", report.SessionId), ("Reviewer", report.Reviewer ?? "(not signed)"),
            ("Fields examined", N(report.Fields)), (cells, N(report.WhiteCells)), ("Model", $"{report.ModelName} {report.ModelVersion}"),
        ];
        (string, string)[] right =
        [
            ("Started", Time(report.StartedAt)), ("Ended", Time(report.EndedAt)), ("Finalized", Time(report.FinalizedAt)),
            ("Issued", Time(report.IssuedAt)), ("Corrections", N(report.Corrections)), ("Amendments", N(report.Amendments.Count)),
        ];
        var lineHeight = fonts.Body.GetHeight() * 1.45;
        var half = flow.Width / 2;
        var leftValues = flow.Left + KeyWidth(flow, fonts, left);
        var rightKeys = flow.Left + half + 10;
        var rightValues = rightKeys + KeyWidth(flow, fonts, right);
        for (var i = 0; i < left.Length; i++)
        {
            flow.Text(left[i].Item1, fonts.Body, flow.Left, Muted);
            flow.Text(left[i].Item2, i == 0 ? fonts.Bold : fonts.Body, leftValues);
            flow.Text(right[i].Item1, fonts.Body, rightKeys, Muted);
            flow.Text(right[i].Item2, fonts.Body, rightValues);
            flow.Y += lineHeight;
        }
        flow.Y += 6;
    }

    /// <summary>The width of the key column: the widest key and a gap, so no value runs into its key.</summary>
    private static double KeyWidth(PdfPageFlow flow, Fonts fonts, (string Key, string Value)[] pairs) =>
        pairs.Max(p => flow.Graphics.MeasureString(p.Key, fonts.Body).Width) + 14;

    private static void Section(PdfPageFlow flow, Fonts fonts, string title)
    {
        flow.Reserve(50); // a heading is never left alone at the foot of a page
        flow.Y += 8;
        flow.Text(title, fonts.Section, flow.Left);
        flow.Y += fonts.Section.GetHeight() + 2;
        flow.Rule();
        flow.Y += 5;
    }

    /// <summary>A table: a shaded header row, then the rows; numeric columns right-aligned. A page break repeats the header.</summary>
    private static void Table(PdfPageFlow flow, Fonts fonts, (string Header, double Width, bool Right)[] columns,
        IEnumerable<(string[] Cells, bool Flagged)> rows)
    {
        var rowHeight = fonts.Body.GetHeight() * 1.5;
        void Header()
        {
            flow.Graphics.DrawRectangle(HeaderFill, flow.Left, flow.Y - 2, flow.Width, rowHeight);
            Row(columns.Select(c => c.Header).ToArray(), fonts.Bold, null);
        }
        void Row(string[] cells, XFont font, XBrush? last)
        {
            var x = flow.Left + 4;
            for (var i = 0; i < columns.Length; i++)
            {
                var brush = i == columns.Length - 1 ? last : null;
                flow.Text(cells[i], font, x, brush, columns[i].Right ? columns[i].Width - 12 : null);
                x += columns[i].Width;
            }
            flow.Y += rowHeight;
        }
        flow.Reserve(rowHeight * 3);
        Header();
        foreach (var (cells, flagged) in rows)
        {
            if (flow.Reserve(rowHeight)) Header();
            Row(cells, flagged ? fonts.Bold : fonts.Body, flagged ? FlagBrush : null);
        }
        flow.Y += 2;
    }

    private static void Differential(PdfPageFlow flow, Fonts fonts, SessionReport report)
    {
        Section(flow, fonts, report.Marrow is null ? "Differential (percent of white cells)" : "Differential by label (percent of nucleated cells)");
        if (report.Differential.Count == 0)
        {
            flow.Paragraph("No differential: no cells were counted.", fonts.Body);
            return;
        }
        Table(flow, fonts,
            [("Cell", 130, false), ("Count", 55, true), ("%", 55, true), ("95 % interval", 100, true), ("Reference", 95, true), ("Flag", 60, false)],
            report.Differential.Select(d => (new[]
            {
                d.Key, N(d.Value.Count), P(d.Value.Percent), $"{P(d.Value.Ci95[0])}–{P(d.Value.Ci95[1])}",
                d.Value.ReferenceRange is [var low, var high] ? $"{P(low)}–{P(high)}" : "",
                d.Value.Flag ?? "",
            }, d.Value.Flag is not null)));
    }

    private static void Marrow(PdfPageFlow flow, Fonts fonts, SessionReport report, MarrowSummary marrow)
    {
        Section(flow, fonts, "Marrow differential (percent of nucleated cells)");
        var lineHeight = fonts.Body.GetHeight() * 1.45;
        (string, string)[] figures =
        [
            ("Nucleated cells", N(marrow.NucleatedCells)),
            ("M:E ratio", marrow.MyeloidErythroidRatio is { } me ? me.ToString("0.00", CultureInfo.InvariantCulture) : "not available"),
            ("Plasma cells", marrow.PlasmaCellPercent is { } pc
                ? $"{P(pc)} %" + (marrow.PlasmaCellPercentCi95 is [var lo, var hi] ? $"  (95 % interval {P(lo)}–{P(hi)})" : "")
                : "not measured"),
        ];
        var values = flow.Left + KeyWidth(flow, fonts, figures);
        foreach (var (key, value) in figures)
        {
            flow.Reserve(lineHeight);
            flow.Text(key, fonts.Body, flow.Left, Muted);
            flow.Text(value, fonts.Body, values);
            flow.Y += lineHeight;
        }
        flow.Y += 4;
        Table(flow, fonts, [("Category", 185, false), ("Count", 70, true), ("% of nucleated", 100, true)],
            MarrowDifferential.Categories.Select(c => (new[]
            {
                c, report.Groups.TryGetValue(c, out var n) ? N(n) : "",
                marrow.Percent.GetValueOrDefault(c) is { } p ? P(p) : marrow.NotMeasured.Contains(c) ? "not measured" : "–",
            }, false)));
        flow.Paragraph("Megakaryocytes are counted but left out of the nucleated cells: they have no percentage.", fonts.Body, brush: Muted);
        if (marrow.NotMeasured.Count > 0)
            flow.Paragraph("Not measured (the model has no label for them; not zero): " + string.Join(", ", marrow.NotMeasured) + ".", fonts.Body, brush: Muted);
    }

    private static void OtherTotals(PdfPageFlow flow, Fonts fonts, SessionReport report)
    {
        var others = report.Totals.Where(t => !report.Differential.ContainsKey(t.Key)).ToList();
        var groups = report.Marrow is null ? report.Groups.ToList() : [];   // marrow groups are in the marrow table
        if (others.Count == 0 && groups.Count == 0) return;
        Section(flow, fonts, "Other counts");
        Table(flow, fonts, [("Counted as", 185, false), ("Count", 70, true), ("", 100, false)],
            others.Select(t => (new[] { t.Key, N(t.Value), "outside the differential" }, false))
                .Concat(groups.Select(g => (new[] { g.Key, N(g.Value), "report group" }, false))));
    }

    private static void Amendments(PdfPageFlow flow, Fonts fonts, SessionReport report)
    {
        if (report.Amendments.Count == 0) return;
        Section(flow, fonts, "Amendments after sign-off");
        Table(flow, fonts, [("#", 30, false), ("Cell", 50, true), ("Change", 170, false), ("Reviewer", 95, false), ("Time (UTC)", 150, false)],
            report.Amendments.Select(a => (new[]
            {
                N(a.Seq), N(a.CellId), a.To is null ? $"{a.From ?? "?"} → rejected" : $"{a.From ?? "?"} → {a.To}", a.Reviewer, Time(a.At),
            }, false)));
    }

    /// <summary>Drawn last, when the page count is known: the no-patient-data statement and page x of y on every page.</summary>
    private static void Footers(PdfDocument document, Fonts fonts, SessionReport report)
    {
        for (var i = 0; i < document.PageCount; i++)
        {
            var page = document.Pages[i];
            using var gfx = XGraphics.FromPdfPage(page, XGraphicsPdfPageOptions.Append);
            var y = page.Height.Point - PdfPageFlow.Margin - 14;
            var width = page.Width.Point - 2 * PdfPageFlow.Margin;
            gfx.DrawLine(new XPen(XColors.Gray, 0.5), PdfPageFlow.Margin, y - 6, PdfPageFlow.Margin + width, y - 6);
            gfx.DrawString(NoPatientData, fonts.Small, Muted, PdfPageFlow.Margin, y + 4);
            var right = $"Sample {report.SampleId} · session {report.SessionId} · page {i + 1} of {document.PageCount}";
            gfx.DrawString(right, fonts.Small, Muted, PdfPageFlow.Margin + width - gfx.MeasureString(right, fonts.Small).Width, y + 15);
            gfx.DrawString($"EdgeCounter, issued {Time(report.IssuedAt)}", fonts.Small, Muted, PdfPageFlow.Margin, y + 15);
        }
    }

    private static string N(long value) => value.ToString(CultureInfo.InvariantCulture);
    private static string P(double value) => value.ToString("0.0", CultureInfo.InvariantCulture);
    private static string Time(DateTimeOffset? t) => t?.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture) ?? "–";
}
