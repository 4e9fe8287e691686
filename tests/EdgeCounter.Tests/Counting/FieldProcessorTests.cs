using EdgeCounter.Counting;
using EdgeCounter.Detection;
using EdgeCounter.Fields;
using OpenCvSharp;
using static EdgeCounter.Tests.Counting.CountingTestData;

namespace EdgeCounter.Tests.Counting;

public sealed class FieldProcessorTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgecounter-processor-").FullName;
    private readonly CountingService _counting;
    private readonly FakeDetector _detector = new();
    private readonly RecordingSink _sink = new();
    private readonly FieldProcessor _processor;

    public FieldProcessorTests()
    {
        _counting = new CountingService(Catalog(), new CountingOptions { DefaultTarget = 100 }, new SessionStore(_dir));
        _processor = new FieldProcessor(_detector, _counting, new FieldOptions(), "edgecounter/test/session/set", [_sink]);
    }

    public void Dispose()
    {
        _processor.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void A_field_is_detected_counted_and_handed_to_the_sink_and_the_same_field_again_is_a_revisit()
    {
        var started = 0;
        _processor.DetectionStarted += () => started++;
        using var field = NoiseField(1);

        var counted = _processor.Process(field);
        Assert.Equal(FieldFate.Counted, counted.Fate);
        Assert.True(counted.Count!.Accepted);
        Assert.Equal(3, counted.Count.Tally!.Counts.Values.Sum());
        Assert.All(counted.Marks!, m => Assert.Equal(new DetectionMark(false, counted.Count.Tally.FieldId), m with { CellId = 0 }));
        // Each new cell has its own id, in detection order from the field's first.
        Assert.Equal(Enumerable.Range(0, counted.Marks!.Count).Select(i => counted.Count.Tally.FirstCellId + i), counted.Marks!.Select(m => m.CellId));

        var again = _processor.Process(field);
        Assert.Equal(FieldFate.Revisit, again.Fate);
        Assert.True(again.Revisit);
        Assert.Null(again.Detection);
        Assert.Equal(1, _detector.Calls);
        Assert.Equal(1, started);
        Assert.Equal([counted, again], _sink.Outcomes);
        Assert.Equal(1, _counting.Snapshot().Fields);
    }

    [Fact]
    public void After_a_restart_the_first_field_of_the_continued_session_has_an_unknown_position_and_the_next_is_placed_against_it()
    {
        using var first = NoiseField(5);
        Assert.True(_processor.Process(first).Placement!.Known); // a new session's first field: the origin of its map
        // The service restarts: a new processor over the same, restored session.
        using var restarted = new FieldProcessor(_detector, new CountingService(Catalog(), new CountingOptions { DefaultTarget = 100 }, new SessionStore(_dir)),
            new FieldOptions(), "edgecounter/test/session/set", [_sink]);
        using var second = NoiseField(6);
        var after = restarted.Process(second);
        Assert.Equal(FieldFate.Counted, after.Fate);
        Assert.Equal(2, after.Count!.Tally!.FieldId);
        Assert.False(after.Placement!.Known); // the cells of field 1 are not in this process's memory: said so
        // The same field again is a revisit of the field counted after the restart, as always.
        Assert.Equal(FieldFate.Revisit, restarted.Process(second).Fate);
    }

    [Fact]
    public void A_failing_detector_counts_nothing()
    {
        _detector.Fail = true;
        using var field = NoiseField(2);
        var outcome = _processor.Process(field);
        Assert.Equal(FieldFate.DetectionFailed, outcome.Fate);
        Assert.Null(outcome.Count);
        Assert.Equal(0, _counting.Snapshot().Fields);
        Assert.Single(_sink.Outcomes);
    }

    [Fact]
    public void Without_a_running_session_a_field_is_not_counted_nor_detected()
    {
        _counting.Apply(new SessionCommand(SessionAction.Stop));
        using var field = NoiseField(3);
        var outcome = _processor.Process(field);
        Assert.Equal(FieldFate.NotCounted, outcome.Fate);
        Assert.Null(outcome.Count);
        Assert.Null(outcome.Placement);
        Assert.Equal(0, _detector.Calls);
    }

    [Fact]
    public void A_keeping_sinks_result_is_saved_in_the_same_session_write_as_the_count_before_any_sink_sees_the_field()
    {
        // A power cut between the session save and the outbox write must not leave a counted field unpublished.
        var store = new SessionStore(Path.Combine(_dir, "kept"));
        var counting = new CountingService(Catalog(), new CountingOptions { DefaultTarget = 100 }, store);
        var keeper = new KeepingSink(store);
        using var processor = new FieldProcessor(_detector, counting, new FieldOptions(), "edgecounter/test/session/set", [keeper]);
        using var field = NoiseField(4);

        var outcome = processor.Process(field);

        Assert.Equal(FieldFate.Counted, outcome.Fate);
        Assert.Equal([(0L, "kept"), (1L, "accepted")], keeper.Calls.Select(c => (c.FieldsOnDisk, c.Call)));
        Assert.Same(outcome, keeper.Kept);
        var saved = store.Load()!;
        Assert.Equal((1L, "field 1 of " + saved.SessionId), (saved.Fields, saved.LastFieldResult));
        Assert.Equal(saved.LastFieldResult, new CountingService(Catalog(), new CountingOptions { DefaultTarget = 100 }, store).LastFieldResult);
    }

    private sealed class KeepingSink(SessionStore store) : IFieldOutcomeSink, IFieldResultKeeper
    {
        public List<(string Call, long FieldsOnDisk)> Calls { get; } = [];
        public FieldOutcome? Kept { get; private set; }

        public string ResultToKeep(FieldOutcome counted)
        {
            Calls.Add(("kept", store.Load()!.Fields));
            Kept = counted;
            return $"field {counted.Count!.Tally!.FieldId} of {counted.Count.Tally.SessionId}";
        }

        public void Accept(FieldOutcome outcome) => Calls.Add(("accepted", store.Load()!.Fields));
    }

    private static StableField NoiseField(int seed)
    {
        var pixels = new byte[240 * 320 * 3];
        new Random(seed).NextBytes(pixels);
        var image = new Mat(240, 320, MatType.CV_8UC3);
        System.Runtime.InteropServices.Marshal.Copy(pixels, 0, image.Data, pixels.Length); // a fresh Mat is continuous
        return new StableField(image, seed, DateTimeOffset.UnixEpoch, new FrameScore(0.1, 100));
    }

    private sealed class RecordingSink : IFieldOutcomeSink
    {
        public List<FieldOutcome> Outcomes { get; } = [];
        public void Accept(FieldOutcome outcome) => Outcomes.Add(outcome);
    }

    private sealed class FakeDetector : ICellDetector
    {
        public int Calls { get; private set; }
        public bool Fail { get; set; }
        public ModelInfo Model { get; } = CountingTestData.Model();
        public string ExecutionProvider => "CPU";
        public PixelScaleStatus PixelScale { get; } = new(1, null, PixelScaleSource.Model);

        public DetectionResult Detect(Mat bgrImage)
        {
            Calls++;
            if (Fail) throw new InvalidOperationException("detector broke");
            return new DetectionResult(Field(("neutrophil", 1), ("RBC", 2)), 1, 2, 3);
        }

        public void Dispose() { }
    }
}
