using EdgeCounter.Counting;
using EdgeCounter.Publishing;
using EdgeCounter.Storage;
using Prometheus;

namespace EdgeCounter.Web;

/// <summary>The Prometheus metrics of /metrics (names in docs/http.md), set from the P/stats figures and the open
/// session at each scrape. Its own registry, so that two services in one process (tests) do not share figures; the
/// .NET runtime's and the process's own metrics are in it too.</summary>
public sealed class ServiceMetrics
{
    private readonly Counter _fieldsProcessed, _fieldsSkipped, _corruptFrames, _revisits, _unknownPosition, _reconnects, _droppedImages, _droppedResults;
    private readonly Gauge _cameraFps, _inferenceMs, _detectorStuck, _mqttConnected, _outboxMessages, _outboxBytes, _bytesFree, _storageState,
        _ready, _readyCheck, _sessionCells, _sessionFields, _sessionProgress;

    public ServiceMetrics()
    {
        Registry = Metrics.NewCustomRegistry();
        DotNetStats.Register(Registry);
        var f = Metrics.WithCustomRegistry(Registry);
        _fieldsProcessed = f.CreateCounter("edgecounter_fields_processed_total", "Stable fields that went through detection.");
        _fieldsSkipped = f.CreateCounter("edgecounter_fields_skipped_total", "Stable fields not counted: dropped while detection was busy, revisits, no session running.");
        _corruptFrames = f.CreateCounter("edgecounter_corrupt_frames_total", "Frames that could not be used (damaged or unreadable).");
        _revisits = f.CreateCounter("edgecounter_revisits_total", "Fields skipped as already counted in the session.");
        _unknownPosition = f.CreateCounter("edgecounter_unknown_position_fields_total", "Fields counted without a slide position (registration failed).");
        _reconnects = f.CreateCounter("edgecounter_mqtt_reconnects_total", "MQTT reconnections after a lost connection.");
        _droppedImages = f.CreateCounter("edgecounter_outbox_dropped_images_total", "Field images dropped from the outbox at its bound.");
        _droppedResults = f.CreateCounter("edgecounter_outbox_dropped_results_total", "Results dropped from the outbox at its bound.");
        _cameraFps = f.CreateGauge("edgecounter_camera_fps", "Frames per second from the source (moving average).");
        _inferenceMs = f.CreateGauge("edgecounter_inference_milliseconds", "Detector inference time per field (moving average).");
        _detectorStuck = f.CreateGauge("edgecounter_detector_stuck", "1 while one field has been in detection longer than StuckDetectionAfter.");
        _mqttConnected = f.CreateGauge("edgecounter_mqtt_connected", "1 while the MQTT client is connected.");
        _outboxMessages = f.CreateGauge("edgecounter_outbox_messages", "Messages waiting in the outbox.");
        _outboxBytes = f.CreateGauge("edgecounter_outbox_bytes", "Bytes waiting in the outbox.");
        _bytesFree = f.CreateGauge("edgecounter_state_disk_free_bytes", "Free bytes on the state directory's filesystem.");
        _storageState = f.CreateGauge("edgecounter_storage_state", "1 for the state directory's current state (ok, low, full, failing).", "state");
        _ready = f.CreateGauge("edgecounter_ready", "1 when every /readyz check is ok.");
        _readyCheck = f.CreateGauge("edgecounter_ready_check", "1 when the named /readyz check is ok.", "check");
        _sessionCells = f.CreateGauge("edgecounter_session_cells", "Cells counted in the open session, per label.", "label");
        _sessionFields = f.CreateGauge("edgecounter_session_fields", "Fields counted in the open session.");
        _sessionProgress = f.CreateGauge("edgecounter_session_progress_ratio", "White cells counted over the session's target (0..1).");
    }

    public CollectorRegistry Registry { get; }

    public void Update(StatsMessage stats, ReadinessReport readiness, CountsSnapshot session)
    {
        _fieldsProcessed.IncTo(stats.ProcessedFields);
        _fieldsSkipped.IncTo(stats.SkippedFields);
        _corruptFrames.IncTo(stats.CorruptFrames);
        _revisits.IncTo(stats.Revisits);
        _unknownPosition.IncTo(stats.UnknownPositionFields);
        _reconnects.IncTo(stats.Reconnects);
        _droppedImages.IncTo(stats.DroppedImages);
        _droppedResults.IncTo(stats.DroppedResults);
        _cameraFps.Set(stats.CameraFps);
        _inferenceMs.Set(stats.InferenceMsAverage);
        _detectorStuck.Set(stats.DetectorStuck ? 1 : 0);
        _mqttConnected.Set(stats.MqttConnected ? 1 : 0);
        _outboxMessages.Set(stats.OutboxMessages);
        _outboxBytes.Set(stats.OutboxBytes);
        if (stats.Storage?.BytesFree is { } free) _bytesFree.Set(free);
        foreach (var state in Enum.GetValues<StorageState>())
            _storageState.WithLabels(state.ToString().ToLowerInvariant()).Set(stats.Storage?.State == state ? 1 : 0);
        _ready.Set(readiness.Ready ? 1 : 0);
        foreach (var check in readiness.Checks) _readyCheck.WithLabels(check.Name).Set(check.Ok ? 1 : 0);
        foreach (var (label, count) in session.Totals) _sessionCells.WithLabels(label).Set(count);
        _sessionFields.Set(session.Fields);
        _sessionProgress.Set(session.Target > 0 ? Math.Min(1.0, (double)session.WhiteCells / session.Target) : 0);
    }
}
