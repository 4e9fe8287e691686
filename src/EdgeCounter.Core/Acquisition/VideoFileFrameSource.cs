using Microsoft.Extensions.Logging;
using OpenCvSharp;

namespace EdgeCounter.Acquisition;

/// <summary>A recorded video (FFmpeg). Timestamps follow the video's own clock so the debounce sees real stage timing.</summary>
public sealed class VideoFileFrameSource(SourceOptions options, ILogger<VideoFileFrameSource> logger, TimeProvider? clock = null) : IFrameSource
{
    private VideoCapture? _capture;
    private double _fps;
    private long _index;
    private readonly FramePacer _pacer = new(clock ?? TimeProvider.System, options.RealTime);

    public string Description => $"video {options.Path}" + (options.Loop ? " (looping)" : "");

    public Task OpenAsync(CancellationToken cancellationToken) => Task.Run(() =>
    {
        _capture?.Dispose();
        if (!File.Exists(options.Path))
            throw new FrameSourceException($"video file '{options.Path}' does not exist");
        var capture = new VideoCapture(options.Path!, VideoCaptureAPIs.FFMPEG);
        if (!capture.IsOpened())
        {
            capture.Dispose();
            throw new FrameSourceException($"video file '{options.Path}' could not be opened (unknown format or corrupt)") { Permanent = true };
        }
        _fps = options.FramesPerSecond > 0 ? options.FramesPerSecond : capture.Fps is > 0 and < 1000 ? capture.Fps : 25;
        logger.LogInformation("Video {Path} opened: {Frames} frames at {Fps} fps", options.Path, capture.FrameCount, _fps);
        _capture = capture;
        _pacer.Restart();
        _index = 0;
    }, cancellationToken);

    public async ValueTask<Frame?> ReadAsync(CancellationToken cancellationToken)
    {
        var capture = _capture ?? throw new InvalidOperationException("OpenAsync first");
        var offset = TimeSpan.FromSeconds(_index / _fps);
        await _pacer.WaitForAsync(offset, cancellationToken).ConfigureAwait(false);
        var mat = new Mat();
        if (!capture.Read(mat) || mat.Empty())
        {
            mat.Dispose();
            if (!options.Loop || _index == 0) return null;
            capture.Set(VideoCaptureProperties.PosFrames, 0);
            mat = new Mat();
            if (!capture.Read(mat) || mat.Empty())
            {
                mat.Dispose();
                throw new FrameSourceException($"video file '{options.Path}' could not be read again from the start");
            }
        }
        return new Frame(FrameImages.ToBgr(mat), _index++, _pacer.TimestampOf(offset), offset);
    }

    public ValueTask DisposeAsync()
    {
        _capture?.Dispose();
        _capture = null;
        return ValueTask.CompletedTask;
    }
}
