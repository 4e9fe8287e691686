using EdgeCounter.Acquisition;
using Microsoft.Extensions.Logging.Abstractions;
using OpenCvSharp;

namespace EdgeCounter.Tests.Acquisition;

public class CaptureLoopTests
{
    /// <summary>A camera that is absent at first, streams, gets unplugged mid-stream, comes back, then ends.</summary>
    private sealed class FlakyCamera : IFrameSource
    {
        private readonly Queue<string> _script;
        private long _index;
        public FlakyCamera(params string[] script) => _script = new Queue<string>(script);
        public string Description => "flaky test camera";
        public int Opens { get; private set; }

        public Task OpenAsync(CancellationToken cancellationToken)
        {
            Opens++;
            if (_script.Peek() == "absent") { _script.Dequeue(); throw new FrameSourceException("no camera"); }
            return Task.CompletedTask;
        }

        public ValueTask<Frame?> ReadAsync(CancellationToken cancellationToken)
        {
            var step = _script.Dequeue();
            return step switch
            {
                "frame" => ValueTask.FromResult<Frame?>(new Frame(new Mat(4, 4, MatType.CV_8UC3), _index++, DateTimeOffset.UtcNow, TimeSpan.FromMilliseconds(_index * 33))),
                "unplug" => throw new FrameSourceException("unplugged"),
                _ => ValueTask.FromResult<Frame?>(null),
            };
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    [Fact]
    public async Task A_camera_that_disappears_is_reopened_and_frames_resume()
    {
        var camera = new FlakyCamera("absent", "absent", "frame", "frame", "unplug", "absent", "frame", "frame", "frame", "end");
        var options = new SourceOptions { ReopenDelay = TimeSpan.FromMilliseconds(1), MaxReopenDelay = TimeSpan.FromMilliseconds(4) };
        var loop = new CaptureLoop(camera, options, NullLogger.Instance);
        var reopened = 0;
        loop.Reopened += () => reopened++;
        var received = new List<long>();

        await loop.RunAsync(frame => { using (frame) received.Add(frame.Index); return ValueTask.CompletedTask; }, CancellationToken.None);

        Assert.Equal([0, 1, 2, 3, 4], received);
        Assert.Equal(4, loop.Reopens); // two absent at start, one unplug, one absent after it
        Assert.Equal(2, reopened);     // streaming started twice
        Assert.Equal(SourceState.Ended, loop.State);
    }

    [Fact]
    public async Task A_corrupt_video_file_fails_once_and_clearly_instead_of_being_reopened_for_ever()
    {
        var dir = Directory.CreateTempSubdirectory("edgecounter-video-").FullName;
        try
        {
            var path = Path.Combine(dir, "slide.avi");
            await File.WriteAllBytesAsync(path, Enumerable.Range(0, 4096).Select(i => (byte)(i * 37)).ToArray());
            var options = new SourceOptions { Kind = SourceKind.Video, Path = path, ReopenDelay = TimeSpan.FromMilliseconds(1) };
            await using var video = new VideoFileFrameSource(options, NullLogger<VideoFileFrameSource>.Instance);
            var loop = new CaptureLoop(video, options, NullLogger.Instance);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));

            await loop.RunAsync(frame => { frame.Dispose(); return ValueTask.CompletedTask; }, timeout.Token);

            Assert.False(timeout.IsCancellationRequested, "the loop kept retrying a corrupt file");
            Assert.Equal(SourceState.Failed, loop.State);
            Assert.Equal(0, loop.Reopens);
            Assert.Contains("could not be opened", loop.LastError);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public async Task A_folder_of_unreadable_images_ends_and_says_why()
    {
        var dir = Directory.CreateTempSubdirectory("edgecounter-folder-").FullName;
        try
        {
            foreach (var name in new[] { "a.jpg", "b.png", "c.tif" }) await File.WriteAllTextAsync(Path.Combine(dir, name), "not an image");
            var options = new SourceOptions { Kind = SourceKind.Folder, Path = dir, RealTime = false };
            await using var folder = new FolderFrameSource(options, NullLogger<FolderFrameSource>.Instance);
            var loop = new CaptureLoop(folder, options, NullLogger.Instance);

            await loop.RunAsync(frame => { frame.Dispose(); return ValueTask.CompletedTask; }, CancellationToken.None);

            Assert.Equal(SourceState.Ended, loop.State);
            Assert.Equal(0, loop.FramesRead);
            Assert.Equal("ended without a readable frame: 3 unreadable (corrupt, truncated or not an image)", loop.LastError);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public async Task Cancellation_stops_the_loop_while_waiting_to_reopen()
    {
        var camera = new FlakyCamera(Enumerable.Repeat("absent", 1000).ToArray());
        var options = new SourceOptions { ReopenDelay = TimeSpan.FromSeconds(30), MaxReopenDelay = TimeSpan.FromSeconds(30) };
        var loop = new CaptureLoop(camera, options, NullLogger.Instance);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        await loop.RunAsync(_ => ValueTask.CompletedTask, cts.Token);
        Assert.Equal(SourceState.Stopped, loop.State);
        Assert.Equal("no camera", loop.LastError);
    }

    [Fact]
    public async Task Folder_source_skips_corrupt_images_and_holds_each_good_one()
    {
        var dir = Directory.CreateTempSubdirectory("edgecounter-folder-");
        try
        {
            using (var good = new Mat(48, 64, MatType.CV_8UC3, new Scalar(10, 200, 30))) Cv2.ImWrite(Path.Combine(dir.FullName, "a.png"), good);
            using var grey = new Mat(48, 64, MatType.CV_8UC3, Scalar.All(128));
            Cv2.ImEncode(".jpg", grey, out var jpeg);
            File.WriteAllBytes(Path.Combine(dir.FullName, "b.jpg"), jpeg[..(jpeg.Length / 3)]); // truncated
            File.WriteAllText(Path.Combine(dir.FullName, "c.png"), "not an image");
            using (var good = new Mat(48, 64, MatType.CV_8UC3, new Scalar(200, 10, 30))) Cv2.ImWrite(Path.Combine(dir.FullName, "d.png"), good);

            var options = new SourceOptions { Kind = SourceKind.Folder, Path = dir.FullName, RealTime = false, FramesPerSecond = 10, FolderImageHold = TimeSpan.FromSeconds(0.5) };
            await using var source = new FolderFrameSource(options, NullLogger<FolderFrameSource>.Instance);
            await source.OpenAsync(CancellationToken.None);
            var colours = new List<double>();
            while (await source.ReadAsync(CancellationToken.None) is { } frame)
                using (frame) colours.Add(frame.Image.Mean().Val0);

            Assert.Equal(10, colours.Count); // two readable images, 5 frames each (0.5 s at 10 fps)
            Assert.All(colours.Take(5), c => Assert.Equal(10, c, 0));
            Assert.All(colours.Skip(5), c => Assert.Equal(200, c, 0));
            Assert.True(source.UnreadableFrames >= 1);
        }
        finally
        {
            dir.Delete(true);
        }
    }
}
