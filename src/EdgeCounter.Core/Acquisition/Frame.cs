using EdgeCounter.Simulation;
using OpenCvSharp;

namespace EdgeCounter.Acquisition;

/// <summary>One frame from a source. Owns its native image: whoever holds the frame last disposes it.</summary>
public sealed class Frame : IDisposable
{
    public Frame(Mat image, long index, DateTimeOffset capturedAt, FrameTruth? truth = null)
    {
        Image = image;
        Index = index;
        CapturedAt = capturedAt;
        Truth = truth;
    }

    /// <summary>BGR, 8 bits per channel.</summary>
    public Mat Image { get; }

    public long Index { get; }

    public DateTimeOffset CapturedAt { get; }

    /// <summary>Ground truth, when the frame comes from the simulated microscope.</summary>
    public FrameTruth? Truth { get; }

    public void Dispose() => Image.Dispose();
}
