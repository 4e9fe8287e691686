using EdgeCounter.Detection;

namespace EdgeCounter.Counting;

/// <summary>What a session counts and how it reports: labels in report order, report groups, differential labels.</summary>
public sealed class CountingCatalog
{
    public CountingCatalog(
        IReadOnlyList<string> labels,
        IReadOnlyDictionary<string, IReadOnlyList<string>> groups,
        IReadOnlyList<string> differentialLabels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(groups);
        ArgumentNullException.ThrowIfNull(differentialLabels);
        if (labels.Count == 0) throw new ArgumentException("At least one label is needed.", nameof(labels));
        if (labels.Distinct(StringComparer.Ordinal).Count() != labels.Count)
            throw new ArgumentException("Labels must be unique.", nameof(labels));
        if (differentialLabels.Count == 0)
            throw new ArgumentException("At least one differential label is needed (the target counts them).", nameof(differentialLabels));
        var known = new HashSet<string>(labels, StringComparer.Ordinal);
        foreach (var label in differentialLabels)
            if (!known.Contains(label)) throw new ArgumentException($"Differential label '{label}' is not a model label.", nameof(differentialLabels));
        foreach (var (group, members) in groups)
        {
            if (members.Count == 0) throw new ArgumentException($"Group '{group}' is empty.", nameof(groups));
            foreach (var member in members)
                if (!known.Contains(member)) throw new ArgumentException($"Group '{group}' names '{member}', which is not a model label.", nameof(groups));
        }

        Labels = labels.ToArray();
        Groups = groups.ToDictionary(g => g.Key, g => (IReadOnlyList<string>)g.Value.ToArray(), StringComparer.Ordinal);
        GroupOrder = groups.Keys.ToArray();
        DifferentialLabels = differentialLabels.ToArray();
    }

    public IReadOnlyList<string> Labels { get; }

    public IReadOnlyDictionary<string, IReadOnlyList<string>> Groups { get; }

    /// <summary>Group names in the order they were configured (model groups first, then extra groups).</summary>
    public IReadOnlyList<string> GroupOrder { get; }

    public IReadOnlyList<string> DifferentialLabels { get; }

    /// <summary>The marrow differential this catalog reports (its groups are the paper's categories, its differential
    /// the nucleated cells); null in blood mode.</summary>
    public MarrowDifferential? Marrow { get; private init; }

    /// <summary>Sum over the differential labels (the white cells a target counts), given a count per label.</summary>
    public long DifferentialTotal(Func<string, long> countOf) => DifferentialLabels.Sum(countOf);

    /// <summary>Each report group's total (sum of its labels), in configured order, given a count per label.</summary>
    public IReadOnlyDictionary<string, long> GroupTotals(Func<string, long> countOf)
    {
        var result = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var name in GroupOrder) result[name] = Groups[name].Sum(countOf);
        return result;
    }

    /// <summary>Each differential label's share of <see cref="DifferentialTotal"/> in percent, in catalog order;
    /// null when no differential label was counted (a share of nothing is undefined: callers show 0 or "-").</summary>
    public IReadOnlyDictionary<string, double>? DifferentialPercent(Func<string, long> countOf)
    {
        var total = DifferentialTotal(countOf);
        if (total == 0) return null;
        var result = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var label in DifferentialLabels) result[label] = 100.0 * countOf(label) / total;
        return result;
    }

    /// <summary>Blood: the model's labels, groups and differential (white cells). Marrow: the paper's seven categories
    /// over the model's labels as groups, and the nucleated cells as the differential (<see cref="MarrowDifferential"/>).
    /// Then extra report groups from configuration (an extra group with the same name as a group replaces it).</summary>
    public static CountingCatalog FromModel(ModelInfo model, IReadOnlyDictionary<string, string[]>? extraGroups = null, CountingMode mode = CountingMode.Blood)
    {
        ArgumentNullException.ThrowIfNull(model);
        var marrow = mode == CountingMode.Marrow ? MarrowDifferential.For(model) : null;
        var groups = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        var order = new List<string>();
        foreach (var (name, members) in marrow?.Members ?? model.Groups) { groups[name] = members; order.Add(name); }
        if (extraGroups is not null)
            foreach (var (name, members) in extraGroups)
            {
                if (!groups.ContainsKey(name)) order.Add(name);
                groups[name] = members;
            }
        var ordered = order.ToDictionary(n => n, n => groups[n], StringComparer.Ordinal);
        return new CountingCatalog(model.Labels, new OrderedMap<IReadOnlyList<string>>(order, ordered), marrow?.NucleatedLabels ?? model.DifferentialLabels) { Marrow = marrow };
    }
}
