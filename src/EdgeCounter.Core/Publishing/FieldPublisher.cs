using EdgeCounter.Counting;
using EdgeCounter.Detection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using System.Text;
using OpenCvSharp;

namespace EdgeCounter.Publishing;

/// <summary>Publishing as a sink of field outcomes: for each counted field it queues what the broker should get, in
/// this order: the field result, the new totals (and the session state when this field completed the session), the
/// slide map and the annotated image. Other fates publish nothing. Runs on the caller's thread (annotating and
/// encoding the images included). The field result is also kept with the session's count (<see cref="IFieldResultKeeper"/>):
/// a power cut between the two writes does not leave a counted field unpublished, see <see cref="PublishKeptFieldResult"/>.</summary>
public sealed class FieldPublisher : IFieldOutcomeSink, IFieldResultKeeper
{
    private readonly MqttPublisher _publisher;
    private readonly ModelPayload _model;
    private readonly string _executionProvider;
    private readonly FieldAnnotator _annotator;
    private readonly MqttOptions _options;
    private readonly ILogger _logger;
    private readonly SlideMap _map = new();
    private readonly SlideMapStore? _mapStore;
    private string? _mapSession;
    private (FieldOutcome Outcome, byte[] Payload)? _kept; // the result kept with the count, published as it was kept

    private volatile byte[]? _latestImage;

    /// <summary>The last counted field's annotated JPEG, as published on P/field/image (null before the first, or when
    /// images are not published). Read by /latest.jpg from another thread.</summary>
    public byte[]? LatestImage { get => _latestImage; private set => _latestImage = value; }

    /// <param name="mapStore">Where the session's slide map is kept (state directory, whose failed writes go to the
    /// publisher's storage monitor); null = not kept.</param>
    public FieldPublisher(MqttPublisher publisher, MqttOptions options, ModelInfo model, string executionProvider, ILogger<FieldPublisher>? logger = null,
        SlideMapStore? mapStore = null)
    {
        _mapStore = mapStore;
        _publisher = publisher ?? throw new ArgumentNullException(nameof(publisher));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrWhiteSpace(executionProvider);
        _model = new ModelPayload(model.Name, model.Version);
        _executionProvider = executionProvider;
        _annotator = new FieldAnnotator(model.Labels);
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    public string ResultToKeep(FieldOutcome counted)
    {
        var payload = PublishingJson.Serialize(FieldMessageOf(counted));
        _kept = (counted, payload);
        return Encoding.UTF8.GetString(payload);
    }

    /// <summary>At start: the result kept with the last count, queued again. The process may have stopped after the
    /// count was saved and before this result reached the outbox; if it had, subscribers get the same message twice.</summary>
    public void PublishKeptFieldResult(string? keptResult)
    {
        if (keptResult is not null) _publisher.EnqueueField(Encoding.UTF8.GetBytes(keptResult));
    }

    public void Accept(FieldOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        if (outcome.Fate != FieldFate.Counted) return;
        var result = outcome.Count ?? throw new ArgumentException("a counted field has a count", nameof(outcome));
        _publisher.EnqueueField(_kept is { } kept && ReferenceEquals(kept.Outcome, outcome) ? kept.Payload : PublishingJson.Serialize(FieldMessageOf(outcome)));
        _kept = null;
        _publisher.EnqueueCounts(result.Counts);
        if (result.CompletedNow) _publisher.EnqueueSessionState(result.Counts);
        PublishImages(outcome);
    }

    private FieldMessage FieldMessageOf(FieldOutcome outcome)
    {
        var field = outcome.Field;
        var detection = outcome.Detection ?? throw new ArgumentException("a counted field has a detection", nameof(outcome));
        var result = outcome.Count ?? throw new ArgumentException("a counted field has a count", nameof(outcome));
        var detections = detection.Detections;
        var marks = outcome.Marks;
        if (marks is not null && marks.Count != detections.Count) throw new ArgumentException("one mark per detection", nameof(outcome));
        var alreadyCounted = marks?.Count(m => m.AlreadyCounted) ?? 0;

        var tally = result.Tally!;
        return new FieldMessage(
            tally.SessionId, result.Counts.SampleId, tally.FieldId, field.CapturedAt,
            detections.Select((d, i) => marks is null ? DetectionPayload.From(d) with { CountedInField = tally.FieldId, CellId = tally.FirstCellId + i } : DetectionPayload.From(d, marks[i], tally.FieldId)).ToArray(),
            tally.Counts, Math.Round(field.Score.Focus, 3), Math.Round(field.Score.Motion, 3), Math.Round(detection.InferenceMs, 2),
            _model, _executionProvider)
        {
            Position = PositionPayload.From(outcome.Placement),
            AlreadyCounted = alreadyCounted,
            Moved = marks?.Count(m => m.Moved) ?? 0,
            FrameWidth = field.Image.Cols,
            FrameHeight = field.Image.Rows,
            ImageTopic = _options.PublishImages ? _publisher.Topics.FieldImage : null,
        };
    }

    private void PublishImages(FieldOutcome outcome)
    {
        var (field, result, detections, marks) = (outcome.Field, outcome.Count!, outcome.Detection!.Detections, outcome.Marks);
        var tally = result.Tally!;
        if (_options.PublishImages || _mapStore is not null)
        {
            try
            {
                // The slide map belongs to the session (the slide): a new session starts a new map.
                if (_mapSession != tally.SessionId) _map.Clear();
                _mapSession = tally.SessionId;
                _map.Add(field.Image, outcome.Placement, detections, marks);
                var map = _map.RenderJpeg();
                if (_options.PublishImages && map.Length <= _options.MaxImageBytes) _publisher.EnqueueSlideImage(map);
                Keep(tally.SessionId, map);
            }
            catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or OpenCVException)
            {
                _logger.LogWarning(ex, "Slide map after field {FieldId} not published", tally.FieldId);
            }
        }
        if (_options.PublishImages)
        {
            try
            {
                var jpeg = _annotator.Picture(field.Image, detections, FieldAnnotator.HeaderFor(result.Counts, tally.FieldId), _options, marks);
                _publisher.EnqueueFieldImage(jpeg.Bytes);
                LatestImage = jpeg.Bytes;
            }
            catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or OpenCVException)
            {
                // The image is a convenience; the result above is what counts.
                _logger.LogWarning(ex, "Field {FieldId} image not published", tally.FieldId);
            }
        }
    }

    /// <summary>At start: the saved map of the session the service continues, published again (the embedded broker
    /// forgot its retained copy). Nothing when none was kept or images are not published.</summary>
    public void PublishSavedSlideMap(string sessionId)
    {
        if (_mapStore is null || !_options.PublishImages) return;
        try
        {
            if (_mapStore.Load(sessionId) is { } map && map.Length <= _options.MaxImageBytes) _publisher.EnqueueSlideImage(map);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
            _logger.LogWarning("Saved slide map of session {SessionId} not read: {Error}", sessionId, ex.Message);
        }
    }

    private const string SlideMapFile = "the slide map file";

    private void Keep(string sessionId, byte[] map)
    {
        if (_mapStore is null) return;
        // Twice the map: the new file is written beside the old one before it replaces it.
        if (!_publisher.Outbox.Storage.Affords(2L * map.Length))
        {
            _publisher.Outbox.Storage.StoodAside(SlideMapFile);
            return;
        }
        try
        {
            _mapStore.Save(sessionId, map);
            _publisher.Outbox.Storage.Succeeded(SlideMapFile);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The live map on MQTT goes on; only the copy kept with the session is behind. Logged once per episode.
            _publisher.Outbox.Storage.Failed(SlideMapFile, ex, $"the live map goes on, the copy kept with the session ({_mapStore.PathFor(sessionId)}) is behind; tried again after each field");
        }
    }
}
