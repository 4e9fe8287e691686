using System.Globalization;
using System.Text;
using EdgeCounter.Counting;
using EdgeCounter.Detection;

namespace EdgeCounter.Hosting;

/// <summary>The one readable console line per counted field.</summary>
public static class FieldLine
{
    public static string Format(FieldCountResult result, DetectionResult detection, string executionProvider)
    {
        var c = result.Counts;
        var tally = result.Tally!;
        var line = new StringBuilder(160);
        line.Append(CultureInfo.InvariantCulture, $"Field {tally.FieldId}");
        if (!string.IsNullOrEmpty(c.SampleId)) line.Append(CultureInfo.InvariantCulture, $" [{c.SampleId}]");
        line.Append(": ");
        var found = tally.Counts.Where(kv => kv.Value > 0).Select(kv => $"{kv.Key} {kv.Value}").ToList();
        line.Append(found.Count > 0 ? string.Join(", ", found) : "no cells");
        line.Append(CultureInfo.InvariantCulture, $" | {(c.Marrow is null ? "white" : "nucleated")} cells {c.WhiteCells}/{c.Target} ({c.Progress:P0})");
        if (c.Marrow is { } marrow) line.Append(" | ").AppendJoin(", ", marrow.Headline());
        // Sections with nothing in them (no white cell yet, no other cell) are left out, not shown as "|  |".
        var differential = c.Differential.Where(kv => kv.Value > 0).Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key} {kv.Value:0.#}%")).ToList();
        if (differential.Count > 0) line.Append(" | ").AppendJoin(' ', differential);
        var others = c.Totals.Where(kv => !c.Differential.ContainsKey(kv.Key) && kv.Value > 0).Select(kv => $"{kv.Key} {kv.Value}").ToList();
        if (others.Count > 0) line.Append(" | ").AppendJoin(' ', others);
        line.Append(CultureInfo.InvariantCulture, $" | {detection.TotalMs:0} ms {executionProvider}");
        return line.ToString();
    }
}
