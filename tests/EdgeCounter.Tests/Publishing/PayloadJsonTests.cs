using System.Text.Json;
using EdgeCounter.Counting;
using EdgeCounter.Detection;
using EdgeCounter.Publishing;
using EdgeCounter.Tests.Counting;

namespace EdgeCounter.Tests.Publishing;

public class PayloadJsonTests
{
    private static JsonElement Parse(byte[] bytes) => JsonDocument.Parse(bytes).RootElement;

    [Fact]
    public void Error_texts_keep_their_quotes_readable_and_stay_valid_json()
    {
        var json = System.Text.Encoding.UTF8.GetString(PublishingJson.Serialize(
            SessionErrorMessage.Create("'action' must be a string", "{\"action\":5}"u8, DateTimeOffset.UnixEpoch)));
        Assert.Contains("\"error\":\"'action' must be a string\"", json);
        Assert.Contains("\"raw\":\"{\\\"action\\\":5}\"", json);
        Assert.DoesNotContain("\\u0027", json);
        Assert.Equal("'action' must be a string", JsonDocument.Parse(json).RootElement.GetProperty("error").GetString());
    }

    [Fact]
    public void Field_message_has_the_documented_camelCase_shape()
    {
        var capturedAt = new DateTimeOffset(2026, 11, 26, 9, 30, 15, 250, TimeSpan.FromHours(2));
        var message = new FieldMessage("sess-1", "S-1", 7, capturedAt,
            [DetectionPayload.From(new global::EdgeCounter.Detection.Detection("neutrophil", "WBC", 0.91234f, new BoxF(10.04f, 20f, 50.26f, 61f)))],
            new Dictionary<string, int> { ["neutrophil"] = 1 }, 123.4567, 0.0123, 18.5,
            new ModelPayload("edgecounter-cellnet", "1.0.0"), "CPU");

        var json = Parse(PublishingJson.Serialize(message));

        Assert.Equal("sess-1", json.GetProperty("sessionId").GetString());
        Assert.Equal("S-1", json.GetProperty("sampleId").GetString());
        Assert.Equal(7, json.GetProperty("fieldId").GetInt64());
        Assert.Equal("2026-11-26T07:30:15.250Z", json.GetProperty("capturedAt").GetString());
        var detection = json.GetProperty("detections")[0];
        Assert.Equal("neutrophil", detection.GetProperty("label").GetString());
        Assert.Equal("WBC", detection.GetProperty("class").GetString());
        Assert.Equal(0.912, detection.GetProperty("score").GetDouble(), 6);
        Assert.Equal([10f, 20f, 50.3f, 61f], detection.GetProperty("box").EnumerateArray().Select(e => e.GetSingle()).ToArray());
        Assert.Equal(1, json.GetProperty("counts").GetProperty("neutrophil").GetInt32());
        Assert.Equal(123.4567, json.GetProperty("focusScore").GetDouble());
        Assert.Equal(0.0123, json.GetProperty("motionScore").GetDouble());
        Assert.Equal(18.5, json.GetProperty("inferenceMs").GetDouble());
        Assert.Equal("edgecounter-cellnet", json.GetProperty("model").GetProperty("name").GetString());
        Assert.Equal("1.0.0", json.GetProperty("model").GetProperty("version").GetString());
        Assert.Equal("CPU", json.GetProperty("executionProvider").GetString());
    }

    [Fact]
    public void Counts_snapshot_serialises_state_as_a_word_and_keeps_label_keys()
    {
        var session = CountingSession.Start(CountingTestData.Catalog(), "sess-2", "S-2", 4, DateTimeOffset.UnixEpoch);
        session.TryAddField(CountingTestData.Field(("neutrophil", 3), ("monocyte", 1), ("RBC", 9)), DateTimeOffset.UnixEpoch.AddSeconds(5), out _);

        var json = Parse(PublishingJson.Serialize(session.Snapshot()));

        Assert.Equal("completed", json.GetProperty("state").GetString());
        Assert.Equal(1, json.GetProperty("fields").GetInt64());
        Assert.Equal(9, json.GetProperty("totals").GetProperty("RBC").GetInt64());
        Assert.Equal(4, json.GetProperty("groups").GetProperty("WBC").GetInt64());
        Assert.Equal(75.0, json.GetProperty("differential").GetProperty("neutrophil").GetDouble());
        Assert.Equal(4, json.GetProperty("whiteCells").GetInt64());
        Assert.Equal(4, json.GetProperty("target").GetInt32());
        Assert.Equal(1.0, json.GetProperty("progress").GetDouble());
        Assert.Equal("1970-01-01T00:00:00.000Z", json.GetProperty("startedAt").GetString());
        Assert.Equal("1970-01-01T00:00:05.000Z", json.GetProperty("endedAt").GetString());
    }

    [Fact]
    public void Session_error_truncates_the_raw_text()
    {
        var raw = System.Text.Encoding.UTF8.GetBytes(new string('x', 5000));
        var error = SessionErrorMessage.Create("too big", raw, DateTimeOffset.UnixEpoch);
        Assert.Equal(SessionErrorMessage.MaxRawChars + 1, error.Raw.Length);
        Assert.EndsWith("…", error.Raw);
        var json = Parse(PublishingJson.Serialize(error));
        Assert.Equal("too big", json.GetProperty("error").GetString());
        Assert.StartsWith("xxx", json.GetProperty("raw").GetString());

        var small = SessionErrorMessage.Create("bad", "{\"a\":1}"u8, DateTimeOffset.UnixEpoch);
        Assert.Equal("{\"a\":1}", small.Raw);
    }

    [Fact]
    public void Stats_message_merges_pipeline_and_publisher_figures()
    {
        var stats = StatsMessage.Create(
            new PipelineStats(29.97, 120, 30, 41.256, "CUDA", TimeSpan.FromSeconds(3600.04), WorkingSetMb: 251.24, ManagedHeapMb: 31.06,
                GcCommittedMb: 44.44),
            new PublisherStats(ConnectionState.Connected, 2, 5, 1000, 1, 0, 400), DateTimeOffset.UnixEpoch);
        var json = Parse(PublishingJson.Serialize(stats));
        Assert.Equal(29.97, json.GetProperty("cameraFps").GetDouble());
        Assert.Equal(120, json.GetProperty("processedFields").GetInt64());
        Assert.Equal(30, json.GetProperty("skippedFields").GetInt64());
        Assert.Equal(41.26, json.GetProperty("inferenceMsAverage").GetDouble());
        Assert.Equal("CUDA", json.GetProperty("executionProvider").GetString());
        Assert.Equal(3600.0, json.GetProperty("uptimeSeconds").GetDouble());
        Assert.True(json.GetProperty("mqttConnected").GetBoolean());
        Assert.Equal(5, json.GetProperty("outboxMessages").GetInt32());
        Assert.Equal(1, json.GetProperty("droppedImages").GetInt64());
        Assert.Equal(0.0, json.GetProperty("detectorBusySeconds").GetDouble());
        Assert.False(json.GetProperty("detectorStuck").GetBoolean());
        Assert.Equal(0, json.GetProperty("corruptFrames").GetInt64());
        Assert.Equal(System.Text.Json.JsonValueKind.Null, json.GetProperty("pixelScale").ValueKind);   // no detector yet
        Assert.Equal(251.2, json.GetProperty("workingSetMb").GetDouble());
        Assert.Equal(31.1, json.GetProperty("managedHeapMb").GetDouble());
        Assert.Equal(44.4, json.GetProperty("gcCommittedMb").GetDouble());
    }

    [Fact]
    public void Stats_message_says_which_pixel_scale_is_in_use_and_where_it_comes_from()
    {
        var estimated = new EdgeCounter.Detection.PixelScaleStatus(1.73214, 0.173214, EdgeCounter.Detection.PixelScaleSource.Estimated,
            RedCells: 412, Fields: 1, RedCellDiameterPx: 49.5, Estimates: [2.0, 1.73214]);
        var stats = StatsMessage.Create(
            new PipelineStats(30, 7, 0, 20, "CPU", TimeSpan.FromMinutes(5), PixelScale: estimated),
            new PublisherStats(ConnectionState.Connected, 0, 0, 0, 0, 0, 7), DateTimeOffset.UnixEpoch);
        var scale = Parse(PublishingJson.Serialize(stats)).GetProperty("pixelScale");
        Assert.Equal("estimated", scale.GetProperty("source").GetString());
        Assert.Equal(1.7321, scale.GetProperty("inputScale").GetDouble());
        Assert.Equal(0.17321, scale.GetProperty("micrometresPerPixel").GetDouble());
        Assert.Equal(412, scale.GetProperty("redCells").GetInt32());
        Assert.Equal(2, scale.GetProperty("estimations").GetInt32());

        var configured = EdgeCounter.Detection.PixelScaleStatus.Fixed(0.75, null, configured: true);
        var noModelScale = Parse(PublishingJson.Serialize(StatsMessage.Create(
            new PipelineStats(30, 7, 0, 20, "CPU", TimeSpan.FromMinutes(5), PixelScale: configured),
            new PublisherStats(ConnectionState.Connected, 0, 0, 0, 0, 0, 7), DateTimeOffset.UnixEpoch))).GetProperty("pixelScale");
        Assert.Equal("configured", noModelScale.GetProperty("source").GetString());
        Assert.Equal(System.Text.Json.JsonValueKind.Null, noModelScale.GetProperty("micrometresPerPixel").ValueKind);
    }

    [Fact]
    public void Stats_message_says_how_the_state_directory_takes_writes()
    {
        var stats = StatsMessage.Create(new PipelineStats(30, 7, 0, 20, "CPU", TimeSpan.FromMinutes(5)),
            new PublisherStats(ConnectionState.Connected, 0, 3, 900, 1, 0, 7,
                new StoragePayload(EdgeCounter.Storage.StorageState.Full, 0, 4_194_304, 3, 1)), DateTimeOffset.UnixEpoch);
        var storage = Parse(PublishingJson.Serialize(stats)).GetProperty("storage");
        Assert.Equal("full", storage.GetProperty("state").GetString());
        Assert.Equal(0, storage.GetProperty("bytesFree").GetInt64());
        Assert.Equal(4_194_304, storage.GetProperty("reserveBytes").GetInt64());
        Assert.Equal(3, storage.GetProperty("pendingInMemory").GetInt32());
        Assert.Equal(1, storage.GetProperty("dropped").GetInt64());
    }

    [Fact]
    public void Stats_message_reports_a_stuck_detector()
    {
        var stats = StatsMessage.Create(
            new PipelineStats(30, 7, 0, 20, "CPU", TimeSpan.FromMinutes(5), DetectorBusySeconds: 42.06, DetectorStuck: true, CorruptFrames: 3),
            new PublisherStats(ConnectionState.Connected, 0, 0, 0, 0, 0, 7), DateTimeOffset.UnixEpoch);
        var json = Parse(PublishingJson.Serialize(stats));
        Assert.Equal(42.1, json.GetProperty("detectorBusySeconds").GetDouble());
        Assert.True(json.GetProperty("detectorStuck").GetBoolean());
        Assert.Equal(3, json.GetProperty("corruptFrames").GetInt64());
    }
}
