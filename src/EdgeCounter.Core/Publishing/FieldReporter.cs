using EdgeCounter.Counting;
using EdgeCounter.Detection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OpenCvSharp;

namespace EdgeCounter.Publishing;

/// <summary>A field the pipeline accepted (still and sharp) and ran the detector on.</summary>
/// <param name="Image">The field's BGR frame; the reporter only reads it (the caller still owns and disposes it).</param>
public sealed record FieldObservation(
    Mat Image,
    DetectionResult Detection,
    DateTimeOffset CapturedAt,
    double FocusScore,
    double MotionScore)
{
    /// <summary>Per detection (same order): new, or already counted in an earlier field; null = all new.</summary>
    public IReadOnlyList<DetectionMark>? Marks { get; init; }

    /// <summary>Where the field lies on the slide; null = not estimated (published as "unknown").</summary>
    public Fields.FieldPlacement? Placement { get; init; }
}

/// <summary>Counts a field and queues what the broker should get, in this order: the field result, the new totals,
/// the annotated image (and the session state when this field completed the session). The one call the pipeline
/// makes per field; it runs on the caller's thread (annotating and encoding the image included).</summary>
public sealed class FieldReporter
{
    private readonly CountingService _counting;
    private readonly MqttPublisher _publisher;
    private readonly ModelPayload _model;
    private readonly string _executionProvider;
    private readonly FieldAnnotator _annotator;
    private readonly MqttOptions _options;
    private readonly ILogger _logger;
    private readonly SlideMap _map = new();
    private string? _mapSession;

    public FieldReporter(CountingService counting, MqttPublisher publisher, MqttOptions options, ModelInfo model, string executionProvider,
        ILogger<FieldReporter>? logger = null)
    {
        _counting = counting ?? throw new ArgumentNullException(nameof(counting));
        _publisher = publisher ?? throw new ArgumentNullException(nameof(publisher));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrWhiteSpace(executionProvider);
        _model = new ModelPayload(model.Name, model.Version);
        _executionProvider = executionProvider;
        _annotator = new FieldAnnotator(model.Labels);
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>Counts the field. When the session is completed or stopped nothing is counted or sent
    /// (Accepted is false).</summary>
    public FieldCountResult Report(FieldObservation field)
    {
        ArgumentNullException.ThrowIfNull(field);
        var detections = field.Detection.Detections;
        var marks = field.Marks;
        if (marks is not null && marks.Count != detections.Count) throw new ArgumentException("one mark per detection", nameof(field));
        // Only new cells add to the totals.
        var counted = marks is null ? detections : detections.Where((_, i) => !marks[i].AlreadyCounted).ToList();
        var result = _counting.CountField(counted);
        if (!result.Accepted)
        {
            _logger.LogDebug("Field not counted: session {SessionId} is {State}", result.Counts.SessionId, result.Counts.State);
            return result;
        }

        var tally = result.Tally!;
        _publisher.EnqueueField(new FieldMessage(
            tally.SessionId, result.Counts.SampleId, tally.FieldId, field.CapturedAt,
            detections.Select((d, i) => marks is null ? DetectionPayload.From(d) with { CountedInField = tally.FieldId } : DetectionPayload.From(d, marks[i], tally.FieldId)).ToArray(),
            tally.Counts, Math.Round(field.FocusScore, 3), Math.Round(field.MotionScore, 3), Math.Round(field.Detection.InferenceMs, 2),
            _model, _executionProvider)
        {
            Position = PositionPayload.From(field.Placement),
            AlreadyCounted = detections.Count - counted.Count,
        });
        _publisher.EnqueueCounts(result.Counts);
        if (result.CompletedNow) _publisher.EnqueueSessionState(result.Counts);

        if (_options.PublishImages)
        {
            try
            {
                // The slide map belongs to the session (the slide): a new session starts a new map.
                if (_mapSession != tally.SessionId) _map.Clear();
                _mapSession = tally.SessionId;
                _map.Add(field.Image, field.Placement, detections, marks);
                var map = _map.RenderJpeg();
                if (map.Length <= _options.MaxImageBytes) _publisher.EnqueueSlideImage(map);
            }
            catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or OpenCVException)
            {
                _logger.LogWarning(ex, "Slide map after field {FieldId} not published", tally.FieldId);
            }
            try
            {
                using var annotated = _annotator.Annotate(field.Image, field.Detection.Detections, FieldAnnotator.HeaderFor(result.Counts, tally.FieldId), marks);
                var jpeg = JpegBudgetEncoder.Encode(annotated, _options.MaxImageBytes);
                _publisher.EnqueueFieldImage(jpeg.Bytes);
            }
            catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or OpenCVException)
            {
                // The image is a convenience; the result above is what counts.
                _logger.LogWarning(ex, "Field {FieldId} image not published", tally.FieldId);
            }
        }
        return result;
    }
}
