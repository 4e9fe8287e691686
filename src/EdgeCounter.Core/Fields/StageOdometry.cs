using OpenCvSharp;

namespace EdgeCounter.Fields;

/// <summary>The integrated stage position when a frame was taken (frame pixels, arbitrary origin per segment).</summary>
/// <param name="X">Stage (field top-left) x, frame pixels: grows as the stage moves the field right over the slide.</param>
/// <param name="Y">Stage y, frame pixels.</param>
/// <param name="Segment">Positions compare only within one segment; a new one starts when the odometry loses track.</param>
/// <param name="Confidence">The weakest phase-correlation response of the current move (1 while still).</param>
/// <param name="Guesses">Frame pairs guessed so far (a running count): a field whose count differs from the last field's was reached by a move the odometry partly guessed.</param>
public readonly record struct OdometryReading(double X, double Y, int Segment, double Confidence, long Guesses = 0);

/// <summary>
/// Stage odometry: the displacement between consecutive frames by phase correlation (OpenCV, Hanning window) of the
/// small grey copies the frame scorer makes, high-pass filtered so vignetting and uneven light (which do not move
/// with the slide) do not pull the estimate to zero; integrated into a stage position. The correlation's response
/// is the confidence: a frame pair below <see cref="MinResponse"/> (a jump, a blank field, heavy blur) ends the
/// segment, so a field after it has an unknown position until it is registered again. Pure computation on the
/// frames given; not thread-safe (one capture loop owns one odometry).
/// </summary>
public sealed class StageOdometry : IDisposable
{
    /// <summary>Below this phase-correlation response a frame pair is not trusted (measured on simulator runs).</summary>
    public const double MinResponse = 0.05;

    /// <summary>Largest change of the per-frame shift from one frame pair to the next, as a fraction of the frame width.</summary>
    public const double MaxSpeedChange = 0.2;

    private Mat? _previous, _current, _window, _blur, _bytes;
    private readonly Mat _refineWindow = new(); // reused by every verification (several per moving frame)
    private double _x, _y, _confidence = 1;
    private Point2d _velocity, _lastVelocity; // the last two frame pairs' shifts, grey pixels
    private int _guessesInARow;

    /// <summary>After this many frame pairs in a row without a trusted estimate the odometry starts a new segment.</summary>
    public const int MaxGuessesInARow = 3;

    /// <summary>Frame pairs so far whose shift was guessed (no estimate held); a field after one is placed with a wider search.</summary>
    public long Guesses { get; private set; }
    private int _segment;

    public OdometryReading Current => new(_x, _y, _segment, _confidence, Guesses);

    /// <summary>
    /// Adds one frame. <paramref name="grey"/> is the scorer's small grey copy (width x height), <paramref name="scale"/>
    /// frame pixels per grey pixel; <paramref name="still"/>: the field stage judged the frame still (no motion above
    /// threshold), so a weak response then is not a loss of track.
    /// </summary>
    public OdometryReading Update(ReadOnlySpan<byte> grey, int width, int height, double scale, bool still)
    {
        if (grey.Length < width * height || width < 16 || height < 16) throw new ArgumentException("grey image too small", nameof(grey));
        Prepare(grey, width, height);
        if (_previous is null || _previous.Size() != _current!.Size())
        {
            (_previous, _current) = (_current, _previous);
            return Current;
        }
        _window ??= new Mat();
        if (_window.Empty() || _window.Size() != _current.Size()) Cv2.CreateHanningWindow(_window, _current.Size(), MatType.CV_32FC1);
        // OpenCV windows both inputs in place when they are a DFT size (the scorer's 160x120 is one), so a frame is
        // correlated windowed once as the current frame and twice as the previous one, and verification sees
        // windowed frames. The thresholds here were measured that way; windowing each once (PhaseCorrelator, as the
        // registrar must, its remembered fields may not change) measured worse: simcheck seed 2 at overlap 0.1,
        // odometry error 6 -> 37 px. The buffers are the odometry's own, so nothing outside sees the change.
        var shift = Cv2.PhaseCorrelate(_previous, _current, _window, out var response);
        if (still && (response < MinResponse || Math.Abs(shift.X) < 0.5 && Math.Abs(shift.Y) < 0.5))
        {
            // The stage rests: no travel.
            shift = default;
            _velocity = _lastVelocity = default;
            _guessesInARow = 0;
            _confidence = 1;
        }
        else
        {
            // A fast move shifts the frame by a large part of itself, and a smear is a near-regular carpet of red
            // cells, so the direct estimate can pick a wrong peak. Candidates (the direct estimate, the last shift,
            // the shift at constant acceleration) are each verified by correlating the parts the frames share if it
            // were right (a right one leaves almost no remainder); the stage's speed changes smoothly, so of the
            // verified ones the nearest to constant acceleration wins, within MaxSpeedChange of the last shift.
            var bound = MaxSpeedChange * _current.Cols;
            var expected = new Point2d(2 * _velocity.X - _lastVelocity.X, 2 * _velocity.Y - _lastVelocity.Y);
            var moving = _velocity != default;
            (Point2d Shift, double Response)? best = null;
            foreach (var candidate in moving ? new[] { shift, _velocity, expected } : [shift])
            {
                if (Verified(candidate) is not { } v) continue;
                if (moving && Distance(v.Shift, _velocity) > bound) continue;
                if (best is null || Distance(v.Shift, expected) < Distance(best.Value.Shift, expected)) best = v;
            }
            if (best is { } b) (shift, response) = b;
            else if (response >= MinResponse && (!moving || Distance(shift, _velocity) <= bound) && Math.Abs(shift.X) < 2 && Math.Abs(shift.Y) < 2)
            {
                // A small shift needs no verification.
            }
            else
            {
                // No estimate holds: assume the stage kept accelerating as it did (a guess, flagged), and give up on
                // the segment after a few guesses in a row.
                shift = expected;
                response = 0;
                Guesses++;
                if (++_guessesInARow > MaxGuessesInARow)
                {
                    _segment++;
                    _guessesInARow = 0;
                    shift = default;
                }
            }
            if (response > 0) _guessesInARow = 0;
            _lastVelocity = _velocity;
            _velocity = shift;
            _confidence = Math.Min(_confidence, response);
        }
        // Image content moves opposite to the stage.
        _x -= shift.X * scale;
        _y -= shift.Y * scale;
        (_previous, _current) = (_current, _previous);
        return Current;
    }

    private static double Distance(Point2d a, Point2d b) => Math.Sqrt((a.X - b.X) * (a.X - b.X) + (a.Y - b.Y) * (a.Y - b.Y));

    /// <summary>The candidate shift refined on the overlapping parts, if that leaves only a small remainder.</summary>
    private (Point2d Shift, double Response)? Verified(Point2d candidate)
    {
        if (Refined(candidate) is not { } first || first.Response < MinResponse) return null;
        // Refine once more from the refined shift: a true shift is a fixed point.
        if (Distance(first.Shift, candidate) > 1.5 && Refined(first.Shift) is { } second && Distance(second.Shift, first.Shift) <= 1.5) return second;
        return Distance(first.Shift, candidate) <= 1.5 ? first : null;
    }

    private (Point2d Shift, double Response)? Refined(Point2d velocity)
    {
        int dx = (int)Math.Round(velocity.X), dy = (int)Math.Round(velocity.Y);
        int w = _current!.Cols - Math.Abs(dx), h = _current.Rows - Math.Abs(dy);
        if (w < 24 || h < 24) return null;
        // Content at (x, y) in the previous frame is at (x + dx, y + dy) in the current one.
        using var a = new Mat(_previous!, new Rect(Math.Max(0, -dx), Math.Max(0, -dy), w, h));
        using var b = new Mat(_current, new Rect(Math.Max(0, dx), Math.Max(0, dy), w, h));
        Cv2.CreateHanningWindow(_refineWindow, new Size(w, h), MatType.CV_32FC1);
        var rest = Cv2.PhaseCorrelate(a, b, _refineWindow, out var response);
        return (new Point2d(dx + rest.X, dy + rest.Y), response);
    }

    /// <summary>Forget the previous frame (the source reopened): the next frame starts a new segment.</summary>
    public void Reset()
    {
        _previous?.Dispose();
        _previous = null;
        _velocity = _lastVelocity = default;
        _segment++;
        _confidence = 0;
    }

    private unsafe void Prepare(ReadOnlySpan<byte> grey, int width, int height)
    {
        _bytes ??= new Mat();
        _bytes.Create(height, width, MatType.CV_8UC1);
        fixed (byte* p = grey)
            for (var y = 0; y < height; y++)
                new ReadOnlySpan<byte>(p + y * width, width).CopyTo(new Span<byte>((byte*)_bytes.Ptr(y), width));
        _current ??= new Mat();
        _bytes.ConvertTo(_current, MatType.CV_32FC1);
        _blur ??= new Mat();
        // High-pass: cells and their edges stay, the lamp's fall-off and the smear's slow density changes go.
        Cv2.GaussianBlur(_current, _blur, new Size(0, 0), Math.Max(2.0, width / 32.0));
        Cv2.Subtract(_current, _blur, _current);
    }

    public void Dispose()
    {
        _previous?.Dispose();
        _current?.Dispose();
        _window?.Dispose();
        _blur?.Dispose();
        _bytes?.Dispose();
        _refineWindow.Dispose();
    }
}
