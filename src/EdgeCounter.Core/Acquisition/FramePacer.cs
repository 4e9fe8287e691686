namespace EdgeCounter.Acquisition;

/// <summary>
/// Delivers recorded or generated frames at their own rate: each frame has an offset from the start of the stream,
/// and the pacer waits until that much real time has passed. Capture timestamps are start + offset either way.
/// Public for the sources outside Core (the simulated microscope).
/// </summary>
public sealed class FramePacer(TimeProvider clock, bool realTime)
{
    private long _startTicks;
    private DateTimeOffset _start;

    public void Restart()
    {
        _start = clock.GetUtcNow();
        _startTicks = clock.GetTimestamp();
    }

    public DateTimeOffset TimestampOf(TimeSpan offset) => _start + offset;

    public Task WaitForAsync(TimeSpan offset, CancellationToken cancellationToken)
    {
        if (!realTime) return Task.CompletedTask;
        var wait = offset - clock.GetElapsedTime(_startTicks);
        return wait > TimeSpan.Zero ? Task.Delay(wait, clock, cancellationToken) : Task.CompletedTask;
    }
}
