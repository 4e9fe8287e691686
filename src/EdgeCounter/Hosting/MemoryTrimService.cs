using System.Diagnostics;
using Microsoft.Extensions.Options;

namespace EdgeCounter.Hosting;

/// <summary>
/// Every <see cref="EdgeCounterOptions.MemoryTrimInterval"/>, returns free memory to the system (<see cref="NativeMemory.Trim"/>),
/// so that a kiosk running for months keeps the resident memory of what the service holds, not of its busiest minute
/// (docs/reliability.md, "Long runs"). The collection pauses the process for tens of milliseconds; the capture loop's
/// frames wait in its queue meanwhile, so no field is lost.
/// </summary>
public sealed class MemoryTrimService(IOptions<EdgeCounterOptions> options, ILogger<MemoryTrimService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = options.Value.MemoryTrimInterval;
        if (interval <= TimeSpan.Zero) return;
        using var timer = new PeriodicTimer(interval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                var before = Environment.WorkingSet;
                var watch = Stopwatch.StartNew();
                NativeMemory.Trim();
                logger.LogDebug("Memory trimmed in {Ms} ms: resident {Before:F1} → {After:F1} MB", watch.ElapsedMilliseconds,
                    before / 1048576.0, Environment.WorkingSet / 1048576.0);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
