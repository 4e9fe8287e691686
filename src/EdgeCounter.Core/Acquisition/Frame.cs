using OpenCvSharp;

namespace EdgeCounter.Acquisition;

/// <summary>One frame from a source. Owns its native image: whoever holds the frame last disposes it.</summary>
/// <param name="capturedAt">Wall-clock stamp, for messages (steps when the clock is corrected).</param>
/// <param name="elapsed">Time since the source started on a clock that never steps: what intervals (debounce,
/// frame rate) are measured on.</param>
public sealed class Frame : IDisposable
{
    public Frame(Mat image, long index, DateTimeOffset capturedAt, TimeSpan elapsed)
    {
        Image = image;
        Index = index;
        CapturedAt = capturedAt;
        Elapsed = elapsed;
    }

    /// <summary>BGR, 8 bits per channel.</summary>
    public Mat Image { get; }

    public long Index { get; }

    public DateTimeOffset CapturedAt { get; }

    public TimeSpan Elapsed { get; }

    public void Dispose() => Image.Dispose();
}
