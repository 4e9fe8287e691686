using System.Reactive.Subjects;
using EdgeCounter.Acquisition;
using EdgeCounter.Fields;
using Microsoft.Extensions.Options;
using OpenCvSharp;

namespace EdgeCounter.Hosting;

/// <summary>
/// Capture side of the pipeline: reads frames, scores them, and pushes them through the Rx field stage; each stable
/// field is copied into the latest-wins buffer. Never waits for detection.
/// </summary>
public sealed class CaptureWorker(
    IFrameSource source,
    IOptions<EdgeCounterOptions> options,
    LatestFieldBuffer buffer,
    PipelineMonitor monitor,
    ILogger<CaptureWorker> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value;
        using var scorer = new FrameScorer(settings.Fields.ScoringWidth);
        using var odometry = new StageOdometry();
        OdometryReading reading = default;
        using var frames = new Subject<(Frame Frame, FrameScore Score)>();
        // The field stage is an Rx operator; its subscriber copies the taken frame, since frames are disposed after OnNext.
        using var subscription = frames.DecideFields(settings.Fields).Subscribe(scored =>
        {
            monitor.OnFrame(scored.Frame.CapturedAt, scored.Decision);
            if (scored.Decision != FieldDecision.Take) return;
            var f = scored.Frame;
            buffer.Offer(new StableField(f.Image.Clone(), f.Index, f.CapturedAt, scored.Score) { Odometry = reading });
        });

        var loop = new CaptureLoop(source, settings.Source, logger);
        monitor.Capture = loop;
        monitor.Buffer = buffer;
        monitor.Source = source;
        loop.Reopened += scorer.Reset;
        loop.Reopened += odometry.Reset;

        await Task.Yield(); // let the host finish starting before the first (possibly blocking) open
        await loop.RunAsync(frame =>
        {
            using (frame)
            {
                FrameScore score;
                try
                {
                    score = scorer.Score(frame.Image);
                    // Stage travel since the last frame, on the scorer's grey copy (no second downscale).
                    reading = odometry.Update(scorer.Grey, scorer.GreyWidth, scorer.GreyHeight, frame.Image.Cols / (double)scorer.GreyWidth,
                        still: score.Motion <= settings.Fields.MotionThreshold);
                }
                catch (Exception e) when (e is OpenCVException or OpenCvSharpException or ArgumentException)
                {
                    monitor.OnCorruptFrame();
                    logger.LogWarning("Frame {Index} skipped: {Error}", frame.Index, e.Message);
                    return ValueTask.CompletedTask;
                }
                frames.OnNext((frame, score));
            }
            return ValueTask.CompletedTask;
        }, stoppingToken);
        buffer.Complete();
    }
}
