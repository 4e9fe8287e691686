using EdgeCounter.Acquisition;
using EdgeCounter.Detection;
using EdgeCounter.Fields;

namespace EdgeCounter.Hosting;

/// <summary>
/// The pipeline's live figures, shared by the workers (writers) and stats/status/watchdog (readers).
/// Counters only; no logic beyond moving averages.
/// </summary>
public sealed class PipelineMonitor(TimeProvider clock) : IFieldStageObserver
{
    private readonly long _startTicks = clock.GetTimestamp();
    private long _frames, _fieldsTaken, _fieldsProcessed, _revisits, _notCounted, _corruptFrames, _unknownPosition;
    private double _fps, _inferenceMs;
    private TimeSpan? _lastFrameAt; // the frames' elapsed time: a wall-clock step does not disturb the rate
    private long _heartbeatTicks = clock.GetTimestamp();
    private long _detectionStartedTicks;

    public CaptureLoop? Capture { get; set; }
    public IFrameSource? Source { get; set; }
    public LatestFieldBuffer? Buffer { get; set; }
    public string ExecutionProvider { get; set; } = "none";
    public ICellDetector? Detector { get; set; }
    public PixelScaleStatus? PixelScale => Detector?.PixelScale;
    public string SourceDescription => Source?.Description ?? "";

    public long Frames => Interlocked.Read(ref _frames);
    public long FieldsTaken => Interlocked.Read(ref _fieldsTaken);
    public long FieldsProcessed => Interlocked.Read(ref _fieldsProcessed);
    public long Revisits => Interlocked.Read(ref _revisits);
    public long NotCounted => Interlocked.Read(ref _notCounted);
    /// <summary>Fields whose slide position could not be found (counted as they are, flagged).</summary>
    public long UnknownPositionFields => Interlocked.Read(ref _unknownPosition);
    /// <summary>Frames that could not be used: rejected by the scorer (damaged image) or skipped by the source (unreadable file).</summary>
    public long CorruptFrames => Interlocked.Read(ref _corruptFrames) + (Source?.UnreadableFrames ?? 0);
    public long DroppedFields => Buffer?.Dropped ?? 0;
    /// <summary>Fields taken but not counted: dropped while detection was busy, revisits, or no session running.</summary>
    public long SkippedFields => DroppedFields + Revisits + NotCounted;
    public double CameraFps => Volatile.Read(ref _fps);
    public double InferenceMsAverage => Volatile.Read(ref _inferenceMs);
    public TimeSpan Uptime => clock.GetElapsedTime(_startTicks);
    public SourceState SourceState => Capture?.State ?? SourceState.Opening;

    public void OnFrame(TimeSpan elapsed, FieldDecision decision)
    {
        Interlocked.Increment(ref _frames);
        if (_lastFrameAt is { } last && elapsed > last)
        {
            var instant = 1.0 / (elapsed - last).TotalSeconds;
            Volatile.Write(ref _fps, _fps <= 0 ? instant : 0.9 * _fps + 0.1 * instant);
        }
        _lastFrameAt = elapsed;
        if (decision == FieldDecision.Take) Interlocked.Increment(ref _fieldsTaken);
        Beat();
    }

    public void OnCorruptFrame() => Interlocked.Increment(ref _corruptFrames);
    public void OnRevisit() => Interlocked.Increment(ref _revisits);
    public void OnUnknownPosition() => Interlocked.Increment(ref _unknownPosition);
    public void OnNotCounted() => Interlocked.Increment(ref _notCounted);

    public void OnDetectionStarted() => Interlocked.Exchange(ref _detectionStartedTicks, clock.GetTimestamp());

    public void OnFieldProcessed(double inferenceMs)
    {
        Interlocked.Exchange(ref _detectionStartedTicks, 0);
        Interlocked.Increment(ref _fieldsProcessed);
        Volatile.Write(ref _inferenceMs, _inferenceMs <= 0 ? inferenceMs : 0.8 * _inferenceMs + 0.2 * inferenceMs);
        Beat();
    }

    /// <summary>The pipeline made progress (a frame scored or a field processed): the watchdog may be fed.</summary>
    public void Beat() => Interlocked.Exchange(ref _heartbeatTicks, clock.GetTimestamp());

    public TimeSpan SinceHeartbeat => clock.GetElapsedTime(Interlocked.Read(ref _heartbeatTicks));

    /// <summary>How long the field now in detection has taken so far (zero when idle): a stuck detector shows here.</summary>
    public TimeSpan DetectionBusyFor
    {
        get
        {
            var started = Interlocked.Read(ref _detectionStartedTicks);
            return started == 0 ? TimeSpan.Zero : clock.GetElapsedTime(started);
        }
    }

    /// <summary>The figures of P/stats, /readyz and /metrics, read now.</summary>
    /// <param name="stuckAfter">A field in detection longer than this is reported stuck.</param>
    public Publishing.PipelineStats Stats(TimeSpan stuckAfter)
    {
        var busy = DetectionBusyFor;
        return new Publishing.PipelineStats(CameraFps, FieldsProcessed, SkippedFields, InferenceMsAverage, ExecutionProvider, Uptime, SourceDescription,
            SourceState.ToString(), Capture?.LastError, DroppedFields, Revisits, Environment.WorkingSet / 1048576.0, GC.GetTotalMemory(false) / 1048576.0,
            busy.TotalSeconds, busy > stuckAfter, CorruptFrames, PixelScale, UnknownPositionFields,
            GC.GetGCMemoryInfo().TotalCommittedBytes / 1048576.0);
    }
}
