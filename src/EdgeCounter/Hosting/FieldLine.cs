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
        line.Append(CultureInfo.InvariantCulture, $" | white cells {c.WhiteCells}/{c.Target} ({c.Progress:P0})");
        var differential = c.Differential.Where(kv => kv.Value > 0).Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key} {kv.Value:0.#}%"));
        line.Append(" | ").Append(string.Join(" ", differential));
        var others = c.Totals.Where(kv => !c.Differential.ContainsKey(kv.Key) && kv.Value > 0).Select(kv => $"{kv.Key} {kv.Value}");
        line.Append(" | ").Append(string.Join(" ", others));
        line.Append(CultureInfo.InvariantCulture, $" | {detection.TotalMs:0} ms {executionProvider}");
        return line.ToString();
    }
}
