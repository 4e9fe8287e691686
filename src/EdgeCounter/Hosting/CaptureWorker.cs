using EdgeCounter.Acquisition;
using EdgeCounter.Fields;
using Microsoft.Extensions.Options;

namespace EdgeCounter.Hosting;

/// <summary>
/// Capture side of the pipeline: runs the capture loop and pushes every frame through the <see cref="FieldStage"/>,
/// which copies each stable field into the latest-wins buffer. Never waits for detection.
/// </summary>
public sealed class CaptureWorker(
    IFrameSource source,
    IOptions<EdgeCounterOptions> options,
    LatestFieldBuffer buffer,
    PipelineMonitor monitor,
    ILoggerFactory loggers,
    ILogger<CaptureWorker> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value;
        using var stage = new FieldStage(settings.Fields, buffer, monitor, loggers.CreateLogger<FieldStage>());

        var loop = new CaptureLoop(source, settings.Source, logger);
        monitor.Capture = loop;
        monitor.Buffer = buffer;
        monitor.Source = source;
        loop.Reopened += stage.Reset;

        await Task.Yield(); // let the host finish starting before the first (possibly blocking) open
        await loop.RunAsync(frame =>
        {
            using (frame) stage.Push(frame);
            return ValueTask.CompletedTask;
        }, stoppingToken);
        buffer.Complete();
    }
}
