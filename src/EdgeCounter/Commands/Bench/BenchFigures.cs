using System.Globalization;
using System.Text.Json;

namespace EdgeCounter.Commands.Bench;

/// <summary>Timings of repeated runs of one step, in milliseconds.</summary>
public sealed class Samples(IReadOnlyList<double> milliseconds)
{
    public IReadOnlyList<double> Milliseconds { get; } = milliseconds;

    public int Count => Milliseconds.Count;

    public double Median => Percentile(0.5);

    public double P95 => Percentile(0.95);

    public double Min => Milliseconds.Count == 0 ? double.NaN : Milliseconds.Min();

    public double Percentile(double p)
    {
        if (Milliseconds.Count == 0) return double.NaN;
        var sorted = Milliseconds.Order().ToArray();
        // Nearest rank on the sorted samples, interpolated between neighbours.
        var rank = p * (sorted.Length - 1);
        var lo = (int)Math.Floor(rank);
        var hi = Math.Min(sorted.Length - 1, lo + 1);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
    }

    /// <summary>Runs <paramref name="body"/> a few times to warm up, then until the budget is spent (within the iteration bounds).</summary>
    public static Samples Measure(Action body, TimeSpan budget, int warmup = 3, int minIterations = 5, int maxIterations = 100_000)
    {
        for (var i = 0; i < warmup; i++) body();
        var times = new List<double>();
        var deadline = System.Diagnostics.Stopwatch.GetTimestamp() + (long)(budget.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
        while (times.Count < maxIterations && (times.Count < minIterations || System.Diagnostics.Stopwatch.GetTimestamp() < deadline))
        {
            var start = System.Diagnostics.Stopwatch.GetTimestamp();
            body();
            times.Add(System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
        return new Samples(times);
    }
}

/// <summary>One line of the bench table; <see cref="Key"/> is its name in the JSON report.</summary>
public sealed record Figure(string Group, string What, string Key, double Value, string Unit, string? Note = null);

/// <summary>Every figure of a bench run, in the order measured, plus text facts about the machine and model.</summary>
public sealed class BenchReport
{
    private readonly List<Figure> _figures = new();
    private readonly List<(string Key, string Value)> _facts = new();
    private readonly List<TargetResult> _targets = new();

    public IReadOnlyList<Figure> Figures => _figures;

    public IReadOnlyList<(string Key, string Value)> Facts => _facts;

    public void Add(string group, string what, string key, double value, string unit, string? note = null) =>
        _figures.Add(new Figure(group, what, key, value, unit, note));

    public void Fact(string key, string value) => _facts.Add((key, value));

    /// <summary>The targets checked against this run's figures (<see cref="BenchTargets.Check"/>), printed last.</summary>
    public IReadOnlyList<TargetResult> Targets => _targets;

    public void SetTargets(IEnumerable<TargetResult> targets)
    {
        _targets.Clear();
        _targets.AddRange(targets);
    }

    public double? this[string key] => _figures.LastOrDefault(f => f.Key == key)?.Value;

    public void PrintTable(TextWriter writer)
    {
        foreach (var (key, value) in _facts) writer.WriteLine($"{key,-22} {value}");
        writer.WriteLine();
        var whatWidth = Math.Max(20, _figures.Select(f => f.What.Length).Concat(_targets.Select(t => TargetLabel(t).Length)).DefaultIfEmpty(0).Max());
        string? group = null;
        foreach (var f in _figures)
        {
            if (f.Group != group)
            {
                group = f.Group;
                writer.WriteLine($"== {group}");
            }
            var whole = Math.Abs(f.Value - Math.Round(f.Value)) < 1e-9;
            var value = double.IsFinite(f.Value) ? f.Value.ToString(f.Value >= 100 || whole ? "0" : "0.00", CultureInfo.InvariantCulture) : "n/a";
            writer.WriteLine($"  {f.What.PadRight(whatWidth)} {value,10} {f.Unit,-9} {f.Note}");
        }
        if (_targets.Count == 0) return;
        writer.WriteLine("== Targets (floor / goal; ratio: this graph against the default fp32 graph on CPU, alternating in this run)");
        foreach (var t in _targets)
        {
            var value = double.IsFinite(t.Value) ? t.Value.ToString("0.00", CultureInfo.InvariantCulture) : "n/a";
            var ratio = t.RatioToFp32Cpu is { } r ? $"{r.ToString("0.00", CultureInfo.InvariantCulture)}x fp32 CPU" : "";
            writer.WriteLine($"  {TargetLabel(t).PadRight(whatWidth)} {value,10} {t.Target.Unit,-9} {t.Target.Bounds,-14} {t.Verdict,-12} {ratio}");
        }
    }

    private static string TargetLabel(TargetResult t) => $"{t.Target.What} ({t.Target.Key})";

    /// <summary>Flat JSON: facts as strings, figures as numbers (null when not measured), keyed by snake_case names.</summary>
    public void WriteJson(Stream stream)
    {
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        foreach (var (key, value) in _facts) json.WriteString(key, value);
        foreach (var f in _figures)
        {
            if (double.IsFinite(f.Value)) json.WriteNumber(f.Key, Math.Round(f.Value, 3));
            else json.WriteNull(f.Key);
        }
        foreach (var t in _targets) json.WriteString($"target_{t.Target.Key}", t.Verdict);
        json.WriteEndObject();
    }
}
