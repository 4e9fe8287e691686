using System.Globalization;
using System.Text.Json;
using EdgeCounter.Commands.Simcheck;

namespace EdgeCounter.Commands;

/// <summary><c>simcheck</c>: is each cell counted once? The real pipeline on the simulated microscope, judged by its truth.</summary>
public static class SimcheckCommand
{
    public const string Usage = """
        simcheck: run the real service pipeline on the simulated microscope and follow every counted cell by its
        simulator id: is each cell counted once?
          EdgeCounter simcheck [options] [--EdgeCounter:Key=Value ...]
            --overlap F          neighbour overlap of the stage's meander, 0..0.85 (default 0.1; Source:Simulator:FieldOverlap)
            --seconds N          simulated seconds (default 120; virtual time, usually faster than real time)
            --seed S             simulator seed (default 1)
            --profile P          blood | marrow (default blood)
            --json FILE          also write the figures as JSON
            --map FILE           write the slide map (JPEG) at the end, as published on P/slide/image
            --EdgeCounter:...    any service setting (e.g. --EdgeCounter:Source:Simulator:DiagonalMoveProbability=0.3)
        Per class group (WBC, RBC, Platelets): distinctCounted (cells counted at least once), doubleCounted (counted
        detections of an already counted cell / distinctCounted), wronglySuppressed (detections marked alreadyCounted
        whose cell had not been counted / distinctCounted), doubleCountedInOneField (of the double counts, those in
        the field of the cell's first count: the detector boxed one cell twice), movedCounts (counts moved from a field
        where the cell was cut by the edge to one where it is whole), labelAgreement (white cells: share of the counted
        cells whose label is their simulated type; labelAgreementFirstView: the same with the label of each cell's first
        count, i.e. without moved counts); fields, unknownPositionFields,
        odometryErrorPx (median |estimated - true field position|, within a segment).
        """;

    private const string Prefix = "EdgeCounter:";

    public static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, WriteIndented = true };

    public static async Task<int> RunAsync(CommandLine args, CancellationToken cancellationToken)
    {
        var overlap = args.Double("overlap", 0.1);
        var seconds = args.Double("seconds", 120);
        var seed = args.Int("seed", 1);
        var profile = args.String("profile") ?? "blood";
        var jsonPath = args.String("json");
        var mapPath = args.String("map") is { } m ? Path.GetFullPath(m) : null;
        if (overlap is < 0 or > 0.85) throw new CommandLineException("--overlap must be within 0..0.85");
        if (!(seconds > 0) || seconds > 36_000) throw new CommandLineException("--seconds must be within (0, 36000]");
        if (profile is not ("blood" or "marrow")) throw new CommandLineException("--profile must be blood or marrow");
        var overrides = new List<string>();
        foreach (var key in args.Unread.Where(k => k.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase)).ToList())
            overrides.Add($"--{key}={args.String(key)}");
        args.ThrowOnUnknown();

        SimcheckResult result;
        try
        {
            result = await SimcheckRun.RunAsync(new SimcheckSettings(overlap, seconds, seed, profile, overrides, mapPath), cancellationToken, Console.Error.WriteLine);
        }
        catch (EdgeCounter.Hosting.ConfigurationProblemException e)
        {
            Console.Error.WriteLine("simcheck: invalid settings");
            foreach (var problem in e.Problems) Console.Error.WriteLine($"  - {problem}");
            return EdgeCounter.Hosting.ServiceHost.ConfigurationError;
        }
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Format(inv, "simcheck overlap {0} seed {1} {2}, {3} simulated s: {4} fields counted, {5} with unknown position, {6} revisits skipped, odometry error {7} px",
            overlap, seed, profile, result.SimulatedSeconds, result.Fields, result.UnknownPositionFields, result.Revisits, result.OdometryErrorPx?.ToString("0.0", inv) ?? "n/a"));
        Console.WriteLine("| class | distinct counted | on slide | double counted (in one field) | wrongly suppressed | detections counted / suppressed / unmatched | moved | label agreement |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        foreach (var (group, g) in result.PerClass)
            Console.WriteLine(string.Format(inv, "| {0} | {1} | {2} | {3:0.0%} ({4}; {10}) | {5:0.0%} ({6}) | {7} / {8} / {9} | {11} | {12} |",
                group, g.DistinctCounted, g.DistinctOnSlide, g.DoubleCounted, g.DoubleCountedDetections, g.WronglySuppressed, g.WronglySuppressedDetections,
                g.CountedDetections, g.SuppressedDetections, g.Unmatched, g.DoubleCountedInOneField, g.MovedCounts,
                g.LabelAgreement is { } a ? $"{a.ToString("0.0%", inv)} (first view {g.LabelAgreementFirstView!.Value.ToString("0.0%", inv)})" : "-"));
        if (jsonPath is not null)
        {
            var full = Path.GetFullPath(jsonPath);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            await File.WriteAllTextAsync(full, JsonSerializer.Serialize(result, Json), cancellationToken);
        }
        return 0;
    }
}
