using Microsoft.Extensions.Logging;
using OpenCvSharp;

namespace EdgeCounter.Acquisition;

/// <summary>A microscope camera through OpenCV: V4L2 index or device path, or an RTSP/HTTP stream.</summary>
public sealed class CameraFrameSource(SourceOptions options, ILogger<CameraFrameSource> logger, TimeProvider? clock = null) : IFrameSource
{
    private readonly TimeProvider _clock = clock ?? TimeProvider.System;
    private readonly long _startTicks = (clock ?? TimeProvider.System).GetTimestamp(); // kept across reopens: elapsed never goes back
    private VideoCapture? _capture;
    private long _index;

    public string Description => $"camera {options.Path}" + (options.Width > 0 ? $" {options.Width}x{options.Height}" : "");

    public Task OpenAsync(CancellationToken cancellationToken) => Task.Run(() =>
    {
        Close();
        var path = options.Path!;
        // A bare number is a V4L2 index; anything else is a device path or a stream URL that FFmpeg opens.
        var capture = int.TryParse(path, out var index)
            ? new VideoCapture(index, VideoCaptureAPIs.V4L2)
            : new VideoCapture(path, path.StartsWith("/dev/", StringComparison.Ordinal) ? VideoCaptureAPIs.V4L2 : VideoCaptureAPIs.FFMPEG);
        if (!capture.IsOpened())
        {
            capture.Dispose();
            throw new FrameSourceException($"camera '{path}' could not be opened (not connected, in use, or no permission: the service user needs the 'video' group)");
        }
        if (!string.IsNullOrEmpty(options.FourCC)) capture.Set(VideoCaptureProperties.FourCC, VideoWriter.FourCC(options.FourCC));
        if (options.Width > 0) capture.Set(VideoCaptureProperties.FrameWidth, options.Width);
        if (options.Height > 0) capture.Set(VideoCaptureProperties.FrameHeight, options.Height);
        if (options.FramesPerSecond > 0) capture.Set(VideoCaptureProperties.Fps, options.FramesPerSecond);
        logger.LogInformation("Camera {Path} opened: {Width}x{Height} at {Fps} fps", path,
            capture.Get(VideoCaptureProperties.FrameWidth), capture.Get(VideoCaptureProperties.FrameHeight), capture.Get(VideoCaptureProperties.Fps));
        _capture = capture;
    }, cancellationToken);

    public async ValueTask<Frame?> ReadAsync(CancellationToken cancellationToken)
    {
        var capture = _capture ?? throw new InvalidOperationException("OpenAsync first");
        // VideoCapture.Read blocks until the device delivers; keep it off the caller's thread.
        var image = await Task.Run(() =>
        {
            var mat = new Mat();
            if (capture.Read(mat) && !mat.Empty()) return mat;
            mat.Dispose();
            return null;
        }, cancellationToken).ConfigureAwait(false);
        if (image is null)
            throw new FrameSourceException($"camera '{options.Path}' returned no frame (unplugged or stream ended)");
        return new Frame(FrameImages.ToBgr(image), _index++, _clock.GetUtcNow(), _clock.GetElapsedTime(_startTicks));
    }

    private void Close()
    {
        _capture?.Release();
        _capture?.Dispose();
        _capture = null;
    }

    public ValueTask DisposeAsync()
    {
        Close();
        return ValueTask.CompletedTask;
    }
}
