using Microsoft.Extensions.Logging;
using OpenCvSharp;

namespace EdgeCounter.Acquisition;

/// <summary>
/// A folder of still images, each shown as if the stage stopped on it for <see cref="SourceOptions.FolderImageHold"/>:
/// the same image repeated at the configured rate, so the field stage sees a still, sharp field and counts it once.
/// Files that are not images, or are corrupt, are skipped and logged.
/// </summary>
public sealed class FolderFrameSource(SourceOptions options, ILogger<FolderFrameSource> logger, TimeProvider? clock = null) : IFrameSource
{
    private static readonly HashSet<string> Extensions = new(StringComparer.OrdinalIgnoreCase) { ".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp" };
    private readonly double _fps = options.FramesPerSecond > 0 ? options.FramesPerSecond : 10;
    private string[] _files = [];
    private int _fileIndex = -1;
    private Mat? _current;
    private int _repeatsLeft;
    private long _index;
    private readonly FramePacer _pacer = new(clock ?? TimeProvider.System, options.RealTime);

    public string Description => $"folder {options.Path}";

    /// <summary>The image files directly in <paramref name="directory"/>, by name (ordinal): the order they are read in.</summary>
    public static string[] ImageFiles(string directory) =>
        Directory.EnumerateFiles(directory).Where(f => Extensions.Contains(Path.GetExtension(f))).Order(StringComparer.Ordinal).ToArray();

    private long _skippedFiles;

    /// <summary>Files skipped because they are not readable images; read by the stats loop on another thread.</summary>
    public long UnreadableFrames => Interlocked.Read(ref _skippedFiles);

    public Task OpenAsync(CancellationToken cancellationToken)
    {
        if (!Directory.Exists(options.Path))
            throw new FrameSourceException($"image folder '{options.Path}' does not exist");
        _files = ImageFiles(options.Path!);
        logger.LogInformation("Folder {Path}: {Count} images, each held {Hold}", options.Path, _files.Length, options.FolderImageHold);
        _pacer.Restart();
        return Task.CompletedTask;
    }

    public async ValueTask<Frame?> ReadAsync(CancellationToken cancellationToken)
    {
        if (_repeatsLeft == 0 && !NextImage()) return null;
        var offset = TimeSpan.FromSeconds(_index / _fps);
        await _pacer.WaitForAsync(offset, cancellationToken).ConfigureAwait(false);
        _repeatsLeft--;
        return new Frame(_current!.Clone(), _index++, _pacer.TimestampOf(offset), offset);
    }

    private bool NextImage()
    {
        _current?.Dispose();
        _current = null;
        while (++_fileIndex < _files.Length)
        {
            var file = _files[_fileIndex];
            Mat image;
            try
            {
                image = Cv2.ImRead(file, ImreadModes.Color);
            }
            catch (Exception e) when (e is OpenCVException or OpenCvSharpException)
            {
                image = new Mat();
            }
            if (image.Empty())
            {
                image.Dispose();
                Interlocked.Increment(ref _skippedFiles);
                logger.LogWarning("Skipped {File}: not a readable image (corrupt or truncated)", file);
                continue;
            }
            _current = image;
            _repeatsLeft = Math.Max(2, (int)Math.Ceiling(options.FolderImageHold.TotalSeconds * _fps));
            return true;
        }
        return false;
    }

    public ValueTask DisposeAsync()
    {
        _current?.Dispose();
        _current = null;
        return ValueTask.CompletedTask;
    }
}
