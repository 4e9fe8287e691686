using Microsoft.Extensions.Logging;

namespace EdgeCounter.Acquisition;

public enum SourceState
{
    Opening,
    Streaming,
    /// <summary>The source failed; waiting before the next reopen.</summary>
    Reconnecting,
    /// <summary>A finite source (video without loop, image folder) has delivered its last frame.</summary>
    Ended,
    Stopped,
    /// <summary>The source cannot work however often it is reopened (a corrupt video file); LastError says why.</summary>
    Failed,
}

/// <summary>
/// Keeps frames flowing from a source that may fail: opens it, reads until it fails, and reopens with exponential
/// back-off (a camera unplugged and plugged back in resumes without a restart). Never throws for source faults.
/// </summary>
public sealed class CaptureLoop(IFrameSource source, SourceOptions options, ILogger logger, TimeProvider? clock = null)
{
    private readonly TimeProvider _clock = clock ?? TimeProvider.System;

    public SourceState State { get; private set; } = SourceState.Opening;

    public string? LastError { get; private set; }

    public long FramesRead { get; private set; }

    public int Reopens { get; private set; }

    /// <summary>Called after each (re)open, before the first frame: consumers reset per-stream state.</summary>
    public event Action? Reopened;

    /// <summary>Reads until cancelled or the source ends. <paramref name="onFrame"/> owns each frame it is given.</summary>
    public async Task RunAsync(Func<Frame, ValueTask> onFrame, CancellationToken cancellationToken)
    {
        var delay = options.ReopenDelay;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                try
                {
                    State = SourceState.Opening;
                    await source.OpenAsync(cancellationToken).ConfigureAwait(false);
                    State = SourceState.Streaming;
                    LastError = null;
                    Reopened?.Invoke();
                    logger.LogInformation("Source {Source} streaming", source.Description);
                    while (true)
                    {
                        var frame = await source.ReadAsync(cancellationToken).ConfigureAwait(false);
                        if (frame is null)
                        {
                            State = SourceState.Ended;
                            var unreadable = source.UnreadableFrames;
                            if (FramesRead == 0)
                            {
                                // Nothing will be counted: say so loudly, and keep the reason for stats and /readyz.
                                LastError = unreadable > 0
                                    ? $"ended without a readable frame: {unreadable} unreadable (corrupt, truncated or not an image)"
                                    : "ended without a frame: it is empty";
                                logger.LogWarning("Source {Source} {Reason}; nothing was counted. Check Source:Path", source.Description, LastError);
                            }
                            else logger.LogInformation("Source {Source} ended after {Frames} frames{Skipped}", source.Description, FramesRead,
                                unreadable > 0 ? $" ({unreadable} unreadable, skipped)" : "");
                            return;
                        }
                        FramesRead++;
                        delay = options.ReopenDelay; // healthy again: next failure starts the back-off afresh
                        await onFrame(frame).ConfigureAwait(false);
                    }
                }
                catch (FrameSourceException e) when (e.Permanent)
                {
                    State = SourceState.Failed;
                    LastError = e.Message;
                    logger.LogError("Source {Source} failed: {Error}. Not retried: fix Source:Path (or Source:Kind) and restart the service",
                        source.Description, e.Message);
                    return;
                }
                catch (FrameSourceException e)
                {
                    State = SourceState.Reconnecting;
                    LastError = e.Message;
                    Reopens++;
                    logger.LogWarning("Source {Source} failed: {Error}; reopening in {Delay}", source.Description, e.Message, delay);
                    await Task.Delay(delay, _clock, cancellationToken).ConfigureAwait(false);
                    delay = TimeSpan.FromTicks(Math.Min(options.MaxReopenDelay.Ticks, delay.Ticks * 2));
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            if (State is not (SourceState.Ended or SourceState.Failed)) State = SourceState.Stopped;
        }
    }
}
