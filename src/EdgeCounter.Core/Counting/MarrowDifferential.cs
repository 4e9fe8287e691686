using EdgeCounter.Detection;

namespace EdgeCounter.Counting;

/// <summary>What a session reports: a blood differential (the model's own groups, white cells) or a marrow one.</summary>
public enum CountingMode
{
    Blood,
    Marrow,
}

/// <summary>
/// A bone-marrow differential over a model's labels: the seven categories of Wang et al. (2021) as report groups, the
/// myeloid:erythroid ratio and the plasma-cell percentage of nucleated cells. Pure.
/// Nucleated cells are the model's white-cell (differential) labels plus the nucleated red-cell precursors; mature red
/// cells and platelets are never among them. Megakaryocytes are counted in their category but, as marrow guidelines
/// ask (ICSH 2008), left out of the nucleated-cell count the percentages and the target are taken over.
/// A category the model has no label for is reported as not measured (null), never as 0: a marrow model that cannot
/// see plasma cells must not report 0 % plasma cells.
/// </summary>
public sealed class MarrowDifferential
{
    public const string Granulocyte = "granulocyte";
    /// <summary>The paper's "erythrocyte" category: nucleated red-cell precursors (erythroblasts), not mature red cells.</summary>
    public const string Erythroid = "erythroid";
    public const string Lymphocyte = "lymphocyte";
    public const string Megakaryocyte = "megakaryocyte";
    public const string PlasmaCell = "plasma_cell";
    public const string Monocyte = "monocyte";
    public const string Others = "others";

    /// <summary>The seven categories in the paper's order.</summary>
    public static IReadOnlyList<string> Categories { get; } = [Granulocyte, Erythroid, Lymphocyte, Megakaryocyte, PlasmaCell, Monocyte, Others];

    /// <summary>The nucleated-cell target a marrow session completes at by default (marrow guidelines ask for 300-500).</summary>
    public const int DefaultTarget = 500;

    /// <summary>Model label (lower case, '_' for spaces and hyphens) to its category. A white-cell label not named here is
    /// counted as "others" (blasts, unidentified cells); a label that is neither here nor a white-cell label (mature red
    /// cells, platelets) is not part of the marrow differential. "erythrocyte" is not mapped: in a blood model it names
    /// mature red cells.</summary>
    private static readonly Dictionary<string, string> KnownLabels = new(StringComparer.Ordinal)
    {
        ["neutrophil"] = Granulocyte, ["band_neutrophil"] = Granulocyte, ["band"] = Granulocyte,
        ["segmented_neutrophil"] = Granulocyte, ["segmented"] = Granulocyte, ["eosinophil"] = Granulocyte, ["basophil"] = Granulocyte,
        ["myeloblast"] = Granulocyte, ["promyelocyte"] = Granulocyte, ["myelocyte"] = Granulocyte, ["metamyelocyte"] = Granulocyte,
        ["immature_granulocyte"] = Granulocyte, ["granulocyte"] = Granulocyte,
        ["erythroblast"] = Erythroid, ["proerythroblast"] = Erythroid, ["normoblast"] = Erythroid, ["nucleated_red_cell"] = Erythroid,
        ["nrbc"] = Erythroid, ["basophilic_erythroblast"] = Erythroid, ["polychromatic_erythroblast"] = Erythroid,
        ["orthochromatic_erythroblast"] = Erythroid,
        ["lymphocyte"] = Lymphocyte,
        ["megakaryocyte"] = Megakaryocyte,
        ["plasma_cell"] = PlasmaCell, ["plasmacyte"] = PlasmaCell,
        ["monocyte"] = Monocyte, ["promonocyte"] = Monocyte,
        ["blast"] = Others, ["unidentified"] = Others, ["others"] = Others, ["other"] = Others,
    };

    private MarrowDifferential(IReadOnlyDictionary<string, IReadOnlyList<string>> members, IReadOnlyList<string> nucleatedLabels)
    {
        Members = members;
        NucleatedLabels = nucleatedLabels;
        NotMeasured = Categories.Where(c => !members.ContainsKey(c)).ToArray();
    }

    /// <summary>Each measured category's model labels, in the paper's order; a category the model cannot see is absent.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Members { get; }

    /// <summary>The labels whose sum is the nucleated-cell count (every category's but the megakaryocytes').</summary>
    public IReadOnlyList<string> NucleatedLabels { get; }

    /// <summary>Categories the model has no label for.</summary>
    public IReadOnlyList<string> NotMeasured { get; }

    /// <summary>The categories over <paramref name="labels"/>, the white-cell ones among them being <paramref name="whiteLabels"/>.</summary>
    public static MarrowDifferential For(IReadOnlyList<string> labels, IReadOnlyList<string> whiteLabels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(whiteLabels);
        var white = new HashSet<string>(whiteLabels, StringComparer.Ordinal);
        var byCategory = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var label in labels)
        {
            var category = KnownLabels.GetValueOrDefault(Normalise(label)) ?? (white.Contains(label) ? Others : null);
            if (category is null) continue;
            if (!byCategory.TryGetValue(category, out var list)) byCategory[category] = list = [];
            list.Add(label);
        }
        var members = Categories.Where(byCategory.ContainsKey).ToDictionary(c => c, c => (IReadOnlyList<string>)byCategory[c], StringComparer.Ordinal);
        var nucleated = labels.Where(l => members.Any(m => m.Key != Megakaryocyte && m.Value.Contains(l))).ToArray();
        if (nucleated.Length == 0)
            throw new ArgumentException($"None of the model's labels ({string.Join(", ", labels)}) is a nucleated marrow cell: a marrow differential needs at least one.");
        return new MarrowDifferential(new OrderedMap<IReadOnlyList<string>>(Categories.Where(members.ContainsKey).ToArray(), members), nucleated);
    }

    public static MarrowDifferential For(ModelInfo model) => For(model.Labels, model.DifferentialLabels);

    /// <summary>The differential given each label's count.</summary>
    public MarrowSummary Summarize(Func<string, long> countOf)
    {
        ArgumentNullException.ThrowIfNull(countOf);
        long? Count(string category) => Members.TryGetValue(category, out var labels) ? labels.Sum(countOf) : null;
        var nucleated = NucleatedLabels.Sum(countOf);
        var percent = new Dictionary<string, double?>(StringComparer.Ordinal);
        foreach (var category in Categories)
        {
            if (category == Megakaryocyte) continue; // not a share of the nucleated cells
            percent[category] = Count(category) is { } n && nucleated > 0 ? Math.Round(100.0 * n / nucleated, 2) : null;
        }
        var (myeloid, erythroid) = (Count(Granulocyte), Count(Erythroid));
        double? ratio = myeloid is { } m && erythroid is > 0 ? Math.Round((double)m / erythroid.Value, 2) : null;
        var plasma = Count(PlasmaCell);
        double[]? plasmaCi = null;
        if (plasma is { } p && nucleated > 0)
        {
            var (low, high) = ProportionInterval.Wilson95Percent(p, nucleated);
            plasmaCi = [Math.Round(low, 2), Math.Round(high, 2)];
        }
        return new MarrowSummary(nucleated, percent, ratio, percent[PlasmaCell], plasmaCi, NotMeasured);
    }

    private static string Normalise(string label) => label.Trim().ToLowerInvariant().Replace(' ', '_').Replace('-', '_');
}

/// <summary>A session's marrow differential, as P/counts and the report carry it (<c>marrow</c>).</summary>
/// <param name="NucleatedCells">Nucleated cells counted (megakaryocytes, mature red cells and platelets left out): what the target counts.</param>
/// <param name="Percent">Each category's share of the nucleated cells in percent, rounded to 0.01 (megakaryocytes have none);
/// null for a category the model cannot see, and for all before the first nucleated cell.</param>
/// <param name="MyeloidErythroidRatio">Granulocytes and their precursors over nucleated erythroid cells, rounded to 0.01; null
/// while no erythroid cell is counted or when the model cannot see either lineage.</param>
/// <param name="PlasmaCellPercent">Plasma cells in percent of the nucleated cells; null when the model cannot see them.</param>
/// <param name="PlasmaCellPercentCi95">Its 95 % interval (Wilson score), [low, high]; null with it.</param>
/// <param name="NotMeasured">The categories the model has no label for.</param>
public sealed record MarrowSummary(
    long NucleatedCells,
    IReadOnlyDictionary<string, double?> Percent,
    double? MyeloidErythroidRatio,
    double? PlasmaCellPercent,
    double[]? PlasmaCellPercentCi95,
    IReadOnlyList<string> NotMeasured)
{
    /// <summary>The two figures a person watching wants, for the console line and the image header: "M:E 2.5" and
    /// "plasma cells 6.2%" ("-" / "not measured" when undefined).</summary>
    public IReadOnlyList<string> Headline() =>
    [
        $"M:E {MyeloidErythroidRatio?.ToString("0.##", System.Globalization.CultureInfo.InvariantCulture) ?? "-"}",
        $"plasma cells {(PlasmaCellPercent is { } p ? p.ToString("0.#", System.Globalization.CultureInfo.InvariantCulture) + "%" : "not measured")}",
    ];
}
