using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using EdgeCounter.Detection;
using Microsoft.Extensions.Logging;

namespace EdgeCounter.Commands;

/// <summary>
/// <c>eval --suite</c>: every shared set with the options the model card reports them with, then one table
/// (console, <c>--markdown</c>) and every report (<c>--json</c>). A set that is not there is listed as missing.
/// </summary>
internal static class EvalSuite
{
    /// <summary>The held-out simulator fields: the model card's (training used seed 7).</summary>
    public const int SyntheticFields = 120;

    private static string SyntheticOptions(int fields) => $"synth --fields {fields} --seed 99 --wbc-label merged";

    /// <summary>Held-out simulated marrow fields, each cell under its lineage's name (training used seeds 11 and 97).</summary>
    private static string SyntheticMarrowOptions(int fields) => $"synth --profile marrow --fields {fields} --seed 99";

    internal sealed record Row(string Set, string Options, string Path, Func<EvalSettings, EvalSettings> Configure, string Kind, bool Needed = true);

    public static async Task<int> RunAsync(EvalSettings settings, string? datasetsDir, int syntheticFields, string? jsonPath, string? markdownPath,
        ILoggerFactory loggerFactory, TextWriter output, CancellationToken cancellationToken)
    {
        var datasets = datasetsDir ?? DefaultDatasets();
        if (!Directory.Exists(datasets)) throw new CommandLineException($"--datasets: folder not found: {datasets} (the shared datasets; give --datasets DIR)");
        ModelLabels labels;
        try { labels = ModelLabels.Load(ModelLocator.Resolve(settings.Detector.ResolvedLabelsPath)); }
        catch (ModelLoadException e) { Console.Error.WriteLine($"eval: {e.Message}"); return 1; }
        var hasPlasmaCells = labels.Classes.Concat(labels.Labels).Any(n => LabelPairing.Normalize(n) == "plasma_cell");
        var bccd = System.IO.Path.Combine(datasets, "bccd");
        var subtypesCsv = System.IO.Path.Combine(bccd, "wbc_subtypes.csv");
        var subtypes = File.Exists(subtypesCsv) ? subtypesCsv : null;
        var synthetic = Directory.CreateTempSubdirectory("edgecounter-suite-synth-").FullName;
        var syntheticMarrow = Directory.CreateTempSubdirectory("edgecounter-suite-synth-marrow-").FullName;

        EvalSettings Fixed(EvalSettings s, double scale) => s with { Detector = WithScale(s.Detector, scale) };
        var rows = new List<Row>
        {
            new("BCCD test", "--input-scale 0.75 --subtypes wbc_subtypes.csv", bccd, s => Fixed(s, 0.75) with { Split = "test", SubtypesCsv = subtypes }, "voc"),
            new("BCCD test", "--auto-scale --subtypes wbc_subtypes.csv", bccd, s => s with { AutoScale = true, Split = "test", SubtypesCsv = subtypes }, "voc"),
            new("draaslan all", "--auto-scale --only WBC,RBC", System.IO.Path.Combine(datasets, "draaslan"), s => s with { AutoScale = true, Split = "all", Only = ["WBC", "RBC"] }, "voc"),
            new("Chula RBC-12 test", "--auto-scale --only RBC", System.IO.Path.Combine(datasets, "chula-rbc12"), s => s with { AutoScale = true, Split = "test", Only = ["RBC"] }, "points"),
            new("LISC crops", "--auto-scale (the crops' default)", System.IO.Path.Combine(datasets, "lisc-crops"), s => s with { AutoScale = true }, "crops"),
            new("SegPC-2021 val", "--only plasma_cell (unresized)", System.IO.Path.Combine(datasets, "segpc2021"), s => s with { Split = "val", Only = ["plasma_cell"] }, "voc", hasPlasmaCells),
            new("SegPC-2021 val", "--auto-scale --only plasma_cell", System.IO.Path.Combine(datasets, "segpc2021"), s => s with { AutoScale = true, Split = "val", Only = ["plasma_cell"] }, "voc", hasPlasmaCells),
            new("simulator, held out", $"{SyntheticOptions(syntheticFields)}; eval unresized", synthetic, s => s with { Split = "all" }, "voc"),
            new("simulator marrow, held out (synthetic fields only)", $"{SyntheticMarrowOptions(syntheticFields)}; --name-precursors, eval unresized", syntheticMarrow,
                s => s with { Split = "all", Detector = WithPrecursorsNamed(s.Detector) }, "voc", hasPlasmaCells),
        };

        var results = new List<(Row Row, JsonObject? Report, string? Problem)>();
        try
        {
            foreach (var row in rows)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (!row.Needed) { results.Add((row, null, "the model has no plasma_cell class")); continue; }
                if (row.Path == synthetic)
                    await SynthCommand.RunAsync(new CommandLine([.. SyntheticOptions(syntheticFields).Split(' ').Skip(1), "--out", synthetic]), cancellationToken);
                if (row.Path == syntheticMarrow)
                {
                    await SynthCommand.RunAsync(new CommandLine([.. SyntheticMarrowOptions(syntheticFields).Split(' ').Skip(1), "--out", syntheticMarrow]), cancellationToken);
                    output.WriteLine("Note: the marrow lineages other than plasma cells, erythroblasts and immature granulocytes (myelocytes and metamyelocytes as the");
                    output.WriteLine("simulator draws them, band neutrophils, blasts, megakaryocytes) are measured here on synthetic fields only: no public set labels them.");
                }
                if (!Directory.Exists(row.Path)) { results.Add((row, null, $"not found: {row.Path}")); continue; }
                output.WriteLine();
                output.WriteLine($"=== {row.Set} ({(row.Options.Length == 0 ? "defaults" : row.Options)})");
                var rowSettings = row.Configure(settings with { Detector = settings.Detector.Copy() });
                try
                {
                    var report = row.Kind switch
                    {
                        "voc" => await VocEvaluation.RunAsync(row.Path, rowSettings, loggerFactory, output, cancellationToken),
                        "points" => await PointEvaluation.RunAsync(row.Path, rowSettings, loggerFactory, output, cancellationToken),
                        _ => await CropEvaluation.RunAsync(row.Path, rowSettings, loggerFactory, output, cancellationToken),
                    };
                    results.Add((row, report, null));
                }
                catch (Exception e) when (e is EvalException or CommandLineException) { results.Add((row, null, e.Message)); output.WriteLine($"eval: {e.Message}"); }
            }
        }
        finally
        {
            Directory.Delete(synthetic, recursive: true);
            Directory.Delete(syntheticMarrow, recursive: true);
        }

        var table = Markdown(labels, results);
        output.WriteLine();
        output.WriteLine(table);
        if (markdownPath is not null)
        {
            var directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(markdownPath));
            if (directory is not null) Directory.CreateDirectory(directory);
            await File.WriteAllTextAsync(markdownPath, table, cancellationToken);
            output.WriteLine($"Markdown written to {markdownPath}");
        }
        if (jsonPath is not null)
        {
            var json = new JsonObject
            {
                ["model"] = new JsonObject { ["name"] = labels.Name, ["version"] = labels.Version },
                ["rows"] = new JsonArray(results.Select(r => (JsonNode?)new JsonObject
                {
                    ["set"] = r.Row.Set, ["options"] = r.Row.Options, ["report"] = r.Report, ["problem"] = r.Problem,
                }).ToArray()),
            };
            await EvalCommand.WriteJsonAsync(jsonPath, json, cancellationToken);
        }
        return results.Any(r => r.Problem is not null && r.Row.Needed) ? 1 : 0;
    }

    private static DetectorOptions WithPrecursorsNamed(DetectorOptions options)
    {
        var copy = options.Copy();
        copy.NamePrecursors = true;
        return copy;
    }

    private static DetectorOptions WithScale(DetectorOptions options, double scale)
    {
        var copy = options.Copy();
        copy.InputScale = scale;
        return copy;
    }

    /// <summary>../shared/datasets beside the repository (found from the working directory, else the executable).</summary>
    internal static string DefaultDatasets()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            if (ModelLocator.FindRepositoryRoot(start) is { } root)
                return System.IO.Path.GetFullPath(System.IO.Path.Combine(root, "..", "shared", "datasets"));
        return System.IO.Path.GetFullPath(System.IO.Path.Combine("..", "shared", "datasets"));
    }

    /// <summary>The suite's table: per set AP50, recall and count error per class, subtypes, pixel scale.</summary>
    internal static string Markdown(ModelLabels labels, IReadOnlyList<(Row Row, JsonObject? Report, string? Problem)> results)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"Model {labels.Name} {labels.Version}, `eval --suite`. AP50 and recall at IoU 0.5; recall and count error at the operating thresholds; " +
                      "count error = 100 × (counted − truth) / truth over the set; subtypes: accuracy on decided cells (crops: over all crops, unidentified share).");
        sb.AppendLine();
        sb.AppendLine("| set | options | images | mAP50 | AP50 | recall | count error | subtypes | µm/px |");
        sb.AppendLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        foreach (var (row, report, problem) in results)
        {
            var options = row.Options.Length == 0 ? "" : $"`{row.Options}`";
            if (report is null) { sb.AppendLine($"| {row.Set} | {options} | {problem} | | | | | | |"); continue; }
            var perClass = report["perClass"]?.AsObject() ?? new JsonObject();
            var kind = report["kind"]?.GetValue<string>();
            string PerClass(string key, Func<double, string> format) => kind == "crops" ? "" : string.Join(" · ",
                perClass.Where(p => p.Value?[key] is JsonValue).Select(p => $"{p.Key} {format(p.Value![key]!.GetValue<double>())}"));
            var subtypes = report["subtypes"] is JsonObject s
                ? kind == "crops"
                    ? $"{Num(s["accuracy"])} ({Num(s["accuracyAllCrops"])} of all {s["crops"]}, unidentified {Pct(s["unidentifiedRate"])}, no cell {Pct(s["noWhiteCellRate"])})"
                    : $"{Num(s["accuracy"])} of {s["matched"]}"
                : "";
            sb.AppendLine($"| {row.Set} | {options} | {report["dataset"]?["images"]} | {Num(report["AP50"])} | {PerClass("AP50", v => F(v))} | {PerClass("recall", v => F(v))} | " +
                          $"{PerClass("countErrorPct", v => v.ToString("+0.0;-0.0", CultureInfo.InvariantCulture) + " %")} | {subtypes} | {Scale(report["scale"])} |");
        }
        return sb.ToString();
    }

    /// <summary>The µm/px in use; where it was estimated several times (the red cells' size drifted), their range too.</summary>
    private static string Scale(JsonNode? scale)
    {
        var now = Num(scale?["micrometresPerPixel"], "0.###");
        var estimates = (scale?["estimatedMicrometresPerPixel"] as JsonArray)?.OfType<JsonValue>().Select(v => v.GetValue<double>()).ToList() ?? [];
        return estimates.Count < 2 ? now : $"{now} ({estimates.Count} estimates, {EvalCommand.F(estimates.Min(), "0.###")}-{EvalCommand.F(estimates.Max(), "0.###")})";
    }

    private static string F(double v) => EvalCommand.F(v);

    private static string Num(JsonNode? node, string format = "0.000") => node is JsonValue v ? EvalCommand.F(v.GetValue<double>(), format) : "";

    private static string Pct(JsonNode? node) => node is JsonValue v ? EvalCommand.F(100 * v.GetValue<double>(), "0.0") + " %" : "";
}
