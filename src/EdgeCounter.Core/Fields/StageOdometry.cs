using OpenCvSharp;

namespace EdgeCounter.Fields;

/// <summary>The integrated stage position when a frame was taken (frame pixels, arbitrary origin per segment).</summary>
/// <param name="X">Stage (field top-left) x, frame pixels: grows as the stage moves the field right over the slide.</param>
/// <param name="Y">Stage y, frame pixels.</param>
/// <param name="Segment">Positions compare only within one segment; a new one starts when the odometry loses track.</param>
/// <param name="Confidence">The weakest phase-correlation response since the segment's last still frame (1 while still).</param>
public readonly record struct OdometryReading(double X, double Y, int Segment, double Confidence);

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

    private Mat? _previous, _current, _window, _blur, _bytes;
    private double _x, _y, _confidence = 1;
    private int _segment;

    public OdometryReading Current => new(_x, _y, _segment, _confidence);

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
        var shift = Cv2.PhaseCorrelate(_previous, _current, _window, out var response);
        if (still && (response < MinResponse || Math.Abs(shift.X) < 0.5 && Math.Abs(shift.Y) < 0.5))
        {
            // The stage rests: no travel, and the confidence of the move just finished is settled.
            shift = default;
            _confidence = 1;
        }
        else if (response < MinResponse)
        {
            // Lost track: what follows cannot be placed relative to what came before.
            _segment++;
            _confidence = 0;
            shift = default;
        }
        else _confidence = Math.Min(_confidence, response);
        // Image content moves opposite to the stage.
        _x -= shift.X * scale;
        _y -= shift.Y * scale;
        (_previous, _current) = (_current, _previous);
        return Current;
    }

    /// <summary>Forget the previous frame (the source reopened): the next frame starts a new segment.</summary>
    public void Reset()
    {
        _previous?.Dispose();
        _previous = null;
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
    }
}
