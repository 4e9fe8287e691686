using EdgeCounter.Detection;
using EdgeCounter.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeCounter.Counting;

/// <summary>The outcome of one counted field.</summary>
/// <param name="Accepted">False when the session is completed or stopped (the field was not counted).</param>
/// <param name="Tally">The field's id and counts; null when not accepted.</param>
/// <param name="Counts">The session after the field.</param>
/// <param name="CompletedNow">This field reached the target.</param>
public sealed record FieldCountResult(bool Accepted, FieldTally? Tally, CountsSnapshot Counts, bool CompletedNow);

/// <summary>What a command did.</summary>
/// <param name="Error">Why it changed nothing (sent back on P/session/error); null when applied.</param>
/// <param name="Correction">The audit entry a reclassify or reject made.</param>
/// <param name="ResultChanged">The signed result changed (finalize, or an amendment after it): the report is due again.</param>
public sealed record SessionCommandResult(CountsSnapshot Counts, string? Error = null, CellCorrection? Correction = null, bool ResultChanged = false)
{
    public bool Applied => Error is null;
}

/// <summary>Owns the current session: thread-safe, persists every change, opens a session at start.
/// Fields from the pipeline and commands from MQTT both come through here.</summary>
public sealed class CountingService
{
    private readonly object _gate = new();
    private readonly CountingCatalog _catalog;
    private readonly CountingOptions _options;
    private readonly SessionStore _store;
    private readonly CellLedgerStore _ledger;
    private readonly TimeProvider _clock;
    private readonly ILogger _logger;
    private readonly StorageMonitor _storage;
    private CountingSession _session;
    private string? _lastFieldResult; // saved with every write of the session it belongs to

    /// <summary>Restores the saved session, or opens a new running one (default target) when none was saved
    /// or the file is unreadable (the bad file is kept aside as *.corrupt).</summary>
    /// <param name="storage">Where a failed save is reported (the state directory's monitor); default: one for the store's directory.</param>
    public CountingService(CountingCatalog catalog, CountingOptions options, SessionStore store, TimeProvider? clock = null, ILogger<CountingService>? logger = null,
        StorageMonitor? storage = null)
    {
        _catalog = catalog ?? throw new ArgumentNullException(nameof(catalog));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _store = store ?? throw new ArgumentNullException(nameof(store));
        _clock = clock ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _storage = storage ?? new StorageMonitor(Path.GetDirectoryName(store.FilePath)!);
        _ledger = new CellLedgerStore(Path.GetDirectoryName(store.FilePath)!);
        var errors = options.Validate();
        if (errors.Count > 0) throw new ArgumentException(string.Join(" ", errors), nameof(options));

        _session = RestoreOrStart();
    }

    /// <summary>Raised (outside the lock) after every change of the session: field counted, start, stop, reset.</summary>
    public event Action<CountsSnapshot>? Changed;

    public CountingCatalog Catalog => _catalog;

    /// <summary>The last counted field's kept message, as the session file had it at start (null: none, or a new
    /// session). A power cut may have come after the field was counted and before its message reached the outbox:
    /// queue it again at start (a repeat of the same message when it had).</summary>
    public string? LastFieldResult { get; private set; }

    public CountsSnapshot Snapshot()
    {
        lock (_gate) return _session.Snapshot();
    }

    /// <summary>Which session is open and whether it takes fields, without building a full snapshot.</summary>
    public (string SessionId, SessionState State) Status
    {
        get { lock (_gate) return (_session.SessionId, _session.State); }
    }

    /// <param name="resultToKeep">Given the count, the field's message to save with it in the same write (a power
    /// cut then cannot leave a counted field unpublished); null: nothing kept.</param>
    /// <param name="movedOut">Labels of earlier fields' counts that move to this field's detections (see <see cref="CountingSession.TryAddField(IReadOnlyList{Detection.Detection}, DateTimeOffset, out FieldTally, IReadOnlyList{string}?)"/>).</param>
    public FieldCountResult CountField(IReadOnlyList<Detection.Detection> detections, Func<FieldCountResult, string?>? resultToKeep = null,
        IReadOnlyList<CellMove>? movedOut = null)
    {
        ArgumentNullException.ThrowIfNull(detections);
        FieldCountResult result;
        lock (_gate)
        {
            if (!_session.TryAddField(detections, _clock.GetUtcNow(), out var tally, movedOut))
                return new FieldCountResult(false, null, _session.Snapshot(), false);
            AppendToLedger(new LedgerField(tally.FieldId, tally.FirstCellId, detections, movedOut ?? []));
            var completed = _session.State == SessionState.Completed;
            result = new FieldCountResult(true, tally, _session.Snapshot(), completed);
            _lastFieldResult = resultToKeep?.Invoke(result);
            Persist();
            if (completed)
                _logger.LogInformation("Session {SessionId} (sample {SampleId}) completed: {WhiteCells} white cells in {Fields} fields",
                    _session.SessionId, _session.SampleId, _session.WhiteCells, _session.Fields);
        }
        Changed?.Invoke(result.Counts);
        return result;
    }

    /// <summary>Applies a validated command. A review command that cannot apply (no such cell, an unknown label, already
    /// final) changes nothing and says why.</summary>
    public SessionCommandResult Apply(SessionCommand command)
    {
        ArgumentNullException.ThrowIfNull(command);
        SessionCommandResult result;
        lock (_gate)
        {
            var now = _clock.GetUtcNow();
            CellCorrection? correction = null;
            string? error = null;
            var resultChanged = false;
            switch (command.Action)
            {
                case SessionAction.Start:
                    _lastFieldResult = null;
                    _session = CountingSession.Start(_catalog, NewSessionId(now), command.SampleId ?? _options.DefaultSampleId,
                        command.Target ?? _options.EffectiveDefaultTarget, now);
                    break;
                case SessionAction.Reset:
                    _lastFieldResult = null;
                    _session = CountingSession.Start(_catalog, NewSessionId(now), _session.SampleId, _session.Target, now);
                    break;
                case SessionAction.Stop:
                    _session.Stop(now);
                    break;
                case SessionAction.Reclassify:
                case SessionAction.Reject:
                    error = _session.Correct(command.CellId, command.Action == SessionAction.Reject ? null : command.To,
                        command.Reviewer ?? SessionCommand.UnnamedReviewer, now, out correction);
                    resultChanged = correction is { Amendment: true };
                    break;
                case SessionAction.Finalize:
                    error = _session.Finalize(command.Reviewer!, now);
                    resultChanged = error is null;
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(command), command.Action, "unknown action");
            }
            if (error is null)
            {
                Persist();
                _logger.LogInformation("Session command {Action}: session {SessionId}, sample {SampleId}, target {Target}, state {State}{Correction}",
                    command.Action, _session.SessionId, _session.SampleId, _session.Target, _session.State,
                    correction is null ? "" : $"; cell {correction.CellId} {correction.From ?? "(rejected)"} -> {correction.To ?? "(rejected)"} by {correction.Reviewer}");
            }
            result = new SessionCommandResult(_session.Snapshot(), error, correction, resultChanged);
        }
        if (result.Applied) Changed?.Invoke(result.Counts);
        return result;
    }

    /// <summary>The current session's cells and audit trail, for review and the report.</summary>
    public SessionReview Review()
    {
        lock (_gate) return new SessionReview(_session.Snapshot(), [.. _session.Cells.All.Where(c => c.CellId != 0)], [.. _session.Corrections]);
    }

    private CountingSession RestoreOrStart()
    {
        try
        {
            var record = _store.Load();
            if (record is not null)
            {
                var restored = CountingSession.FromRecord(_catalog, record, LoadLedger(record));
                _lastFieldResult = LastFieldResult = record.LastFieldResult;
                _logger.LogInformation("Restored session {SessionId} (sample {SampleId}, {State}): {Fields} fields, next field id {NextFieldId}",
                    restored.SessionId, restored.SampleId, restored.State, restored.Fields, restored.NextFieldId);
                return restored;
            }
        }
        catch (InvalidDataException ex)
        {
            var aside = _store.FilePath + ".corrupt";
            File.Move(_store.FilePath, aside, overwrite: true);
            _logger.LogWarning(ex, "Session file unreadable, moved to {Path}; starting a new session", aside);
        }

        var now = _clock.GetUtcNow();
        var session = CountingSession.Start(_catalog, NewSessionId(now), _options.DefaultSampleId, _options.EffectiveDefaultTarget, now);
        Save(session);
        _logger.LogInformation("Opened session {SessionId} with target {Target}", session.SessionId, session.Target);
        return session;
    }

    private void Persist() => Save(_session);

    private CellLedger? LoadLedger(SessionRecord record)
    {
        try
        {
            return _ledger.Load(record.SessionId, record.Fields);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning(e, "The cells of session {SessionId} could not be read: its counts stand, its cells cannot be reviewed", record.SessionId);
            return null;
        }
    }

    /// <summary>Like the session file, a refused write does not stop counting (the cells stay reviewable until a restart).</summary>
    private void AppendToLedger(LedgerField field)
    {
        try
        {
            _ledger.Append(_session.SessionId, field);
            _storage.Succeeded(LedgerFile);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _storage.Failed(LedgerFile, e, "the cells stay reviewable in memory; after a restart this field's cells cannot be reviewed");
        }
    }

    private const string LedgerFile = "the session's cell file";

    /// <summary>A refused save (disk full, failing) does not stop counting: the session goes on in memory and the next
    /// save that lands writes its whole current state.</summary>
    private void Save(CountingSession session)
    {
        try
        {
            _store.Save(session.ToRecord() with { LastFieldResult = _lastFieldResult });
            _storage.Succeeded(SessionFile);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _storage.Failed(SessionFile, e, "the session goes on in memory and is saved whole at the next change that can be written");
        }
    }

    private const string SessionFile = "the session file";

    /// <summary>Sortable and unique: UTC start time plus random suffix.</summary>
    private static string NewSessionId(DateTimeOffset now) =>
        $"{now.UtcDateTime:yyyyMMdd'T'HHmmss'Z'}-{Guid.NewGuid().ToString("N")[..8]}";
}
