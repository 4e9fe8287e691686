using System.Reactive.Subjects;
using EdgeCounter.Acquisition;
using EdgeCounter.Counting;
using EdgeCounter.Fields;
using EdgeCounter.Publishing;
using EdgeCounter.Simulation;
using EdgeCounter.Tests.Counting;
using Microsoft.Extensions.Logging.Abstractions;
using OpenCvSharp;

namespace EdgeCounter.Tests.Reliability;

/// <summary>A clock whose wall time the test steps (as NTP does when it corrects the clock) while its monotonic
/// timestamp only moves forward. FakeTimeProvider cannot step its wall clock back, so this is our own.</summary>
internal sealed class SteppingClock(DateTimeOffset start) : TimeProvider
{
    private long _elapsedTicks;
    private long _wallStepTicks;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;
    public override long GetTimestamp() => Interlocked.Read(ref _elapsedTicks);
    public override DateTimeOffset GetUtcNow() => start + TimeSpan.FromTicks(Interlocked.Read(ref _elapsedTicks) + Interlocked.Read(ref _wallStepTicks));

    public void Advance(TimeSpan by) => Interlocked.Add(ref _elapsedTicks, by.Ticks);
    public void StepWallClock(TimeSpan by) => Interlocked.Add(ref _wallStepTicks, by.Ticks);
}

/// <summary>The wall clock stepping back or forward by an hour in the middle of a session (issue 19, item 4).</summary>
public class ClockJumpTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 26, 8, 0, 0, TimeSpan.Zero);
    private static readonly FieldOptions Fields = new() { Debounce = TimeSpan.FromMilliseconds(300), MotionThreshold = 2, SharpFraction = 0.5, FocusSteadiness = 0.85 };
    private const double Still = 0.5, Moving = 10;

    /// <summary>Frames as a live camera stamps them (wall clock for capturedAt, monotonic for elapsed), 20 fps: moving
    /// 0.5 s, still 2 s, twice. Returns the indices of the frames taken as fields.</summary>
    private static List<long> TakenFrames(Action<int, SteppingClock> beforeFrame)
    {
        var clock = new SteppingClock(T0);
        var start = clock.GetTimestamp();
        var frames = new Subject<(Frame, FrameScore)>();
        var taken = new List<long>();
        using var subscription = frames.StableFields(Fields).Subscribe(f => taken.Add(f.Frame.Index));
        using var image = new Mat(8, 8, MatType.CV_8UC3, Scalar.All(0));
        for (var i = 0; i < 100; i++)
        {
            beforeFrame(i, clock);
            using var frame = new Frame(image.Clone(), i, clock.GetUtcNow(), clock.GetElapsedTime(start));
            frames.OnNext((frame, new FrameScore(i % 50 < 10 ? Moving : Still, 100)));
            clock.Advance(TimeSpan.FromMilliseconds(50));
        }
        return taken;
    }

    [Fact]
    public void Debounce_takes_each_stop_at_the_same_frame_when_the_wall_clock_steps_back_or_forward_an_hour_mid_stop()
    {
        var steady = TakenFrames((_, _) => { });
        Assert.Equal([15L, 65L], steady);

        // Back an hour while the first stop settles (frame 12), forward an hour while the second does (frame 62):
        // on wall-clock time the first would wait an hour and the second be taken without any debounce.
        var stepped = TakenFrames((i, clock) =>
        {
            if (i == 12) clock.StepWallClock(TimeSpan.FromHours(-1));
            if (i == 62) clock.StepWallClock(TimeSpan.FromHours(1));
        });
        Assert.Equal(steady, stepped);
    }

    [Fact]
    public async Task Simulated_frames_keep_their_stream_time_and_stamps_moving_forward_when_the_wall_clock_steps()
    {
        var clock = new SteppingClock(T0);
        var options = new SourceOptions { RealTime = false };
        await using var source = new SimulatedFrameSource(options, NullLogger<SimulatedFrameSource>.Instance, clock);
        await source.OpenAsync(CancellationToken.None);
        var stamps = new List<(DateTimeOffset CapturedAt, TimeSpan Elapsed)>();
        for (var i = 0; i < 9; i++)
        {
            if (i == 3) clock.StepWallClock(TimeSpan.FromHours(-1));
            if (i == 6) clock.StepWallClock(TimeSpan.FromHours(2));
            using var frame = (await source.ReadAsync(CancellationToken.None))!;
            stamps.Add((frame.CapturedAt, frame.Elapsed));
        }

        var interval = TimeSpan.FromTicks(TimeSpan.TicksPerSecond / 15);
        Assert.Equal(Enumerable.Range(0, 9).Select(i => interval * i), stamps.Select(s => s.Elapsed));
        Assert.Equal(Enumerable.Range(0, 9).Select(i => T0 + interval * i), stamps.Select(s => s.CapturedAt));
    }

    [Fact]
    public void Session_ids_stay_unique_when_the_wall_clock_steps_back_to_the_same_second()
    {
        var clock = new SteppingClock(T0);
        var dir = Directory.CreateTempSubdirectory("edgecounter-clock-");
        try
        {
            var counting = new CountingService(CountingTestData.Catalog(), new CountingOptions(), new SessionStore(dir.FullName), clock);
            var ids = new List<string> { counting.Snapshot().SessionId };
            for (var i = 0; i < 20; i++)
            {
                // Back and forth between the same two seconds: every id's time part repeats.
                clock.StepWallClock(i % 2 == 0 ? TimeSpan.FromHours(-1) : TimeSpan.FromHours(1));
                var session = counting.Apply(new SessionCommand(i % 3 == 0 ? SessionAction.Reset : SessionAction.Start)).Counts;
                Assert.Equal(0, session.Fields);
                ids.Add(session.SessionId);
            }
            Assert.Equal(2, ids.Select(id => id[..16]).Distinct().Count());
            Assert.Equal(ids.Count, ids.Distinct().Count());

            // A field counted after the step is field 1 of the new session.
            var count = counting.CountField(CountingTestData.Field(("neutrophil", 1)));
            Assert.Equal((ids[^1], 1L), (count.Tally!.SessionId, count.Tally.FieldId));
        }
        finally
        {
            dir.Delete(true);
        }
    }

    [Fact]
    public void The_outbox_replays_in_enqueue_order_across_wall_clock_steps_and_a_restart()
    {
        var clock = new SteppingClock(T0);
        var dir = Directory.CreateTempSubdirectory("edgecounter-clock-");
        var path = Path.Combine(dir.FullName, "mqtt-outbox.db");
        static OutboxMessage Message(int n) => new($"t/{n}", [(byte)n], Retain: false, OutboxKind.Result);
        try
        {
            using (var outbox = new Outbox(path, 1000, 1 << 20, clock: clock))
            {
                foreach (var (n, step) in new[] { (1, 0), (2, -1), (3, 2), (4, -1) })
                {
                    clock.StepWallClock(TimeSpan.FromHours(step));
                    clock.Advance(TimeSpan.FromSeconds(1));
                    outbox.Enqueue(Message(n));
                }
            }
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();

            clock.StepWallClock(TimeSpan.FromHours(-3));
            using (var reopened = new Outbox(path, 1000, 1 << 20, clock: clock))
            {
                reopened.Enqueue(Message(5));
                var entries = reopened.Peek(10);
                Assert.Equal(["t/1", "t/2", "t/3", "t/4", "t/5"], entries.Select(e => e.Message.Topic));
                Assert.Equal(entries.Select(e => e.Sequence).Order(), entries.Select(e => e.Sequence));
            }
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            dir.Delete(true);
        }
    }
}
