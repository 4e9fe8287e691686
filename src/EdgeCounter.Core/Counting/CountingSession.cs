using EdgeCounter.Detection;

namespace EdgeCounter.Counting;

public enum SessionState
{
    /// <summary>Fields are counted.</summary>
    Running,

    /// <summary>The target was reached; fields are no longer added until a start or reset.</summary>
    Completed,

    /// <summary>Stopped by command; fields are no longer added until a start or reset.</summary>
    Stopped,

    /// <summary>Signed off by a reviewer (finalize): the result. Later corrections are kept as amendments.</summary>
    Final,
}

/// <summary>What one counted field added to the session.</summary>
/// <param name="FieldId">1, 2, 3... within the session; never reused, also across restarts.</param>
/// <param name="Counts">What this field adds to the totals per label (only labels that change): its new detections, less
/// the counts that moved here from earlier fields (under the label they were counted with there), so it can be
/// negative for a label; the session's totals are always the sum of its fields' counts.</param>
/// <param name="FirstCellId">The cell id of the field's first new cell; its n-th new cell has FirstCellId + n.</param>
public sealed record FieldTally(string SessionId, long FieldId, IReadOnlyDictionary<string, int> Counts, long FirstCellId = 0);

/// <summary>The running totals of one session (one slide or sample). Pure logic: no clock, no I/O, not thread-safe.</summary>
public sealed class CountingSession
{
    private readonly Dictionary<string, long> _totals;
    private readonly List<CellCorrection> _corrections;

    private CountingSession(
        CountingCatalog catalog, string sessionId, string sampleId, int target, DateTimeOffset startedAt,
        SessionState state, long fields, Dictionary<string, long> totals, DateTimeOffset? endedAt,
        CellLedger? cells = null, List<CellCorrection>? corrections = null, string? reviewer = null, DateTimeOffset? finalizedAt = null)
    {
        Cells = cells ?? new CellLedger();
        _corrections = corrections ?? [];
        Reviewer = reviewer;
        FinalizedAt = finalizedAt;
        Catalog = catalog;
        SessionId = sessionId;
        SampleId = sampleId;
        Target = target;
        StartedAt = startedAt;
        State = state;
        Fields = fields;
        _totals = totals;
        EndedAt = endedAt;
    }

    public CountingCatalog Catalog { get; }
    public string SessionId { get; }
    public string SampleId { get; }

    /// <summary>White cells to count before the session completes.</summary>
    public int Target { get; }

    public DateTimeOffset StartedAt { get; }

    /// <summary>When the session completed or was stopped.</summary>
    public DateTimeOffset? EndedAt { get; private set; }

    public SessionState State { get; private set; }

    /// <summary>Every counted cell by its id (what review names).</summary>
    public CellLedger Cells { get; }

    /// <summary>The audit trail: every reclassify and reject, in order.</summary>
    public IReadOnlyList<CellCorrection> Corrections => _corrections;

    /// <summary>Who signed the result off (finalize); null before.</summary>
    public string? Reviewer { get; private set; }

    public DateTimeOffset? FinalizedAt { get; private set; }

    /// <summary>Whether <see cref="TryAddField"/> accepts fields.</summary>
    public bool AcceptsFields => State == SessionState.Running;

    /// <summary>Fields counted so far; the next field gets id Fields + 1.</summary>
    public long Fields { get; private set; }

    public long NextFieldId => Fields + 1;

    /// <summary>Sum over the differential labels: what the target counts.</summary>
    public long WhiteCells => Catalog.DifferentialTotal(Total);

    /// <summary>0..1 share of the target reached.</summary>
    public double Progress => Math.Min(1.0, (double)WhiteCells / Target);

    public static CountingSession Start(CountingCatalog catalog, string sessionId, string sampleId, int target, DateTimeOffset startedAt)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentException.ThrowIfNullOrWhiteSpace(sessionId);
        ArgumentNullException.ThrowIfNull(sampleId);
        ArgumentOutOfRangeException.ThrowIfLessThan(target, 1);
        return new CountingSession(catalog, sessionId, sampleId, target, startedAt, SessionState.Running, 0,
            new Dictionary<string, long>(StringComparer.Ordinal), null);
    }

    public long Total(string label) => _totals.GetValueOrDefault(label);

    /// <summary>Per-label totals: every catalog label (0 if unseen) in report order, then any other label seen.</summary>
    public IReadOnlyDictionary<string, long> Totals()
    {
        var result = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var label in Catalog.Labels) result[label] = Total(label);
        foreach (var (label, count) in _totals.OrderBy(t => t.Key, StringComparer.Ordinal))
            result.TryAdd(label, count);
        return result;
    }

    /// <summary>Each report group's total, in configured order.</summary>
    public IReadOnlyDictionary<string, long> GroupTotals() => Catalog.GroupTotals(Total);

    /// <summary>Each differential label's share of the white cells in percent (all 0 before the first white cell).</summary>
    public IReadOnlyDictionary<string, double> Differential() =>
        Catalog.DifferentialPercent(Total) ?? Catalog.DifferentialLabels.ToDictionary(l => l, _ => 0.0, StringComparer.Ordinal);

    /// <summary>Adds one field's new cells (each gets the next cell id). Returns false (and changes nothing) when the
    /// session is not running. The field that reaches the target is counted whole, then the session completes.</summary>
    /// <param name="movedOut">Cells counted in earlier fields whose counts move to this field (one per cell, each one of
    /// <paramref name="detections"/>): they leave the totals under their current label as the detections add theirs.</param>
    public bool TryAddField(IReadOnlyList<Detection.Detection> detections, DateTimeOffset at, out FieldTally tally, IReadOnlyList<CellMove>? movedOut = null)
    {
        ArgumentNullException.ThrowIfNull(detections);
        if (!AcceptsFields)
        {
            tally = null!;
            return false;
        }

        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var d in detections) counts[d.Label] = counts.GetValueOrDefault(d.Label) + 1;
        Fields++;
        var first = Cells.Add(Fields, detections);
        foreach (var move in movedOut ?? [])
            if (Cells.MoveOut(move.From, first + move.NewCell) is { } label) counts[label] = counts.GetValueOrDefault(label) - 1;
        foreach (var label in counts.Where(c => c.Value == 0).Select(c => c.Key).ToList()) counts.Remove(label);
        foreach (var (label, count) in counts) _totals[label] = Total(label) + count;
        tally = new FieldTally(SessionId, Fields, OrderLikeCatalog(counts), first);
        if (WhiteCells >= Target)
        {
            State = SessionState.Completed;
            EndedAt = at;
        }
        return true;
    }

    /// <summary>Adds one field given the label of each cell (no score or box), e.g. for tests and tools.</summary>
    public bool TryAddField(IEnumerable<string> labels, DateTimeOffset at, out FieldTally tally, IReadOnlyList<CellMove>? movedOut = null)
    {
        ArgumentNullException.ThrowIfNull(labels);
        return TryAddField([.. labels.Select(l => new Detection.Detection(l, l, 0, default))], at, out tally, movedOut);
    }

    /// <summary>Reclassifies (<paramref name="to"/> set) or rejects (<paramref name="to"/> null) one counted cell: its
    /// count leaves its current label and joins <paramref name="to"/> (or no label); kept in the audit trail, as an
    /// amendment when the result is final. Returns the error (and changes nothing) when the cell cannot be changed so.</summary>
    public string? Correct(long cellId, string? to, string reviewer, DateTimeOffset at, out CellCorrection? correction)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(reviewer);
        correction = null;
        if (!Cells.TryGet(cellId, out var cell))
            return $"cell {cellId} is not a cell of session {SessionId} (it has cells 1..{Cells.Count})";
        if (cell.Status == CellStatus.Moved)
            return $"cell {cellId} was counted again whole as cell {cell.MovedTo}: correct that one";
        if (to is not null && !Catalog.Labels.Contains(to, StringComparer.Ordinal))
            return $"'{to}' is not a label of this model (labels: {string.Join(", ", Catalog.Labels)})";
        var from = cell.Status == CellStatus.Rejected ? null : cell.Label;
        if (from == to)
            return to is null ? $"cell {cellId} is already rejected" : $"cell {cellId} is already counted as {to}";
        if (from is not null) _totals[from] = Total(from) - 1;
        if (to is not null) _totals[to] = Total(to) + 1;
        Cells.Relabel(cellId, to);
        correction = new CellCorrection(_corrections.Count + 1, cellId, to is null ? CellCorrection.Reject : CellCorrection.Reclassify,
            from, to, reviewer, at, State == SessionState.Final);
        _corrections.Add(correction);
        return null;
    }

    /// <summary>Signs the result off: counting ends (a running session stops) and the state is final. Returns the error
    /// when it already is.</summary>
    public string? Finalize(string reviewer, DateTimeOffset at)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(reviewer);
        if (State == SessionState.Final) return $"session {SessionId} is already final (signed by {Reviewer}); corrections now are amendments";
        EndedAt ??= at;
        State = SessionState.Final;
        Reviewer = reviewer;
        FinalizedAt = at;
        return null;
    }

    /// <summary>Stops counting; a session already completed or stopped keeps its state. Returns whether it changed.</summary>
    public bool Stop(DateTimeOffset at)
    {
        if (State != SessionState.Running) return false;
        State = SessionState.Stopped;
        EndedAt = at;
        return true;
    }

    public SessionRecord ToRecord() => new(
        SessionRecord.CurrentVersion, SessionId, SampleId, Target, State, Fields,
        new Dictionary<string, long>(_totals, StringComparer.Ordinal), StartedAt, EndedAt)
    {
        Cells = Cells.Count,
        Corrections = [.. _corrections],
        Reviewer = Reviewer,
        FinalizedAt = FinalizedAt,
    };

    /// <summary>Restores a persisted session exactly (totals, field count, state, audit trail).</summary>
    /// <param name="cells">Its cells as the ledger file kept them (fields beyond the record's are ignored); null: none kept
    /// (cells counted then cannot be reviewed).</param>
    public static CountingSession FromRecord(CountingCatalog catalog, SessionRecord record, CellLedger? cells = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(record);
        if (record.Version != SessionRecord.CurrentVersion) throw new InvalidDataException($"Unsupported session record version {record.Version}.");
        if (string.IsNullOrWhiteSpace(record.SessionId)) throw new InvalidDataException("Session record has no session id.");
        if (record.Target < 1) throw new InvalidDataException("Session record has a target below 1.");
        if (record.Fields < 0) throw new InvalidDataException("Session record has a negative field count.");
        if (record.Totals is null || record.Totals.Values.Any(v => v < 0)) throw new InvalidDataException("Session record has invalid totals.");
        if (!Enum.IsDefined(record.State)) throw new InvalidDataException("Session record has an unknown state.");
        var corrections = record.Corrections ?? [];
        var ledger = cells ?? new CellLedger();
        ledger.ContinueAfter(record.Cells);
        foreach (var c in corrections) ledger.Relabel(c.CellId, c.To); // the labels review gave (the totals already hold them)
        return new CountingSession(catalog, record.SessionId, record.SampleId ?? "", record.Target, record.StartedAt,
            record.State, record.Fields, new Dictionary<string, long>(record.Totals, StringComparer.Ordinal), record.EndedAt,
            ledger, [.. corrections], record.Reviewer, record.FinalizedAt);
    }

    public CountsSnapshot Snapshot() => new(
        SessionId, SampleId, State, Fields, Totals(), GroupTotals(),
        Differential().ToDictionary(d => d.Key, d => Math.Round(d.Value, 2), StringComparer.Ordinal),
        DifferentialCi95(),
        WhiteCells, Target, Math.Round(Progress, 4), StartedAt, EndedAt)
    {
        Reviewer = Reviewer,
        FinalizedAt = FinalizedAt,
        Corrections = _corrections.Count,
        Amendments = _corrections.Count(c => c.Amendment),
        Marrow = Catalog.Marrow?.Summarize(Total),
    };

    /// <summary>Each differential label's 95 % interval in percent, [low, high] rounded to 0.01 (Wilson score; [0, 100]
    /// before the first white cell).</summary>
    public IReadOnlyDictionary<string, double[]> DifferentialCi95()
    {
        var white = WhiteCells;
        return Catalog.DifferentialLabels.ToDictionary(l => l, l =>
        {
            var (low, high) = ProportionInterval.Wilson95Percent(Total(l), white);
            return new[] { Math.Round(low, 2), Math.Round(high, 2) };
        }, StringComparer.Ordinal);
    }

    private IReadOnlyDictionary<string, int> OrderLikeCatalog(Dictionary<string, int> counts)
    {
        var ordered = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var label in Catalog.Labels)
            if (counts.TryGetValue(label, out var n)) ordered[label] = n;
        foreach (var (label, n) in counts.OrderBy(c => c.Key, StringComparer.Ordinal)) ordered.TryAdd(label, n);
        return ordered;
    }
}

/// <summary>The persisted form of a session.</summary>
/// <param name="LastFieldResult">The last counted field's message as published (see <see cref="IFieldResultKeeper"/>).</param>
public sealed record SessionRecord(
    int Version,
    string SessionId,
    string SampleId,
    int Target,
    SessionState State,
    long Fields,
    Dictionary<string, long> Totals,
    DateTimeOffset StartedAt,
    DateTimeOffset? EndedAt,
    string? LastFieldResult = null)
{
    public const int CurrentVersion = 1;

    /// <summary>Cell ids given so far (the ledger file holds them); 0 in records from before review.</summary>
    public long Cells { get; init; }

    public List<CellCorrection>? Corrections { get; init; }
    public string? Reviewer { get; init; }
    public DateTimeOffset? FinalizedAt { get; init; }
}

/// <summary>One entry of a session's audit trail.</summary>
/// <param name="Seq">1, 2, 3... in the order made.</param>
/// <param name="Action"><c>reclassify</c> or <c>reject</c>.</param>
/// <param name="From">The label the cell was counted under; null when it was rejected.</param>
/// <param name="To">The label it is counted under now; null when rejected.</param>
/// <param name="Amendment">Made after the result was final.</param>
public sealed record CellCorrection(int Seq, long CellId, string Action, string? From, string? To, string Reviewer, DateTimeOffset At, bool Amendment)
{
    public const string Reclassify = "reclassify";
    public const string Reject = "reject";
}

/// <summary>The session as reported on P/counts and P/session/state.</summary>
/// <param name="Differential">Percent of white cells per differential label, rounded to 0.01.</param>
/// <param name="DifferentialCi95">Per differential label, the 95 % interval of that percent, [low, high].</param>
/// <param name="WhiteCells">Sum over the differential labels: what the target counts.</param>
/// <param name="Progress">WhiteCells / Target, capped at 1, rounded to 0.0001.</param>
public sealed record CountsSnapshot(
    string SessionId,
    string SampleId,
    SessionState State,
    long Fields,
    IReadOnlyDictionary<string, long> Totals,
    IReadOnlyDictionary<string, long> Groups,
    IReadOnlyDictionary<string, double> Differential,
    IReadOnlyDictionary<string, double[]> DifferentialCi95,
    long WhiteCells,
    int Target,
    double Progress,
    DateTimeOffset StartedAt,
    DateTimeOffset? EndedAt)
{
    /// <summary>Who signed the result off; null until final.</summary>
    public string? Reviewer { get; init; }

    public DateTimeOffset? FinalizedAt { get; init; }

    /// <summary>Entries in the audit trail (reclassified or rejected cells).</summary>
    public int Corrections { get; init; }

    /// <summary>Of those, made after the result was final.</summary>
    public int Amendments { get; init; }

    /// <summary>The marrow differential (Counting:Mode marrow); null in blood mode. There <see cref="WhiteCells"/> and
    /// <see cref="Target"/> count nucleated cells.</summary>
    public MarrowSummary? Marrow { get; init; }
}
