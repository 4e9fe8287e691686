using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Options;

namespace EdgeCounter.Hosting;

/// <summary>
/// Feeds systemd's watchdog only while the pipeline makes progress (frames scored, fields processed) and no field is
/// stuck in detection; a hung pipeline stops the pings and systemd restarts the service. Does nothing outside systemd.
/// </summary>
public sealed class WatchdogService(
    PipelineMonitor monitor,
    IOptions<EdgeCounterOptions> options,
    ILogger<WatchdogService> logger,
    ISystemdNotifier? notifier = null) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (notifier is not { IsEnabled: true } || !TryWatchdogInterval(out var interval)) return;
        var stuckAfter = options.Value.StuckDetectionAfter;
        var reportedStuck = false;
        using var timer = new PeriodicTimer(interval / 3);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                var stuck = monitor.DetectionBusyFor > stuckAfter;
                if (stuck && !reportedStuck) logger.LogError("Detection has been busy for {Busy}: the detector looks stuck", monitor.DetectionBusyFor);
                reportedStuck = stuck;
                // A source that is reconnecting still beats (the loop is alive); a hung loop does not.
                var alive = monitor.SinceHeartbeat < interval || monitor.SourceState is not Acquisition.SourceState.Streaming;
                if (alive && !stuck) notifier.Notify(new ServiceState("WATCHDOG=1"));
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private static bool TryWatchdogInterval(out TimeSpan interval)
    {
        interval = default;
        var usec = Environment.GetEnvironmentVariable("WATCHDOG_USEC");
        if (!long.TryParse(usec, out var microseconds) || microseconds <= 0) return false;
        interval = TimeSpan.FromMicroseconds(microseconds);
        return true;
    }
}
