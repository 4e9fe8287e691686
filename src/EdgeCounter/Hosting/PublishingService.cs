using EdgeCounter.Counting;
using EdgeCounter.Publishing;
using Microsoft.Extensions.Options;

namespace EdgeCounter.Hosting;

/// <summary>
/// Starts the embedded broker (when configured), connects the publisher, answers session commands, and publishes
/// stats periodically. Started before the pipeline and stopped after it, so the last results still go out.
/// </summary>
public sealed class PublishingService(
    MqttPublisher publisher,
    SessionCommandHandler commands,
    CountingService counting,
    FieldPublisher fields,
    PipelineMonitor monitor,
    IOptions<EdgeCounterOptions> options,
    ILogger<PublishingService> logger,
    EmbeddedBroker? broker = null) : BackgroundService
{
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        var mqtt = options.Value.Mqtt;
        if (broker is not null) await broker.StartAsync(cancellationToken); // logs where it listens
        await publisher.StartAsync(cancellationToken);
        // Before the state: the last field counted before a power cut may never have reached the outbox.
        fields.PublishKeptFieldResult(counting.LastFieldResult);
        commands.PublishCurrentState();
        fields.PublishSavedSlideMap(counting.Snapshot().SessionId);
        logger.LogInformation("Publishing to {Host}:{Port} under {Prefix}/# (watch: mosquitto_sub -h {Host} -p {Port} -t '{Prefix}/#' -v)",
            mqtt.EffectiveHost, mqtt.Port, publisher.Topics.Prefix, mqtt.EffectiveHost, mqtt.Port, publisher.Topics.Prefix);
        await base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.Mqtt.StatsInterval);
        var reportedStuck = false;
        try
        {
            do
            {
                var stats = monitor.Stats(options.Value.StuckDetectionAfter);
                // Reported here, not by the watchdog, so it shows outside systemd too (log and P/stats).
                if (stats.DetectorStuck && !reportedStuck) logger.LogError("Detection has been busy for {Busy:0} s: the detector looks stuck", stats.DetectorBusySeconds);
                else if (!stats.DetectorStuck && reportedStuck) logger.LogInformation("Detection is moving again");
                reportedStuck = stats.DetectorStuck;
                await publisher.PublishStatsAsync(stats, stoppingToken);
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        await publisher.StopAsync(cancellationToken, TimeSpan.FromSeconds(5));
        if (broker is not null) await broker.StopAsync(cancellationToken);
    }
}
