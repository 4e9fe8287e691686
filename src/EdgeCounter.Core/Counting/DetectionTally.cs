using EdgeCounter.Detection;

namespace EdgeCounter.Counting;

/// <summary>
/// Per-label counts of a set of detections, with the report groups and white-cell differential of the model's
/// <see cref="CountingCatalog"/> (the same sums a counting session reports). Used by the <c>count</c> command.
/// </summary>
public sealed class DetectionTally
{
    private readonly CountingCatalog _catalog;
    private readonly Dictionary<string, long> _counts = new(StringComparer.Ordinal); // as CountingCatalog and CountingSession

    public DetectionTally(ModelInfo model) : this(CountingCatalog.FromModel(model)) { }

    public DetectionTally(CountingCatalog catalog)
    {
        _catalog = catalog;
        foreach (var label in catalog.Labels) _counts[label] = 0;
    }

    public void Add(IEnumerable<Detection.Detection> detections)
    {
        foreach (var d in detections) _counts[d.Label] = _counts.GetValueOrDefault(d.Label) + 1;
    }

    public void Add(DetectionTally other)
    {
        foreach (var (label, n) in other._counts) _counts[label] = _counts.GetValueOrDefault(label) + n;
    }

    /// <summary>Count per label, in the model's report order.</summary>
    public IReadOnlyList<(string Label, long Count)> Labels => _catalog.Labels.Select(l => (l, _counts[l])).ToList();

    /// <summary>Count per report group (sum of its labels).</summary>
    public IReadOnlyList<(string Group, long Count)> Groups => _catalog.GroupTotals(Count).Select(g => (g.Key, g.Value)).ToList();

    public long Count(string label) => _counts.GetValueOrDefault(label);

    public long Total => _counts.Values.Sum();

    /// <summary>Each differential label's share in percent; null when no differential label was seen.</summary>
    public IReadOnlyDictionary<string, double>? DifferentialPercent => _catalog.DifferentialPercent(Count);

    public IReadOnlyList<string> DifferentialLabels => _catalog.DifferentialLabels;
}
