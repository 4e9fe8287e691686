using OpenCvSharp;

namespace EdgeCounter.Fields;

/// <summary>A field taken for counting. Owns its image (a copy of the frame); the consumer disposes it.</summary>
public sealed class StableField(Mat image, long frameIndex, DateTimeOffset capturedAt, FrameScore score) : IDisposable
{
    public Mat Image { get; } = image;
    public long FrameIndex { get; } = frameIndex;
    public DateTimeOffset CapturedAt { get; } = capturedAt;
    public FrameScore Score { get; } = score;

    /// <summary>The stage odometry's integrated position when the frame was taken; null when none ran.</summary>
    public OdometryReading? Odometry { get; init; }

    public void Dispose() => Image.Dispose();
}
