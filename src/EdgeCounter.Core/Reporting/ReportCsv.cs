using EdgeCounter.Counting;
using System.Globalization;
using System.Text;

namespace EdgeCounter.Reporting;

/// <summary>The report as CSV for a spreadsheet or a LIS import: one row per label (differential labels with their
/// percent, interval, range and flag), then the session's facts as key/value rows. Pure.</summary>
public static class ReportCsv
{
    public static string Format(SessionReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var csv = new StringBuilder();
        csv.AppendLine("label,count,percent,ci95_low,ci95_high,reference_low,reference_high,flag");
        foreach (var (label, count) in report.Totals)
        {
            if (report.Differential.TryGetValue(label, out var d))
                csv.AppendLine(Row(label, N(count), N(d.Percent), N(d.Ci95[0]), N(d.Ci95[1]),
                    d.ReferenceRange is { } r ? N(r[0]) : "", d.ReferenceRange is { } r2 ? N(r2[1]) : "", d.Flag ?? ""));
            else csv.AppendLine(Row(label, N(count), "", "", "", "", "", ""));
        }
        if (report.Marrow is { } marrow)
        {
            // The marrow differential: one row per category (its share of the nucleated cells; empty: not measured).
            csv.AppendLine();
            csv.AppendLine("marrow_category,count,percent_of_nucleated");
            foreach (var category in MarrowDifferential.Categories)
                csv.AppendLine(Row(category, report.Groups.TryGetValue(category, out var n) ? N(n) : "",
                    marrow.Percent.GetValueOrDefault(category) is { } p ? N(p) : ""));
        }
        csv.AppendLine();
        csv.AppendLine("key,value");
        foreach (var (key, value) in new (string, string?)[]
                 {
                     ("sessionId", report.SessionId), ("sampleId", report.SampleId), ("state", report.State.ToString().ToLowerInvariant()),
                     ("startedAt", Time(report.StartedAt)), ("endedAt", Time(report.EndedAt)), ("finalizedAt", Time(report.FinalizedAt)),
                     ("reviewer", report.Reviewer), ("fields", N(report.Fields)), ("whiteCells", N(report.WhiteCells)),
                     ("corrections", N(report.Corrections)), ("amendments", N(report.Amendments.Count)),
                     ("model", $"{report.ModelName} {report.ModelVersion}"), ("issuedAt", Time(report.IssuedAt)), ("precision", report.Precision),
                 }.Concat(report.Marrow is { } m
                     ? [("nucleatedCells", N(m.NucleatedCells)), ("myeloidErythroidRatio", m.MyeloidErythroidRatio is { } r ? N(r) : ""),
                        ("plasmaCellPercent", m.PlasmaCellPercent is { } pc ? N(pc) : ""),
                        ("plasmaCellPercentCi95", m.PlasmaCellPercentCi95 is [var lo, var hi] ? $"{N(lo)}-{N(hi)}" : ""),
                        ("notMeasured", string.Join(" ", m.NotMeasured))]
                     : Array.Empty<(string, string?)>()))
            csv.AppendLine(Row(key, value ?? ""));
        return csv.ToString();
    }

    private static string N(double value) => value.ToString("0.##", CultureInfo.InvariantCulture);
    private static string Time(DateTimeOffset? t) => t?.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture) ?? "";

    /// <summary>RFC 4180: a value with a comma, quote or line break is quoted, its quotes doubled; a value a spreadsheet
    /// would run as a formula (=, +, -, @ first) gets a leading apostrophe.</summary>
    private static string Row(params string[] values) => string.Join(",", values.Select(Escape));

    private static string Escape(string value)
    {
        if (value.Length > 0 && "=+-@".Contains(value[0]) && !double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out _))
            value = "'" + value;
        return value.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? $"\"{value.Replace("\"", "\"\"")}\"" : value;
    }
}
