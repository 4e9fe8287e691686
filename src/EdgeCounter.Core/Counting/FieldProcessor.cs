using EdgeCounter.Detection;
using EdgeCounter.Fields;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeCounter.Counting;

/// <summary>
/// The one path a stable field takes, for the service, the bench and simcheck alike: session gate, slide position,
/// revisit check, detection, each cell once, count; then the outcome goes to the sinks (publishing). Owns the
/// session's revisit memory, slide registration and counted-cell registry, and clears them when a new session
/// (a new slide) starts. Not thread-safe: one caller (the counting worker's thread).
/// </summary>
public sealed class FieldProcessor : IDisposable
{
    private readonly ICellDetector _detector;
    private readonly CountingService _counting;
    private readonly string _sessionCommandTopic;
    private readonly IReadOnlyList<IFieldOutcomeSink> _sinks;
    private readonly IFieldResultKeeper? _keeper;
    private readonly ILogger _logger;
    private readonly RevisitGuard _revisits;
    private readonly SlideRegistrar _registrar = new();
    private readonly SlideCellRegistry _cells = new();
    private string? _sessionOfSlide; // the session the revisit memory, registrar and registry belong to
    private (string SessionId, SessionState State)? _idleReportedFor; // the idle state already said at Information level

    /// <param name="sessionCommandTopic">Where a new session is started (named in the log when fields are not counted).</param>
    public FieldProcessor(ICellDetector detector, CountingService counting, FieldOptions fields, string sessionCommandTopic,
        IEnumerable<IFieldOutcomeSink> sinks, ILogger<FieldProcessor>? logger = null)
    {
        _detector = detector ?? throw new ArgumentNullException(nameof(detector));
        _counting = counting ?? throw new ArgumentNullException(nameof(counting));
        ArgumentNullException.ThrowIfNull(fields);
        ArgumentException.ThrowIfNullOrWhiteSpace(sessionCommandTopic);
        _sessionCommandTopic = sessionCommandTopic;
        _sinks = [.. sinks ?? throw new ArgumentNullException(nameof(sinks))];
        _keeper = _sinks.OfType<IFieldResultKeeper>().SingleOrDefault();
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _revisits = new RevisitGuard(fields.RevisitMemory, fields.RevisitSimilarity);
    }

    /// <summary>Raised just before the detector runs (a watchdog times it).</summary>
    public event Action? DetectionStarted;

    /// <summary>Handles one field and hands the outcome to every sink. The caller still owns (and disposes) the field.</summary>
    public FieldOutcome Process(StableField field)
    {
        ArgumentNullException.ThrowIfNull(field);
        var outcome = Decide(field);
        foreach (var sink in _sinks) sink.Accept(outcome);
        return outcome;
    }

    private FieldOutcome Decide(StableField field)
    {
        var session = _counting.Status;
        if (session.State != SessionState.Running)
        {
            // Once per session at Information: a technician starting the service on a finished slide sees why
            // nothing is counted and what to do; every further field only at Debug.
            if (_idleReportedFor != session)
            {
                _idleReportedFor = session;
                _logger.LogInformation("Stable fields are not counted: session {SessionId} is {State}. Start a new one with " +
                    "{{\"action\":\"start\"}} on {Topic} (docs/mqtt.md)", session.SessionId, session.State, _sessionCommandTopic);
            }
            else _logger.LogDebug("Field at {CapturedAt} not counted: session {SessionId} is {State}", field.CapturedAt, session.SessionId, session.State);
            return new FieldOutcome(FieldFate.NotCounted, field);
        }
        // A new session is a new slide: fields of the last one are not revisits, its cells are not this slide's.
        var firstOfSlide = false;
        if (_sessionOfSlide != session.SessionId)
        {
            _revisits.Clear();
            _registrar.Clear();
            _cells.Clear();
            _sessionOfSlide = session.SessionId;
            firstOfSlide = true;
        }
        // Where the field lies on the slide (odometry, then registration against the fields it overlaps).
        var placement = _registrar.Place(field.Image, field.Odometry);
        // A session restored at start (a restart, a power cut) already has fields this process never saw: its cells
        // are not in memory, so the first field cannot be placed against them. Said so (position unknown), never
        // presented as the origin of a slide that has no counted cells yet; later fields are placed relative to it.
        if (firstOfSlide && _counting.Snapshot().Fields > 0 && placement.Known)
        {
            placement = FieldPlacement.Unknown(placement.Segment);
            _logger.LogInformation("Session {SessionId} continues after a restart: cells counted before it are not recognised " +
                "again (the slide map starts anew); its first field is counted with position unknown", session.SessionId);
        }
        if (placement.Merged is { } merge)
        {
            _cells.Merge(merge);
            _logger.LogInformation("Field at {CapturedAt} joins map segment {From} to segment {Into}: cells counted in either are recognised in both",
                field.CapturedAt, merge.From, merge.Into);
        }
        if (!placement.Known)
            _logger.LogDebug("Field at {CapturedAt}: position unknown (registration failed); counted as it is", field.CapturedAt);
        if (_revisits.CheckAndRemember(field.Image, out var match))
        {
            _logger.LogInformation("Field skipped: already counted in this session (similarity {Match:F2})", match);
            return new FieldOutcome(FieldFate.Revisit, field, placement) { RevisitMatch = match };
        }

        DetectionResult detection;
        DetectionStarted?.Invoke();
        try
        {
            detection = _detector.Detect(field.Image);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _logger.LogError(e, "Detection failed on the field at {CapturedAt}; field not counted", field.CapturedAt);
            return new FieldOutcome(FieldFate.DetectionFailed, field, placement) { RevisitMatch = match };
        }

        // Each cell once: detections of cells already counted in an earlier field are marked, and only new cells
        // add to the totals; a cell counted cut in an earlier field and whole here has its count moved here.
        var plan = _cells.Mark(placement, detection.Detections, field.Image.Cols, field.Image.Rows);
        var newCells = detection.Detections.Where((_, i) => !plan.Marks[i].AlreadyCounted).ToList();
        FieldOutcome? counted = null;
        // The outcome is made while the count is being saved, so that a sink's message is saved with it.
        var count = _counting.CountField(newCells, result =>
        {
            counted = new FieldOutcome(FieldFate.Counted, field, placement)
                { RevisitMatch = match, Detection = detection, Count = result, Marks = _cells.Commit(plan, result.Tally!.FieldId, result.Tally.FirstCellId) };
            return _keeper?.ResultToKeep(counted);
        }, plan.MovedOut);
        if (!count.Accepted)
        {
            // The session was completed or stopped while the field was in detection.
            _logger.LogDebug("Field not counted: session {SessionId} is {State}", count.Counts.SessionId, count.Counts.State);
            return new FieldOutcome(FieldFate.NotCounted, field, placement) { RevisitMatch = match, Detection = detection, Count = count, Marks = plan.Marks };
        }
        return counted!;
    }

    public void Dispose()
    {
        _revisits.Dispose();
        _registrar.Dispose();
    }
}
