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
}

/// <summary>What one counted field added to the session.</summary>
/// <param name="FieldId">1, 2, 3... within the session; never reused, also across restarts.</param>
/// <param name="Counts">What this field adds to the totals per label (only labels that change): its new detections, less
/// the counts that moved here from earlier fields (under the label they were counted with there), so it can be
/// negative for a label; the session's totals are always the sum of its fields' counts.</param>
public sealed record FieldTally(string SessionId, long FieldId, IReadOnlyDictionary<string, int> Counts);

/// <summary>The running totals of one session (one slide or sample). Pure logic: no clock, no I/O, not thread-safe.</summary>
public sealed class CountingSession
{
    private readonly Dictionary<string, long> _totals;

    private CountingSession(
        CountingCatalog catalog, string sessionId, string sampleId, int target, DateTimeOffset startedAt,
        SessionState state, long fields, Dictionary<string, long> totals, DateTimeOffset? endedAt)
    {
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

    /// <summary>Adds one field's detections. Returns false (and changes nothing) when the session is not running.
    /// The field that reaches the target is counted whole, then the session completes.</summary>
    /// <param name="movedOut">Labels of cells counted in earlier fields whose counts move to this field (one per cell,
    /// each among <paramref name="detections"/>): taken off their totals as the detections add theirs.</param>
    public bool TryAddField(IReadOnlyList<Detection.Detection> detections, DateTimeOffset at, out FieldTally tally, IReadOnlyList<string>? movedOut = null)
    {
        ArgumentNullException.ThrowIfNull(detections);
        return TryAddField(detections.Select(d => d.Label), at, out tally, movedOut);
    }

    /// <summary>Adds one field given the label of each detection.</summary>
    public bool TryAddField(IEnumerable<string> labels, DateTimeOffset at, out FieldTally tally, IReadOnlyList<string>? movedOut = null)
    {
        ArgumentNullException.ThrowIfNull(labels);
        if (!AcceptsFields)
        {
            tally = null!;
            return false;
        }

        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var label in labels) counts[label] = counts.GetValueOrDefault(label) + 1;
        // A moved count leaves a label that an earlier field of this session added to: never below zero.
        foreach (var label in movedOut ?? [])
            if (Total(label) + counts.GetValueOrDefault(label) > 0) counts[label] = counts.GetValueOrDefault(label) - 1;
        foreach (var label in counts.Where(c => c.Value == 0).Select(c => c.Key).ToList()) counts.Remove(label);
        foreach (var (label, count) in counts) _totals[label] = Total(label) + count;
        Fields++;
        tally = new FieldTally(SessionId, Fields, OrderLikeCatalog(counts));
        if (WhiteCells >= Target)
        {
            State = SessionState.Completed;
            EndedAt = at;
        }
        return true;
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
        new Dictionary<string, long>(_totals, StringComparer.Ordinal), StartedAt, EndedAt);

    /// <summary>Restores a persisted session exactly (totals, field count, state).</summary>
    public static CountingSession FromRecord(CountingCatalog catalog, SessionRecord record)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(record);
        if (record.Version != SessionRecord.CurrentVersion) throw new InvalidDataException($"Unsupported session record version {record.Version}.");
        if (string.IsNullOrWhiteSpace(record.SessionId)) throw new InvalidDataException("Session record has no session id.");
        if (record.Target < 1) throw new InvalidDataException("Session record has a target below 1.");
        if (record.Fields < 0) throw new InvalidDataException("Session record has a negative field count.");
        if (record.Totals is null || record.Totals.Values.Any(v => v < 0)) throw new InvalidDataException("Session record has invalid totals.");
        if (!Enum.IsDefined(record.State)) throw new InvalidDataException("Session record has an unknown state.");
        return new CountingSession(catalog, record.SessionId, record.SampleId ?? "", record.Target, record.StartedAt,
            record.State, record.Fields, new Dictionary<string, long>(record.Totals, StringComparer.Ordinal), record.EndedAt);
    }

    public CountsSnapshot Snapshot() => new(
        SessionId, SampleId, State, Fields, Totals(), GroupTotals(),
        Differential().ToDictionary(d => d.Key, d => Math.Round(d.Value, 2), StringComparer.Ordinal),
        DifferentialCi95(),
        WhiteCells, Target, Math.Round(Progress, 4), StartedAt, EndedAt);

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
    DateTimeOffset? EndedAt);
