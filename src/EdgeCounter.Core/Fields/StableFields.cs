using System.Reactive.Linq;
using EdgeCounter.Acquisition;

namespace EdgeCounter.Fields;

/// <summary>A frame with its scores and what the field stage decided about it (a struct: one per frame, no garbage).</summary>
public readonly record struct ScoredFrame(Frame Frame, FrameScore Score, FieldDecision Decision);

public static class StableFieldsExtensions
{
    /// <summary>
    /// Rx operator: decides for each (frame, score) whether it is the stable field of a stop. Frames are judged on
    /// their own elapsed time (the stream's clock for recorded or simulated streams, so they debounce exactly as a
    /// live camera does; the monotonic clock for a camera, so a wall-clock step does not stretch or skip a debounce).
    /// Emits every frame with its decision; filter on <see cref="FieldDecision.Take"/> for the fields.
    /// Subscribers must not keep the Frame beyond OnNext: the producer disposes it (clone what you keep).
    /// </summary>
    public static IObservable<ScoredFrame> DecideFields(this IObservable<(Frame Frame, FrameScore Score)> frames, FieldOptions options) =>
        Observable.Defer(() =>
        {
            var detector = new StableFieldDetector(options);
            return frames.Select(f => new ScoredFrame(f.Frame, f.Score, detector.Next(f.Frame.Elapsed, f.Score)));
        });

    /// <summary>Only the frames to count: one per stop, taken once the stage is still and the image sharp.</summary>
    public static IObservable<ScoredFrame> StableFields(this IObservable<(Frame Frame, FrameScore Score)> frames, FieldOptions options) =>
        frames.DecideFields(options).Where(f => f.Decision == FieldDecision.Take);
}
