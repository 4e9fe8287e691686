using System.Threading.Channels;
using EdgeCounter.Counting;
using EdgeCounter.Detection;
using EdgeCounter.Fields;
using Microsoft.Extensions.Options;

namespace EdgeCounter.Hosting;

/// <summary>
/// Detection side of the pipeline: takes the newest stable field and hands it to the <see cref="FieldProcessor"/>
/// (which counts and publishes), then updates the live figures and the console. Runs on its own thread so capture
/// never waits for it.
/// </summary>
public sealed class CountingWorker(
    LatestFieldBuffer buffer,
    FieldProcessor processor,
    ICellDetector detector,
    PipelineMonitor monitor,
    IOptions<EdgeCounterOptions> options,
    ILogger<CountingWorker> logger) : BackgroundService
{
    /// <summary>Raised after each stable field is handled, whatever its fate (on the worker thread; the field is
    /// disposed afterwards).</summary>
    public event Action<FieldOutcome>? FieldHandled;

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        // Inference is CPU-bound and synchronous: give it a thread of its own instead of a pool thread.
        Task.Factory.StartNew(() => RunAsync(stoppingToken), stoppingToken, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();

    private async Task RunAsync(CancellationToken stoppingToken)
    {
        // The watchdog times each detection from its start.
        processor.DetectionStarted += monitor.OnDetectionStarted;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                using var field = await buffer.TakeAsync(stoppingToken).ConfigureAwait(false);
                Observe(processor.Process(field));
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        catch (ChannelClosedException)
        {
            logger.LogInformation("No more frames from the source (see the source's last message): no more fields to count");
        }
        finally
        {
            processor.DetectionStarted -= monitor.OnDetectionStarted;
        }
    }

    private void Observe(FieldOutcome outcome)
    {
        if (outcome.Placement is { Known: false }) monitor.OnUnknownPosition();
        switch (outcome.Fate)
        {
            case FieldFate.Revisit:
                monitor.OnRevisit();
                break;
            case FieldFate.DetectionFailed:
                monitor.OnFieldProcessed(0);
                break;
            case FieldFate.NotCounted:
                // Detected, but the session closed meanwhile; or never detected (no session running).
                if (outcome.Detection is { } detected) monitor.OnFieldProcessed(detected.TotalMs);
                monitor.OnNotCounted();
                break;
            case FieldFate.Counted:
                var count = outcome.Count!;
                monitor.OnFieldProcessed(outcome.Detection!.TotalMs);
                if (options.Value.ConsoleFieldLines) logger.LogInformation("{FieldLine}", FieldLine.Format(count, outcome.Detection, detector.ExecutionProvider));
                if (count.CompletedNow)
                    logger.LogInformation("Session {SessionId} (sample {SampleId}) reached its target of {Target} white cells after {Fields} fields",
                        count.Counts.SessionId, count.Counts.SampleId, count.Counts.Target, count.Counts.Fields);
                break;
        }
        FieldHandled?.Invoke(outcome);
    }
}
