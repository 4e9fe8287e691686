using EdgeCounter.Storage;

namespace EdgeCounter.Publishing;

/// <summary>One named check of <c>/readyz</c>.</summary>
/// <param name="Name">camera, detector, mqtt, outbox or storage.</param>
/// <param name="Detail">What was seen, for the person reading it (e.g. "Reconnecting: device lost").</param>
public sealed record ReadinessCheck(string Name, bool Ok, string Detail);

/// <summary>The <c>/readyz</c> answer: ready when every check is ok.</summary>
public sealed record ReadinessReport(bool Ready, IReadOnlyList<ReadinessCheck> Checks);

/// <summary>
/// Whether the service is doing its job, from the same figures as P/stats, so hospital IT sees the same truth on HTTP
/// when MQTT is down: the camera is streaming, no field is stuck in detection, MQTT is connected, the outbox is below
/// its bound, and the state disk takes results. Pure.
/// </summary>
public static class Readiness
{
    public static ReadinessReport Of(StatsMessage stats, int outboxMaxMessages)
    {
        ArgumentNullException.ThrowIfNull(stats);
        var camera = stats.SourceState == nameof(Acquisition.SourceState.Streaming);
        var storage = stats.Storage?.State ?? StorageState.Ok;
        ReadinessCheck[] checks =
        [
            new("camera", camera, stats.SourceError is { Length: > 0 } error && !camera ? $"{stats.SourceState}: {error}" : stats.SourceState),
            new("detector", !stats.DetectorStuck, stats.DetectorStuck ? $"stuck: one field in detection for {stats.DetectorBusySeconds:0} s" : "ok"),
            new("mqtt", stats.MqttConnected, stats.MqttConnected ? "connected" : "not connected (results wait in the outbox)"),
            new("outbox", stats.OutboxMessages < outboxMaxMessages, $"{stats.OutboxMessages} of at most {outboxMaxMessages} messages"),
            // Low space only keeps images off the disk; results are still persisted.
            new("storage", storage is StorageState.Ok or StorageState.Low,
                $"{storage.ToString().ToLowerInvariant()}{(stats.Storage?.BytesFree is { } free ? $", {free} bytes free" : "")}"),
        ];
        return new ReadinessReport(checks.All(c => c.Ok), checks);
    }
}
