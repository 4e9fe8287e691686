namespace EdgeCounter.Fields;

/// <summary>What the field stage made of one frame.</summary>
public enum FieldDecision
{
    /// <summary>The stage moves (or this is the first frame): never counted.</summary>
    Moving,
    /// <summary>Still, but not yet for the debounce time, or the focus is still settling.</summary>
    Settling,
    /// <summary>Still and steady, but much less sharp than recent fields: waiting for focus.</summary>
    Blurry,
    /// <summary>This frame is the stable field: take it.</summary>
    Take,
    /// <summary>The field of this stop was already taken; nothing more until the stage moves.</summary>
    Taken,
}

/// <summary>
/// Decides, frame by frame, when the slide has stopped and the field is sharp, and takes each stop once.
/// Pure state machine over (time, motion, focus): no I/O, no clock of its own, so it is tested in virtual time. Its
/// time is elapsed time that only goes forward (never the wall clock, which NTP steps).
/// </summary>
public sealed class StableFieldDetector(FieldOptions options)
{
    private readonly Queue<(TimeSpan Time, double Focus)> _window = new();
    private TimeSpan? _stillSince;
    private TimeSpan? _previousTime;
    private bool _taken;
    // Recent best focus of taken fields, decaying with time so one unusually textured field does not block later ones.
    private double _referenceFocus;
    private TimeSpan _referenceTime;
    private static readonly TimeSpan ReferenceHalfLife = TimeSpan.FromMinutes(2);
    private const int MaxWindow = 1024;

    public FieldDecision Next(TimeSpan time, FrameScore score)
    {
        var previous = _previousTime;
        _previousTime = time;
        if (!(score.Motion <= options.MotionThreshold))
        {
            _stillSince = null;
            _taken = false;
            _window.Clear();
            return FieldDecision.Moving;
        }
        // Motion is measured against the previous frame: no change means the stage was already still when that
        // frame was taken, so stillness started then, one frame interval earlier than this frame.
        _stillSince ??= previous ?? time;
        if (_taken) return FieldDecision.Taken;

        _window.Enqueue((time, score.Focus));
        while (_window.Count > MaxWindow || (_window.Count > 1 && time - _window.Peek().Time > options.Debounce))
            _window.Dequeue();

        if (time - _stillSince.Value < options.Debounce) return FieldDecision.Settling;

        double min = double.MaxValue, max = 0;
        foreach (var (_, focus) in _window)
        {
            min = Math.Min(min, focus);
            max = Math.Max(max, focus);
        }
        if (max > 0 && min / max < options.FocusSteadiness) return FieldDecision.Settling;
        var reference = ReferenceFocusAt(time);
        if (score.Focus < options.SharpFraction * reference) return FieldDecision.Blurry;

        _taken = true;
        if (score.Focus >= reference)
        {
            _referenceFocus = score.Focus;
            _referenceTime = time;
        }
        return FieldDecision.Take;
    }

    private double ReferenceFocusAt(TimeSpan time)
    {
        if (_referenceFocus <= 0) return 0;
        var age = Math.Max(0, (time - _referenceTime).TotalSeconds);
        return _referenceFocus * Math.Pow(0.5, age / ReferenceHalfLife.TotalSeconds);
    }
}
