using EdgeCounter.Counting;
using EdgeCounter.Detection;

namespace EdgeCounter.Tests.Counting;

internal static class CountingTestData
{
    public static readonly string[] WhiteLabels = ["neutrophil", "eosinophil", "basophil", "lymphocyte", "monocyte"];

    public static ModelInfo Model() => new(
        "edgecounter-cellnet", "1.0.0",
        [.. WhiteLabels, "RBC", "Platelets"],
        new Dictionary<string, IReadOnlyList<string>>
        {
            ["WBC"] = WhiteLabels,
            ["granulocyte"] = ["neutrophil", "eosinophil", "basophil"],
        },
        WhiteLabels);

    public static CountingCatalog Catalog(IReadOnlyDictionary<string, string[]>? extra = null) => CountingCatalog.FromModel(Model(), extra);

    public static IReadOnlyList<global::EdgeCounter.Detection.Detection> Field(params (string Label, int Count)[] cells)
    {
        var list = new List<global::EdgeCounter.Detection.Detection>();
        var x = 0f;
        foreach (var (label, count) in cells)
            for (var i = 0; i < count; i++, x += 10)
                list.Add(new global::EdgeCounter.Detection.Detection(label, WhiteLabels.Contains(label) ? "WBC" : label, 0.9f, new BoxF(x, 0, x + 8, 8)));
        return list;
    }
}
