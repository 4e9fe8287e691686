using System.Threading.Channels;
using EdgeCounter.Counting;
using EdgeCounter.Detection;
using EdgeCounter.Fields;
using EdgeCounter.Publishing;
using Microsoft.Extensions.Options;

namespace EdgeCounter.Hosting;

/// <summary>What happened to one stable field, for observers (console, tests).</summary>
/// <param name="Marks">Per detection (same order): new or already counted; null when every detection was counted as new.</param>
/// <param name="Placement">Where the field lies on the slide; null when not estimated.</param>
public sealed record FieldOutcome(StableField Field, bool Revisit, double RevisitMatch, DetectionResult? Detection, FieldCountResult? Count,
    IReadOnlyList<DetectionMark>? Marks = null, FieldPlacement? Placement = null);

/// <summary>
/// Detection side of the pipeline: takes the newest stable field, skips fields already counted (revisits), runs the
/// detector, counts and reports. Runs on its own thread so capture never waits for it.
/// </summary>
public sealed class CountingWorker(
    LatestFieldBuffer buffer,
    ICellDetector detector,
    CountingService counting,
    FieldReporter reporter,
    PipelineMonitor monitor,
    IOptions<EdgeCounterOptions> options,
    ILogger<CountingWorker> logger) : BackgroundService
{
    private volatile string? _sessionOfGuard;
    private SlideRegistrar? _place;
    private SlideCellRegistry? _cells;
    private (string SessionId, SessionState State)? _idleReportedFor; // the idle state already said at Information level

    /// <summary>Raised after each stable field is handled (on the worker thread; the field is disposed afterwards).</summary>
    public event Action<FieldOutcome>? FieldHandled;

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        // Inference is CPU-bound and synchronous: give it a thread of its own instead of a pool thread.
        Task.Factory.StartNew(() => RunAsync(stoppingToken), stoppingToken, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();

    private async Task RunAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value;
        using var revisits = new RevisitGuard(settings.Fields.RevisitMemory, settings.Fields.RevisitSimilarity);
        using var registrar = new SlideRegistrar();
        var cells = new SlideCellRegistry();
        _place = registrar;
        _cells = cells;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                using var field = await buffer.TakeAsync(stoppingToken).ConfigureAwait(false);
                Handle(field, revisits, settings);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        catch (ChannelClosedException)
        {
            logger.LogInformation("Source ended: no more fields to count");
        }
    }

    private void Handle(StableField field, RevisitGuard revisits, EdgeCounterOptions settings)
    {
        var session = counting.Status;
        if (session.State != SessionState.Running)
        {
            monitor.OnNotCounted();
            // Once per session at Information: a technician starting the service on a finished slide sees why
            // nothing is counted and what to do; every further field only at Debug.
            if (_idleReportedFor != session)
            {
                _idleReportedFor = session;
                logger.LogInformation("Stable fields are not counted: session {SessionId} is {State}. Start a new one with " +
                    "{{\"action\":\"start\"}} on {Topic} (docs/mqtt.md)", session.SessionId, session.State,
                    options.Value.Mqtt.EffectiveTopicPrefix + "/session/set");
            }
            else logger.LogDebug("Field at {CapturedAt} not counted: session {SessionId} is {State}", field.CapturedAt, session.SessionId, session.State);
            return;
        }
        // A new session is a new slide: fields of the last one are not revisits, its cells are not this slide's.
        if (_sessionOfGuard != session.SessionId)
        {
            revisits.Clear();
            _place!.Clear();
            _cells!.Clear();
            _sessionOfGuard = session.SessionId;
        }
        // Where the field lies on the slide (odometry, then registration against the fields it overlaps).
        var placement = _place!.Place(field.Image, field.Odometry);
        if (!placement.Known)
        {
            monitor.OnUnknownPosition();
            logger.LogDebug("Field at {CapturedAt}: position unknown (registration failed); counted as it is", field.CapturedAt);
        }
        if (revisits.CheckAndRemember(field.Image, out var match))
        {
            monitor.OnRevisit();
            logger.LogInformation("Field skipped: already counted in this session (similarity {Match:F2})", match);
            FieldHandled?.Invoke(new FieldOutcome(field, true, match, null, null, null, placement));
            return;
        }

        DetectionResult detection;
        monitor.OnDetectionStarted();
        try
        {
            detection = detector.Detect(field.Image);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            monitor.OnFieldProcessed(0);
            logger.LogError(e, "Detection failed on the field at {CapturedAt}; field not counted", field.CapturedAt);
            return;
        }
        monitor.OnFieldProcessed(detection.TotalMs);

        // Each cell once: detections of cells already counted in an earlier field are marked, not counted again.
        var plan = _cells!.Mark(placement, detection.Detections, field.Image.Cols, field.Image.Rows);
        var result = reporter.Report(new FieldObservation(field.Image, detection, field.CapturedAt, field.Score.Focus, field.Score.Motion)
        {
            Marks = plan.Marks,
            Placement = placement,
        });
        IReadOnlyList<DetectionMark> marks = plan.Marks;
        if (result.Accepted) marks = _cells.Commit(plan, result.Tally!.FieldId);
        if (!result.Accepted) monitor.OnNotCounted();
        else if (settings.ConsoleFieldLines) logger.LogInformation("{FieldLine}", FieldLine.Format(result, detection, detector.ExecutionProvider));
        if (result.CompletedNow)
            logger.LogInformation("Session {SessionId} (sample {SampleId}) reached its target of {Target} white cells after {Fields} fields",
                result.Counts.SessionId, result.Counts.SampleId, result.Counts.Target, result.Counts.Fields);
        FieldHandled?.Invoke(new FieldOutcome(field, false, match, detection, result, marks, placement));
    }
}
