namespace EdgeCounter.Detection;

/// <summary>
/// Per-label counts of a set of detections with the model's report groups and white-cell differential
/// (all names from <see cref="ModelInfo"/>, none hard-coded). Used by the <c>count</c> command.
/// </summary>
public sealed class DetectionTally
{
    private readonly ModelInfo _model;
    private readonly Dictionary<string, int> _counts = new(StringComparer.OrdinalIgnoreCase);

    public DetectionTally(ModelInfo model)
    {
        _model = model;
        foreach (var label in model.Labels) _counts[label] = 0;
    }

    public void Add(IEnumerable<Detection> detections)
    {
        foreach (var d in detections) _counts[d.Label] = _counts.GetValueOrDefault(d.Label) + 1;
    }

    public void Add(DetectionTally other)
    {
        foreach (var (label, n) in other._counts) _counts[label] = _counts.GetValueOrDefault(label) + n;
    }

    /// <summary>Count per label, in the model's report order.</summary>
    public IReadOnlyList<(string Label, int Count)> Labels => _model.Labels.Select(l => (l, _counts[l])).ToList();

    /// <summary>Count per report group (sum of its labels).</summary>
    public IReadOnlyList<(string Group, int Count)> Groups =>
        _model.Groups.Select(g => (g.Key, g.Value.Sum(l => _counts.GetValueOrDefault(l)))).ToList();

    public int Count(string label) => _counts.GetValueOrDefault(label);

    public int Total => _counts.Values.Sum();

    /// <summary>Share of each differential label among all differential labels (0..1; NaN when none was seen).</summary>
    public IReadOnlyList<(string Label, double Share)> Differential
    {
        get
        {
            var total = _model.DifferentialLabels.Sum(l => _counts.GetValueOrDefault(l));
            return _model.DifferentialLabels.Select(l => (l, total == 0 ? double.NaN : (double)_counts.GetValueOrDefault(l) / total)).ToList();
        }
    }
}
