namespace EdgeCounter.Detection;

/// <summary>
/// Which dataset class a detection counts as. Model names (subtype labels, classes, groups) are paired with dataset
/// class names either explicitly (<c>--map model=dataset,...</c>) or automatically when the names match ignoring case
/// and a plural "s" (Platelet/Platelets). A detection is looked up by its label, then its class, then the groups
/// holding its label; detections with no pair are left out of the evaluation.
/// </summary>
public sealed class LabelPairing
{
    private readonly Dictionary<string, int> _byModelName;
    private readonly IReadOnlyDictionary<string, IReadOnlyList<string>> _groups;

    private LabelPairing(IReadOnlyList<string> datasetClasses, Dictionary<string, int> byModelName,
        IReadOnlyDictionary<string, IReadOnlyList<string>> groups)
    {
        DatasetClasses = datasetClasses;
        _byModelName = byModelName;
        _groups = groups;
        Pairs = byModelName.Select(p => (p.Key, datasetClasses[p.Value])).OrderBy(p => p.Item2, StringComparer.Ordinal).ThenBy(p => p.Key, StringComparer.Ordinal).ToList();
        var paired = byModelName.Values.ToHashSet();
        UnpairedDatasetClasses = datasetClasses.Where((_, i) => !paired.Contains(i)).ToList();
    }

    public IReadOnlyList<string> DatasetClasses { get; }

    /// <summary>(model name, dataset class) pairs in use.</summary>
    public IReadOnlyList<(string Model, string Dataset)> Pairs { get; }

    /// <summary>Dataset classes that no model name feeds (the model cannot detect them).</summary>
    public IReadOnlyList<string> UnpairedDatasetClasses { get; }

    /// <summary>Lower case, '_' for spaces and hyphens, without a plural "s": the key under which names pair
    /// automatically ("plasma cell" and "plasma_cell", "Platelet" and "Platelets").</summary>
    public static string Normalize(string name)
    {
        var n = name.Trim().ToLowerInvariant().Replace(' ', '_').Replace('-', '_');
        return n.Length > 3 && n.EndsWith('s') && !n.EndsWith("ss", StringComparison.Ordinal) ? n[..^1] : n;
    }

    /// <param name="mapSpec">"model=dataset,model=dataset" (explicit pairs; others still pair automatically), or null.</param>
    public static LabelPairing Create(ModelInfo model, IReadOnlyList<string> modelClasses, IReadOnlyList<string> datasetClasses, string? mapSpec)
    {
        var modelNames = modelClasses.Concat(model.Labels).Concat(model.Groups.Keys).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        var byModelName = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);

        int DatasetIndex(string name)
        {
            for (var i = 0; i < datasetClasses.Count; i++)
                if (string.Equals(datasetClasses[i], name, StringComparison.OrdinalIgnoreCase)) return i;
            return -1;
        }

        var explicitTargets = new HashSet<int>();
        if (!string.IsNullOrWhiteSpace(mapSpec))
        {
            foreach (var entry in mapSpec.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var parts = entry.Split('=', StringSplitOptions.TrimEntries);
                if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
                    throw new ArgumentException($"--map entry '{entry}' is not model=dataset");
                var modelName = modelNames.FirstOrDefault(n => string.Equals(n, parts[0], StringComparison.OrdinalIgnoreCase))
                    ?? throw new ArgumentException($"--map: '{parts[0]}' is not a model class, label or group ({string.Join(", ", modelNames)})");
                var target = DatasetIndex(parts[1]);
                if (target < 0) throw new ArgumentException($"--map: '{parts[1]}' is not a dataset class ({string.Join(", ", datasetClasses)})");
                byModelName[modelName] = target;
                explicitTargets.Add(target);
            }
        }
        // Automatic pairs for every name the map left alone, into classes the map did not already feed.
        foreach (var name in modelNames)
        {
            if (byModelName.ContainsKey(name)) continue;
            var key = Normalize(name);
            for (var i = 0; i < datasetClasses.Count; i++)
            {
                if (explicitTargets.Contains(i) || Normalize(datasetClasses[i]) != key) continue;
                byModelName[name] = i;
                break;
            }
        }
        return new LabelPairing(datasetClasses, byModelName, model.Groups);
    }

    /// <summary>Dataset class index of a detection, or -1 when it pairs with none.</summary>
    public int DatasetClassOf(string label, string detectorClass)
    {
        if (_byModelName.TryGetValue(label, out var i)) return i;
        if (_byModelName.TryGetValue(detectorClass, out i)) return i;
        foreach (var (group, members) in _groups)
            if (_byModelName.TryGetValue(group, out i) && members.Contains(label, StringComparer.OrdinalIgnoreCase)) return i;
        return -1;
    }

    public int DatasetClassOf(Detection d) => DatasetClassOf(d.Label, d.Class);
}
