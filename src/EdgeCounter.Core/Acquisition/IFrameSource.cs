namespace EdgeCounter.Acquisition;

/// <summary>Where frames come from: a camera, a video file, an image folder or the simulated microscope.</summary>
public interface IFrameSource : IAsyncDisposable
{
    /// <summary>Human-readable description for logs and status, e.g. "camera /dev/video0 1280x960".</summary>
    string Description { get; }

    /// <summary>
    /// Opens the source. Throws <see cref="FrameSourceException"/> with a clear message when it cannot
    /// (camera absent, file missing); the caller retries with back-off.
    /// </summary>
    Task OpenAsync(CancellationToken cancellationToken);

    /// <summary>
    /// The next frame, or null at the end of a finite source. Throws <see cref="FrameSourceException"/>
    /// when the device fails mid-stream (unplugged, empty or corrupt frame); the caller reopens.
    /// </summary>
    ValueTask<Frame?> ReadAsync(CancellationToken cancellationToken);

    /// <summary>Frames the source skipped because they could not be decoded (e.g. corrupt image files); shown in P/stats.</summary>
    long UnreadableFrames => 0;
}

/// <summary>A source that cannot deliver frames right now; the message says why.</summary>
public sealed class FrameSourceException(string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>Retrying cannot help (e.g. a video file that exists but cannot be decoded): the capture loop stops and
    /// says so instead of reopening for ever as it does for an unplugged camera.</summary>
    public bool Permanent { get; init; }
}
