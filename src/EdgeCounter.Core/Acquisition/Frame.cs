using OpenCvSharp;

namespace EdgeCounter.Acquisition;

/// <summary>One frame from a source. Owns its native image: whoever holds the frame last disposes it.</summary>
public sealed class Frame : IDisposable
{
    public Frame(Mat image, long index, DateTimeOffset capturedAt)
    {
        Image = image;
        Index = index;
        CapturedAt = capturedAt;
    }

    /// <summary>BGR, 8 bits per channel.</summary>
    public Mat Image { get; }

    public long Index { get; }

    public DateTimeOffset CapturedAt { get; }

    public void Dispose() => Image.Dispose();
}
