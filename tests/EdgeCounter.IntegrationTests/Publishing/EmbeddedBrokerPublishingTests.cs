using System.Text;
using System.Text.Json;
using EdgeCounter.Counting;
using EdgeCounter.Publishing;
using MQTTnet;
using MQTTnet.Protocol;
using OpenCvSharp;

namespace EdgeCounter.IntegrationTests.Publishing;

/// <summary>The publisher against the embedded MQTTnet broker on a free loopback port, read by real subscribers.</summary>
public class EmbeddedBrokerPublishingTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task Fields_counts_image_and_commands_flow_through_the_embedded_broker()
    {
        var port = FreePort.Next();
        await using var broker = new EmbeddedBroker(port);
        await broker.StartAsync();
        await using var service = ServiceUnderTest.Create(port, maxImageBytes: 150_000);
        var topics = service.Topics;
        await using var live = await RecordingSubscriber.ConnectAsync(port, topics.All);

        await service.Publisher.StartAsync();
        await live.WaitForAsync(m => m.Topic == topics.Available && m.Text == "online", Wait, "online");
        service.Commands.PublishCurrentState();

        using var image = ServiceUnderTest.NoisyImage();
        var fields = new[]
        {
            ServiceUnderTest.MakeField(image, 1, "neutrophil", "neutrophil", "RBC", "lymphocyte"),
            ServiceUnderTest.MakeField(image, 2, "monocyte", "RBC", "RBC", "Platelets"),
            ServiceUnderTest.MakeField(image, 3, "eosinophil", "basophil", "neutrophil"),
        };
        foreach (var field in fields) Assert.True(service.Report(field).Accepted);

        var fieldMessages = await live.WaitForCountAsync(m => m.Topic == topics.Field, 3, Wait, "field");
        Assert.All(fieldMessages, m => Assert.Equal(MqttQualityOfServiceLevel.AtLeastOnce, m.QoS));
        var parsed = fieldMessages.Select(m => JsonDocument.Parse(m.Payload).RootElement).ToArray();
        Assert.Equal([1L, 2, 3], parsed.Select(p => p.GetProperty("fieldId").GetInt64()));
        var sessionId = service.Counting.Snapshot().SessionId;
        Assert.All(parsed, p => Assert.Equal(sessionId, p.GetProperty("sessionId").GetString()));
        Assert.Equal(4, parsed[0].GetProperty("detections").GetArrayLength());
        Assert.Equal(4, parsed[0].GetProperty("detections")[0].GetProperty("box").GetArrayLength());
        Assert.Equal(2, parsed[0].GetProperty("counts").GetProperty("neutrophil").GetInt32());
        Assert.EndsWith("Z", parsed[0].GetProperty("capturedAt").GetString());
        Assert.Equal("CPU", parsed[0].GetProperty("executionProvider").GetString());
        Assert.Equal("edgecounter-cellnet", parsed[0].GetProperty("model").GetProperty("name").GetString());

        // A late subscriber gets the retained values: availability, the newest counts and image, the session state.
        Assert.True(await service.Publisher.WaitForDrainAsync(Wait));
        await using var late = await RecordingSubscriber.ConnectAsync(port, topics.All);
        var available = await late.WaitForAsync(m => m.Topic == topics.Available, Wait, "retained available");
        Assert.True(available.Retain);
        Assert.Equal("online", available.Text);

        var counts = await late.WaitForAsync(m => m.Topic == topics.Counts, Wait, "retained counts");
        Assert.True(counts.Retain);
        var countsJson = JsonDocument.Parse(counts.Payload).RootElement;
        Assert.Equal(3, countsJson.GetProperty("fields").GetInt64());
        foreach (var label in ServiceUnderTest.Model.Labels)
        {
            var sumOfFields = parsed.Sum(p => p.GetProperty("counts").TryGetProperty(label, out var n) ? n.GetInt32() : 0);
            Assert.Equal(sumOfFields, countsJson.GetProperty("totals").GetProperty(label).GetInt64());
        }
        Assert.Equal(7, countsJson.GetProperty("groups").GetProperty("WBC").GetInt64());
        Assert.Equal(100.0, countsJson.GetProperty("differential").EnumerateObject().Sum(p => p.Value.GetDouble()), 1);

        var jpeg = await late.WaitForAsync(m => m.Topic == topics.FieldImage, Wait, "retained image");
        Assert.True(jpeg.Retain);
        Assert.InRange(jpeg.Payload.Length, 1, 150_000);
        using (var decoded = Cv2.ImDecode(jpeg.Payload, ImreadModes.Color))
        {
            Assert.False(decoded.Empty());
            Assert.True(decoded.Width >= 200 && decoded.Width < image.Width, $"decoded width {decoded.Width}");
        }
        Assert.True((await late.WaitForAsync(m => m.Topic == topics.SessionState, Wait, "retained state")).Retain);

        // Stats: the pipeline's figures plus the publisher's own.
        Assert.True(await service.Publisher.PublishStatsAsync(new PipelineStats(25.0, 3, 40, 12.5, "CPU", TimeSpan.FromSeconds(9))));
        var stats = JsonDocument.Parse((await live.WaitForAsync(m => m.Topic == topics.Stats, Wait, "stats")).Payload).RootElement;
        Assert.Equal(3, stats.GetProperty("processedFields").GetInt64());
        Assert.True(stats.GetProperty("mqttConnected").GetBoolean());
        Assert.Equal(0, stats.GetProperty("outboxMessages").GetInt32());

        // Commands: start a new sample session; its state is echoed (and counts restart).
        await live.PublishAsync(topics.SessionSet, """{"action":"start","sampleId":"S-2","target":5}"""u8.ToArray());
        var state = await live.WaitForAsync(m => m.Topic == topics.SessionState && m.Text.Contains("\"S-2\""), Wait, "state after start");
        var stateJson = JsonDocument.Parse(state.Payload).RootElement;
        Assert.Equal("running", stateJson.GetProperty("state").GetString());
        Assert.Equal(5, stateJson.GetProperty("target").GetInt32());
        Assert.Equal(0, stateJson.GetProperty("fields").GetInt64());
        Assert.NotEqual(sessionId, stateJson.GetProperty("sessionId").GetString());

        // Malformed and oversized commands get an error and change nothing.
        await live.PublishAsync(topics.SessionSet, "{oops"u8.ToArray());
        var error = await live.WaitForAsync(m => m.Topic == topics.SessionError, Wait, "error for malformed");
        var errorJson = JsonDocument.Parse(error.Payload).RootElement;
        Assert.Contains("not valid JSON", errorJson.GetProperty("error").GetString());
        Assert.Equal("{oops", errorJson.GetProperty("raw").GetString());
        await live.PublishAsync(topics.SessionSet, Encoding.UTF8.GetBytes("{\"action\":\"stop\"," + new string(' ', 5000) + "}"));
        var oversized = await live.WaitForCountAsync(m => m.Topic == topics.SessionError, 2, Wait, "error for oversized");
        Assert.Contains("limit is 4096", JsonDocument.Parse(oversized[1].Payload).RootElement.GetProperty("error").GetString());
        Assert.Equal(SessionState.Running, service.Counting.Snapshot().State);
        Assert.Equal("S-2", service.Counting.Snapshot().SampleId);

        // Reaching the target (5 white cells) completes the session by itself and says so on session/state.
        Assert.True(service.Report(ServiceUnderTest.MakeField(image, 4, "neutrophil", "neutrophil", "lymphocyte", "monocyte", "basophil", "RBC")).CompletedNow);
        var completed = await live.WaitForAsync(m => m.Topic == topics.SessionState && m.Text.Contains("\"completed\""), Wait, "state after completion");
        Assert.Equal(5, JsonDocument.Parse(completed.Payload).RootElement.GetProperty("whiteCells").GetInt64());
        Assert.False(service.Report(fields[0]).Accepted);

        // Stop: fields are refused until the next start.
        await live.PublishAsync(topics.SessionSet, """{"action":"start","sampleId":"S-3"}"""u8.ToArray());
        await live.WaitForAsync(m => m.Topic == topics.SessionState && m.Text.Contains("\"S-3\""), Wait, "state after second start");
        await live.PublishAsync(topics.SessionSet, """{"action":"stop"}"""u8.ToArray());
        await live.WaitForAsync(m => m.Topic == topics.SessionState && m.Text.Contains("\"stopped\""), Wait, "state after stop");
        Assert.False(service.Report(fields[0]).Accepted);

        // Clean shutdown leaves "stopped" as the retained availability.
        await service.Publisher.StopAsync();
        var stopped = await live.WaitForAsync(m => m.Topic == topics.Available && m.Text == "stopped", Wait, "stopped");
        Assert.Equal("stopped", (await broker.Server.GetRetainedMessageAsync(topics.Available)).ConvertPayloadToString());
    }

    [Fact]
    public async Task Last_will_says_offline_when_the_connection_drops_without_a_disconnect()
    {
        var port = FreePort.Next();
        await using var broker = new EmbeddedBroker(port);
        await broker.StartAsync();
        var options = new MqttOptions { Mode = MqttMode.External, Host = "127.0.0.1", Port = port, DeviceId = "will-test" };
        var topics = TopicMap.For(options);
        await using var watcher = await RecordingSubscriber.ConnectAsync(port, topics.Available);

        // The publisher's own connect options (will included), on a client that then vanishes without DISCONNECT.
        var client = new MqttClientFactory().CreateMqttClient();
        await client.ConnectAsync(MqttPublisher.BuildClientOptions(options, topics));
        await client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topics.Available).WithPayload("online").WithRetainFlag().Build());
        await watcher.WaitForAsync(m => m.Text == "online", Wait, "online");
        client.Dispose();

        await watcher.WaitForAsync(m => m.Text == "offline", Wait, "last will");
        Assert.Equal("offline", (await broker.Server.GetRetainedMessageAsync(topics.Available)).ConvertPayloadToString());
    }

    [Fact]
    public async Task Results_published_while_the_broker_is_down_are_replayed_in_order()
    {
        var port = FreePort.Next();
        await using var service = ServiceUnderTest.Create(port, publishImages: false);
        var topics = service.Topics;
        await service.Publisher.StartAsync();

        using var image = ServiceUnderTest.NoisyImage(320, 240);
        const int fieldCount = 25;
        for (var i = 0; i < fieldCount; i++)
            Assert.True(service.Report(ServiceUnderTest.MakeField(image, i, "neutrophil", "RBC")).Accepted);
        await Task.Delay(300);
        Assert.False(service.Publisher.IsConnected);
        Assert.Equal(fieldCount + 1, service.Publisher.Outbox.Count); // every field + the coalesced counts

        // Hold the publisher's connection until the subscriber listens, so the test sees the replay from its start.
        var subscriberReady = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var broker = new EmbeddedBroker(port);
        broker.Server.ValidatingConnectionAsync += async e =>
        {
            if (e.ClientId == service.Options.EffectiveClientId) await subscriberReady.Task.WaitAsync(Wait);
        };
        await broker.StartAsync();
        await using var subscriber = await RecordingSubscriber.ConnectAsync(port, topics.All);
        subscriberReady.SetResult();

        var fields = await subscriber.WaitForCountAsync(m => m.Topic == topics.Field, fieldCount, Wait, "replayed field");
        var ids = fields.Select(m => JsonDocument.Parse(m.Payload).RootElement.GetProperty("fieldId").GetInt64()).ToArray();
        Assert.Equal(Enumerable.Range(1, fieldCount).Select(i => (long)i), ids);
        var counts = await subscriber.WaitForAsync(m => m.Topic == topics.Counts, Wait, "counts");
        Assert.Equal(fieldCount, JsonDocument.Parse(counts.Payload).RootElement.GetProperty("totals").GetProperty("neutrophil").GetInt64());
        Assert.True(await service.Publisher.WaitForDrainAsync(Wait));
        Assert.Equal(0, service.Publisher.GetStats().DroppedResults);
    }
}
