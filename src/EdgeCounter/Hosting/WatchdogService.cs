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
        logger.LogInformation("systemd watchdog: pinging every {Interval} while the pipeline makes progress", interval / 3);
        using var timer = new PeriodicTimer(interval / 3);
        var withholding = false;
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                var ping = ShouldPing(monitor.SinceHeartbeat, monitor.SourceState, monitor.DetectionBusyFor, interval, stuckAfter);
                if (ping) notifier.Notify(new ServiceState("WATCHDOG=1"));
                // Said here too: the stats tick may come after systemd's restart, and this is what triggers it.
                else if (!withholding)
                    logger.LogError("systemd watchdog: pings withheld (no progress for {Idle}, detection busy for {Busy}); systemd will restart the service",
                        monitor.SinceHeartbeat, monitor.DetectionBusyFor);
                withholding = !ping;
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// Feed the watchdog only if the pipeline is alive: frames or fields made progress within the watchdog interval
    /// (a source that is reconnecting counts as alive: its loop is running) and no field is stuck in detection.
    /// </summary>
    public static bool ShouldPing(TimeSpan sinceHeartbeat, Acquisition.SourceState source, TimeSpan detectionBusyFor, TimeSpan interval, TimeSpan stuckAfter)
    {
        if (detectionBusyFor > stuckAfter) return false;
        return sinceHeartbeat < interval || source is not Acquisition.SourceState.Streaming;
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
