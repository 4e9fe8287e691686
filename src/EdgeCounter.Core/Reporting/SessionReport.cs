using EdgeCounter.Counting;

namespace EdgeCounter.Reporting;

/// <summary>One differential label of the report.</summary>
/// <param name="Ci95">95 % interval of the percent (Wilson score), [low, high].</param>
/// <param name="ReferenceRange">The lab's interval for it, [low, high] percent; null when none is configured.</param>
/// <param name="Flag"><c>low</c> or <c>high</c> against the reference range; null when within it or none is set.</param>
public sealed record DifferentialLine(long Count, double Percent, double[] Ci95, double[]? ReferenceRange, string? Flag);

/// <summary>
/// The signed result of one session (P/report, reports/&lt;sessionId&gt;.json): what a lab files. The sample id is the only
/// link to a patient; no patient data is ever part of it. Built by <see cref="Create"/> from the session as review left it.
/// </summary>
public sealed record SessionReport(
    string SessionId,
    string SampleId,
    SessionState State,
    DateTimeOffset StartedAt,
    DateTimeOffset? EndedAt,
    DateTimeOffset? FinalizedAt,
    string? Reviewer,
    long Fields,
    long WhiteCells,
    IReadOnlyDictionary<string, long> Totals,
    IReadOnlyDictionary<string, long> Groups,
    IReadOnlyDictionary<string, DifferentialLine> Differential,
    string Precision,
    int Corrections,
    IReadOnlyList<CellCorrection> Amendments,
    string ModelName,
    string ModelVersion,
    DateTimeOffset IssuedAt)
{
    /// <summary>The PDF of this report, relative to the state directory; null when none was written.</summary>
    public string? Pdf { get; init; }

    /// <summary>The CSV of this report, relative to the state directory.</summary>
    public string? Csv { get; init; }

    /// <summary>The marrow differential (Counting:Mode marrow); null for blood. There <see cref="WhiteCells"/> counts nucleated cells.</summary>
    public MarrowSummary? Marrow { get; init; }

    public static SessionReport Create(SessionReview review, string modelName, string modelVersion, ReportOptions options, DateTimeOffset issuedAt)
    {
        ArgumentNullException.ThrowIfNull(review);
        ArgumentNullException.ThrowIfNull(options);
        var counts = review.Counts;
        var lines = new Dictionary<string, DifferentialLine>(StringComparer.Ordinal);
        foreach (var (label, percent) in counts.Differential)
        {
            var range = options.ReferenceRanges.GetValueOrDefault(label);
            var flag = range is null || counts.WhiteCells == 0 ? null : percent < range[0] ? "low" : percent > range[1] ? "high" : null;
            lines[label] = new DifferentialLine(counts.Totals.GetValueOrDefault(label), percent, counts.DifferentialCi95[label], range, flag);
        }
        return new SessionReport(counts.SessionId, counts.SampleId, counts.State, counts.StartedAt, counts.EndedAt, counts.FinalizedAt,
            counts.Reviewer, counts.Fields, counts.WhiteCells, counts.Totals, counts.Groups, lines, PrecisionNote(counts.WhiteCells, counts.Marrow is null ? "white cells" : "nucleated cells"),
            review.Corrections.Count, [.. review.Corrections.Where(c => c.Amendment)], modelName, modelVersion, issuedAt)
        {
            Marrow = counts.Marrow,
        };
    }

    /// <summary>What the white-cell count means for the percentages, as Rümke's tables say it: the widest 95 % interval
    /// (at 50 %) for this many cells.</summary>
    public static string PrecisionNote(long whiteCells, string cells = "white cells")
    {
        if (whiteCells == 0) return $"No {cells} were counted: the differential is undefined.";
        var (low, high) = ProportionInterval.Wilson95Percent(whiteCells / 2, whiteCells);
        var half = (high - low) / 2;
        return $"{whiteCells} {cells} counted: a percentage near 50 % is known to about ±{half:F0} points (95 %), smaller " +
            "ones less widely (see each interval)." + (whiteCells < 200 ? " Under 200 cells the intervals are wide; count more cells for a " +
            "tighter differential." : "");
    }
}
