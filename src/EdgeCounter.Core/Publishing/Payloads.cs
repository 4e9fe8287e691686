using EdgeCounter.Detection;
using EdgeCounter.Storage;

namespace EdgeCounter.Publishing;

/// <summary>One detection on P/field. Box = [x1, y1, x2, y2] in frame pixels.</summary>
/// <param name="Status"><c>new</c> (counted in this field) or <c>alreadyCounted</c> (the same cell was counted in an earlier field).</param>
/// <param name="CountedInField">The field id the cell is counted in (this field's id when new).</param>
public sealed record DetectionPayload(string Label, string Class, double Score, float[] Box, string Status = DetectionPayload.New, long CountedInField = 0)
{
    public const string New = "new";
    public const string AlreadyCounted = "alreadyCounted";

    /// <summary>The session's id of the cell (review commands name it): unique in the session; an alreadyCounted
    /// detection has the id of the cell counted earlier. 0 only past the ledger's bound.</summary>
    public long CellId { get; init; }

    /// <summary>Only on a new detection whose cell an earlier field counted cut by its edge: that count moves here, where
    /// the cell is whole (that field's <c>label</c> is taken off the totals, this one's added); absent otherwise.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public MovedFromPayload? MovedFrom { get; init; }

    public static DetectionPayload From(Detection.Detection d) => new(
        d.Label, d.Class, Math.Round(d.Score, 3),
        [MathF.Round(d.Box.X1, 1), MathF.Round(d.Box.Y1, 1), MathF.Round(d.Box.X2, 1), MathF.Round(d.Box.Y2, 1)]);

    public static DetectionPayload From(Detection.Detection d, Counting.DetectionMark mark, long fieldId) => From(d) with
    {
        Status = mark.AlreadyCounted ? AlreadyCounted : New,
        CountedInField = mark.AlreadyCounted ? mark.CountedInField : fieldId,
        CellId = mark.CellId,
        MovedFrom = mark.Moved ? new MovedFromPayload(mark.MovedFrom, mark.MovedFromLabel!) : null,
    };
}

/// <summary>Where a moved count was: the earlier field and the label it was counted under there.</summary>
public sealed record MovedFromPayload(long FieldId, string Label);

/// <summary>The field's place on the slide in P/field: top-left in frame pixels, within a map segment
/// (positions compare within one segment). <c>anchored</c>: registered against an earlier field, not odometry alone.</summary>
public sealed record PositionPayload(double X, double Y, int Segment, bool Anchored, double Confidence)
{
    /// <summary>The object, or the string "unknown" when the field could not be placed.</summary>
    public static object From(Fields.FieldPlacement? p) => p is { Known: true }
        ? new PositionPayload(Math.Round(p.X, 1), Math.Round(p.Y, 1), p.Segment, p.Anchored, Math.Round(p.Confidence, 3))
        : "unknown";
}

public sealed record ModelPayload(string Name, string Version);

/// <summary>P/field: one counted field. (sessionId, fieldId) identifies it; drop repeats by that pair.</summary>
/// <param name="FocusScore">Sharpness measure of the field's frame (higher is sharper), as computed by the field detector.</param>
/// <param name="MotionScore">Frame-to-frame change when the field was taken (lower is stiller).</param>
public sealed record FieldMessage(
    string SessionId,
    string SampleId,
    long FieldId,
    DateTimeOffset CapturedAt,
    IReadOnlyList<DetectionPayload> Detections,
    IReadOnlyDictionary<string, int> Counts,
    double FocusScore,
    double MotionScore,
    double InferenceMs,
    ModelPayload Model,
    string ExecutionProvider)
{
    /// <summary>Slide position: a <see cref="PositionPayload"/> or the string "unknown".</summary>
    public object Position { get; init; } = "unknown";

    /// <summary>Detections of this field not counted because their cell was counted in an earlier field.</summary>
    public int AlreadyCounted { get; init; }

    /// <summary>New detections of cells an earlier field counted cut by its edge: their counts moved here (see
    /// <see cref="DetectionPayload.MovedFrom"/>); <c>counts</c> already nets them out.</summary>
    public int Moved { get; init; }

    /// <summary>The camera frame's size: the pixels of every <c>box</c>.</summary>
    public int FrameWidth { get; init; }

    public int FrameHeight { get; init; }

    /// <summary>Where this field's annotated JPEG is published (retained, the latest field's); null when images are not published.</summary>
    public string? ImageTopic { get; init; }
}

/// <summary>P/session/correction: one audit-trail entry of a session.</summary>
public sealed record CorrectionMessage(string SessionId, Counting.CellCorrection Correction);

/// <summary>P/session/error: why a command changed nothing. Raw is the received text, truncated.</summary>
public sealed record SessionErrorMessage(string Error, string Raw, DateTimeOffset At)
{
    public const int MaxRawChars = 256;

    public static SessionErrorMessage Create(string error, ReadOnlySpan<byte> raw, DateTimeOffset at)
    {
        var slice = raw.Length > MaxRawChars * 4 ? raw[..(MaxRawChars * 4)] : raw;
        var text = System.Text.Encoding.UTF8.GetString(slice);
        if (text.Length > MaxRawChars || raw.Length > slice.Length) text = text[..Math.Min(text.Length, MaxRawChars)] + "…";
        return new SessionErrorMessage(error, text, at);
    }
}

/// <summary>What the frame pipeline knows about its own throughput, for P/stats.</summary>
/// <param name="InferenceMsAverage">Moving average of the detector's inference time.</param>
public sealed record PipelineStats(
    double CameraFps,
    long ProcessedFields,
    long SkippedFields,
    double InferenceMsAverage,
    string ExecutionProvider,
    TimeSpan Uptime,
    string Source = "",
    string SourceState = "",
    string? SourceError = null,
    long DroppedFields = 0,
    long Revisits = 0,
    double WorkingSetMb = 0,
    double ManagedHeapMb = 0,
    double DetectorBusySeconds = 0,
    bool DetectorStuck = false,
    long CorruptFrames = 0,
    PixelScaleStatus? PixelScale = null,
    long UnknownPositionFields = 0,
    double GcCommittedMb = 0);

/// <summary>The pixel scale in P/stats: <c>source</c> model | configured | estimating | estimated.</summary>
/// <param name="InputScale">Frame pixels × this = model pixels.</param>
/// <param name="MicrometresPerPixel">The camera pixel size that implies, or null when the model does not state its own.</param>
/// <param name="RedCells">Red cells the estimate rests on.</param>
/// <param name="Estimations">Estimates locked so far (more than one: the red cells' size drifted, e.g. another objective).</param>
public sealed record PixelScalePayload(string Source, double InputScale, double? MicrometresPerPixel, int RedCells, int Estimations)
{
    public static PixelScalePayload From(PixelScaleStatus s) => new(
        s.Source.ToString().ToLowerInvariant(), Math.Round(s.InputScale, 4),
        s.MicrometresPerPixel is { } m ? Math.Round(m, 5) : null, s.RedCells, s.Estimations);
}

/// <summary>The publisher's own figures.</summary>
public sealed record PublisherStats(
    ConnectionState Connection,
    long Reconnects,
    int OutboxMessages,
    long OutboxBytes,
    long DroppedImages,
    long DroppedResults,
    long Published,
    StoragePayload? Storage = null);

/// <summary>P/stats <c>storage</c>: how the state directory takes writes.</summary>
/// <param name="State"><c>ok</c>, <c>low</c> (free space below the reserve: images not kept on disk), <c>full</c> (a write
/// refused for lack of space) or <c>failing</c> (a write failed otherwise).</param>
/// <param name="BytesFree">Free bytes on its filesystem; null when it cannot be measured.</param>
/// <param name="PendingInMemory">Outbox messages only memory holds (the disk refused them, or images below the reserve).</param>
/// <param name="Dropped">Messages dropped from that in-memory queue at its bound (also in droppedImages/droppedResults).</param>
public sealed record StoragePayload(StorageState State, long? BytesFree, long ReserveBytes, int PendingInMemory, long Dropped);

/// <summary>P/stats payload.</summary>
public sealed record StatsMessage(
    DateTimeOffset At,
    double CameraFps,
    long ProcessedFields,
    long SkippedFields,
    double InferenceMsAverage,
    string ExecutionProvider,
    double UptimeSeconds,
    bool MqttConnected,
    long Reconnects,
    int OutboxMessages,
    long OutboxBytes,
    long DroppedImages,
    long DroppedResults,
    string Source,
    string SourceState,
    string? SourceError,
    long DroppedFields,
    long Revisits,
    double WorkingSetMb,
    double ManagedHeapMb,
    double DetectorBusySeconds,
    bool DetectorStuck,
    long CorruptFrames,
    PixelScalePayload? PixelScale,
    long UnknownPositionFields = 0,
    StoragePayload? Storage = null,
    double GcCommittedMb = 0)
{
    public static StatsMessage Create(PipelineStats pipeline, PublisherStats publisher, DateTimeOffset at) => new(
        at, Math.Round(pipeline.CameraFps, 2), pipeline.ProcessedFields, pipeline.SkippedFields,
        Math.Round(pipeline.InferenceMsAverage, 2), pipeline.ExecutionProvider, Math.Round(pipeline.Uptime.TotalSeconds, 1),
        publisher.Connection == ConnectionState.Connected, publisher.Reconnects, publisher.OutboxMessages, publisher.OutboxBytes,
        publisher.DroppedImages, publisher.DroppedResults,
        pipeline.Source, pipeline.SourceState, pipeline.SourceError, pipeline.DroppedFields, pipeline.Revisits,
        Math.Round(pipeline.WorkingSetMb, 1), Math.Round(pipeline.ManagedHeapMb, 1),
        Math.Round(pipeline.DetectorBusySeconds, 1), pipeline.DetectorStuck, pipeline.CorruptFrames,
        pipeline.PixelScale is { } scale ? PixelScalePayload.From(scale) : null, pipeline.UnknownPositionFields, publisher.Storage,
        Math.Round(pipeline.GcCommittedMb, 1));
}

public enum ConnectionState
{
    Disconnected,
    Connecting,
    Connected,
    Stopped,
}
