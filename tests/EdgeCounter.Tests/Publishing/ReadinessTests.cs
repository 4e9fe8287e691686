using EdgeCounter.Publishing;
using EdgeCounter.Storage;

namespace EdgeCounter.Tests.Publishing;

public class ReadinessTests
{
    private static StatsMessage Stats(string source = "Streaming", bool stuck = false, ConnectionState mqtt = ConnectionState.Connected,
        int outbox = 3, StorageState storage = StorageState.Ok, string? sourceError = null) =>
        StatsMessage.Create(
            new PipelineStats(15, 10, 1, 40, "CPU", TimeSpan.FromMinutes(1), "simulated", source, sourceError, DetectorBusySeconds: stuck ? 45 : 0, DetectorStuck: stuck),
            new PublisherStats(mqtt, 0, outbox, 1000, 0, 0, 10, new StoragePayload(storage, 123_456, 4_194_304, 0, 0)),
            DateTimeOffset.UnixEpoch);

    private static ReadinessCheck Check(ReadinessReport r, string name) => r.Checks.Single(c => c.Name == name);

    [Fact]
    public void A_streaming_connected_service_with_room_is_ready_with_every_check_named()
    {
        var r = Readiness.Of(Stats(), 100);
        Assert.True(r.Ready);
        Assert.Equal(["camera", "detector", "mqtt", "outbox", "storage"], r.Checks.Select(c => c.Name));
        Assert.All(r.Checks, c => Assert.True(c.Ok));
        Assert.Equal("3 of at most 100 messages", Check(r, "outbox").Detail);
        Assert.Equal("ok, 123456 bytes free", Check(r, "storage").Detail);
    }

    [Theory]
    [InlineData("camera")]
    [InlineData("detector")]
    [InlineData("mqtt")]
    [InlineData("outbox")]
    [InlineData("storage")]
    public void Each_fault_fails_its_own_check_only(string fault)
    {
        var stats = fault switch
        {
            "camera" => Stats(source: "Reconnecting", sourceError: "device lost"),
            "detector" => Stats(stuck: true),
            "mqtt" => Stats(mqtt: ConnectionState.Connecting),
            "outbox" => Stats(outbox: 100),
            _ => Stats(storage: StorageState.Full),
        };
        var r = Readiness.Of(stats, 100);
        Assert.False(r.Ready);
        Assert.Equal([fault], r.Checks.Where(c => !c.Ok).Select(c => c.Name));
        if (fault == "camera") Assert.Equal("Reconnecting: device lost", Check(r, "camera").Detail);
        if (fault == "detector") Assert.Contains("45 s", Check(r, "detector").Detail);
    }

    [Fact]
    public void Low_space_keeps_only_images_off_the_disk_so_the_service_stays_ready_while_a_failing_disk_does_not()
    {
        Assert.True(Readiness.Of(Stats(storage: StorageState.Low), 100).Ready);
        Assert.False(Readiness.Of(Stats(storage: StorageState.Failing), 100).Ready);
        Assert.False(Readiness.Of(Stats(source: "Ended"), 100).Ready); // a finished video or folder counts no more
    }
}
