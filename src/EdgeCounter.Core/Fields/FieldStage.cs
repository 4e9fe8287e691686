using System.Reactive.Subjects;
using EdgeCounter.Acquisition;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OpenCvSharp;

namespace EdgeCounter.Fields;

/// <summary>Watches the capture side frame by frame (the service's live figures).</summary>
public interface IFieldStageObserver
{
    /// <summary>A frame was scored and judged (called before a taken field is handed on).</summary>
    void OnFrame(TimeSpan elapsed, FieldDecision decision);

    /// <summary>A frame could not be scored (damaged image) and was skipped.</summary>
    void OnCorruptFrame();
}

/// <summary>
/// The capture side per frame, for the service and the bench alike: score (motion, focus), stage odometry on the
/// scorer's grey copy, the Rx field stage, and a copy of each stable field into the latest-wins buffer. Never waits
/// for detection. Not thread-safe: one caller (the capture loop).
/// </summary>
public sealed class FieldStage : IDisposable
{
    private readonly FieldOptions _options;
    private readonly IFieldStageObserver? _observer;
    private readonly ILogger _logger;
    private readonly FrameScorer _scorer;
    private readonly StageOdometry _odometry = new();
    private readonly Subject<(Frame Frame, FrameScore Score)> _frames = new();
    private readonly IDisposable _subscription;
    private OdometryReading _reading;
    private FieldDecision _decision;

    public FieldStage(FieldOptions options, LatestFieldBuffer buffer, IFieldStageObserver? observer = null, ILogger<FieldStage>? logger = null)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        ArgumentNullException.ThrowIfNull(buffer);
        _observer = observer;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _scorer = new FrameScorer(options.ScoringWidth);
        // The field stage is an Rx operator; its subscriber copies the taken frame, since frames are disposed after OnNext.
        _subscription = _frames.DecideFields(options).Subscribe(scored =>
        {
            _decision = scored.Decision;
            _observer?.OnFrame(scored.Frame.Elapsed, scored.Decision);
            if (scored.Decision != FieldDecision.Take) return;
            var f = scored.Frame;
            buffer.Offer(new StableField(f.Image.Clone(), f.Index, f.CapturedAt, scored.Score) { Odometry = _reading });
        });
    }

    /// <summary>Judges one frame (the caller still owns and disposes it). Returns the decision, or null when the frame
    /// could not be scored and was skipped (the observer hears of it, and the log says why).</summary>
    public FieldDecision? Push(Frame frame)
    {
        ArgumentNullException.ThrowIfNull(frame);
        FrameScore score;
        try
        {
            score = _scorer.Score(frame.Image);
            // Stage travel since the last frame, on the scorer's grey copy (no second downscale).
            _reading = _odometry.Update(_scorer.Grey, _scorer.GreyWidth, _scorer.GreyHeight, frame.Image.Cols / (double)_scorer.GreyWidth,
                still: score.Motion <= _options.MotionThreshold);
        }
        catch (Exception e) when (e is OpenCVException or OpenCvSharpException or ArgumentException)
        {
            _observer?.OnCorruptFrame();
            _logger.LogWarning("Frame {Index} skipped: {Error}", frame.Index, e.Message);
            return null;
        }
        _frames.OnNext((frame, score));
        return _decision;
    }

    /// <summary>The source was reopened: the next frame has no previous one to compare with or travel from.</summary>
    public void Reset()
    {
        _scorer.Reset();
        _odometry.Reset();
    }

    public void Dispose()
    {
        _subscription.Dispose();
        _frames.Dispose();
        _odometry.Dispose();
        _scorer.Dispose();
    }
}
