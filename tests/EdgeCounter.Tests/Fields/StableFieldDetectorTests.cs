using System.Reactive.Linq;
using System.Reactive.Subjects;
using EdgeCounter.Acquisition;
using EdgeCounter.Fields;
using System.Reactive.Concurrency;
using OpenCvSharp;

namespace EdgeCounter.Tests.Fields;

public class StableFieldDetectorTests
{
    private static readonly FieldOptions Options = new() { Debounce = TimeSpan.FromMilliseconds(300), MotionThreshold = 2, SharpFraction = 0.5, FocusSteadiness = 0.85 };
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Start = TimeSpan.FromSeconds(10);
    private const double Still = 0.5, Moving = 10;

    /// <summary>Feeds frames at 20 fps (exact 50 ms steps): each segment is (seconds, motion, focus).</summary>
    private static List<FieldDecision> Run(StableFieldDetector detector, params (double Seconds, double Motion, double Focus)[] segments)
    {
        var decisions = new List<FieldDecision>();
        var t = Start;
        var step = TimeSpan.FromMilliseconds(50);
        foreach (var (seconds, motion, focus) in segments)
        {
            var frames = (int)Math.Round(seconds * 20);
            for (var i = 0; i < frames; i++, t += step) decisions.Add(detector.Next(t, new FrameScore(motion, focus)));
        }
        return decisions;
    }

    [Fact]
    public void A_stop_is_taken_once_after_the_debounce_time_and_not_before()
    {
        var decisions = Run(new StableFieldDetector(Options), (0.5, Moving, 100), (2.0, Still, 100));
        Assert.Equal(1, decisions.Count(d => d == FieldDecision.Take));
        var take = decisions.IndexOf(FieldDecision.Take);
        // 10 moving frames; the first still frame (index 10) shows no change from frame 9, so the stage has been
        // still since frame 9 and 300 ms (6 intervals) later is frame 15.
        Assert.Equal(10 + 5, take);
        Assert.All(decisions.Take(10), d => Assert.Equal(FieldDecision.Moving, d));
        Assert.All(decisions.Skip(take + 1), d => Assert.Equal(FieldDecision.Taken, d));
    }

    [Fact]
    public void Each_stop_between_moves_is_taken_once()
    {
        var decisions = Run(new StableFieldDetector(Options),
            (0.3, Moving, 100), (1, Still, 100), (0.3, Moving, 100), (1, Still, 120), (0.3, Moving, 100), (1, Still, 90));
        Assert.Equal(3, decisions.Count(d => d == FieldDecision.Take));
    }

    [Fact]
    public void A_pause_shorter_than_the_debounce_time_is_not_a_field()
    {
        var decisions = Run(new StableFieldDetector(Options), (0.3, Moving, 100), (0.2, Still, 100), (0.3, Moving, 100));
        Assert.DoesNotContain(FieldDecision.Take, decisions);
    }

    [Fact]
    public void A_field_whose_focus_is_still_settling_is_taken_only_once_focus_is_steady()
    {
        var detector = new StableFieldDetector(Options);
        var decisions = new List<FieldDecision>();
        var t = Start;
        for (var i = 0; i < 10; i++, t += TimeSpan.FromMilliseconds(33)) decisions.Add(detector.Next(t, new FrameScore(Moving, 50)));
        // Focus climbs from 20 to 100 over 1 s, then holds.
        for (var i = 0; i < 60; i++, t += TimeSpan.FromMilliseconds(33))
            decisions.Add(detector.Next(t, new FrameScore(Still, Math.Min(100, 20 + 80 * i / 30.0))));
        var take = decisions.IndexOf(FieldDecision.Take);
        Assert.True(take > 10 + 30, $"taken at frame {take}, before focus settled at frame 40");
        Assert.Equal(1, decisions.Count(d => d == FieldDecision.Take));
    }

    [Fact]
    public void A_steady_but_blurred_field_is_not_taken_while_recent_fields_were_much_sharper()
    {
        var decisions = Run(new StableFieldDetector(Options), (0.3, Moving, 100), (1, Still, 100), (0.3, Moving, 100), (1, Still, 20));
        Assert.Equal(1, decisions.Count(d => d == FieldDecision.Take));
        Assert.Contains(FieldDecision.Blurry, decisions);
    }

    [Fact]
    public void Stable_fields_operator_in_virtual_time_emits_one_field_per_stop()
    {
        var scheduler = new HistoricalScheduler(T0);
        var frames = new Subject<(Frame, FrameScore)>();
        var taken = new List<(long Index, DateTimeOffset At)>();
        using var subscription = frames.StableFields(Options).Subscribe(f => taken.Add((f.Frame.Index, scheduler.Now)));
        using var image = new Mat(8, 8, MatType.CV_8UC3, Scalar.All(0));

        // Script in virtual time: moving 0-1 s, still 1-3 s, moving 3-4 s, still 4-4.2 s (too short), moving, still 5-7 s.
        static double MotionAt(double s) => s is >= 1 and < 3 or >= 4 and < 4.2 or >= 5 and < 7 ? Still : Moving;
        for (var i = 0; i < 7 * 30; i++)
        {
            var index = i;
            scheduler.ScheduleAbsolute(T0 + TimeSpan.FromSeconds(i / 30.0), () =>
            {
                using var frame = new Frame(image.Clone(), index, scheduler.Now, scheduler.Now - T0);
                frames.OnNext((frame, new FrameScore(MotionAt(index / 30.0), 100)));
            });
        }
        scheduler.Start();

        Assert.Equal(2, taken.Count);
        // Still from the last moving frame's time (just before 1 s and 5 s) plus the 300 ms debounce.
        Assert.InRange((taken[0].At - T0).TotalSeconds, 1.26, 1.31);
        Assert.InRange((taken[1].At - T0).TotalSeconds, 5.26, 5.31);
    }
}
