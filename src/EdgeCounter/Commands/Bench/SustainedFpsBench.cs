using System.Diagnostics;
using EdgeCounter.Acquisition;
using EdgeCounter.Detection;
using EdgeCounter.Fields;
using EdgeCounter.Publishing;
using EdgeCounter.Simulation;
using OpenCvSharp;

namespace EdgeCounter.Commands.Bench;

/// <summary>
/// How many frames per second the capture side (frame copy, then the service's own <see cref="FieldStage"/>: scoring,
/// stage odometry, Rx field stage, latest-wins hand-off) keeps up with while the detector (plus annotation and JPEG, as
/// in the service) runs flat out on its own thread. Frames are a
/// pre-rendered simulator clip replayed with camera timestamps at 30 fps, so simulator rendering is not counted and
/// every replay is a new stop (a stable field for the detector).
/// </summary>
public static class SustainedFpsBench
{
    public static async Task RunAsync(BenchReport report, ICellDetector detector, FieldOptions fieldOptions, MqttOptions image, TimeSpan duration,
        CancellationToken cancellationToken)
    {
        const double cameraFps = 30;
        var clip = RenderClip(cameraFps);
        try
        {
            var buffer = new LatestFieldBuffer(capacity: 1);
            using var stage = new FieldStage(fieldOptions, buffer);
            long taken = 0, detected = 0;

            var annotator = new FieldAnnotator(detector.Model.Labels);
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var detection = Task.Factory.StartNew(async () =>
            {
                try
                {
                    while (true)
                    {
                        using var field = await buffer.TakeAsync(stop.Token).ConfigureAwait(false);
                        var result = detector.Detect(field.Image);
                        annotator.Picture(field.Image, result.Detections, ["bench"], image);
                        Interlocked.Increment(ref detected);
                    }
                }
                catch (OperationCanceledException) { }
                catch (System.Threading.Channels.ChannelClosedException) { }
            }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();

            var start = DateTimeOffset.UtcNow;
            var interval = TimeSpan.FromSeconds(1 / cameraFps);
            var clock = Stopwatch.StartNew();
            long index = 0;
            while (clock.Elapsed < duration && !cancellationToken.IsCancellationRequested)
            {
                // A camera hands over a fresh buffer per frame: the copy stands for that.
                using var frame = new Frame(clip[(int)(index % clip.Length)].Clone(), index, start + interval * index, interval * index);
                if (stage.Push(frame) == FieldDecision.Take) taken++;
                index++;
            }
            var elapsed = clock.Elapsed;
            await stop.CancelAsync();
            buffer.Complete();
            await detection;
            while (buffer.TryTake(out var left)) left?.Dispose();

            const string group = "Sustained capture (640x480 frames as fast as possible, detector busy on its own thread)";
            report.Add(group, "frames per second, capture side", "sustained_fps", index / elapsed.TotalSeconds, "fps",
                $"{index} frames in {elapsed.TotalSeconds:0.0} s; 30 fps camera needs 30");
            report.Add(group, "capture side cost per frame", "capture_ms_per_frame", elapsed.TotalMilliseconds / index, "ms", "copy + score + odometry + field stage, sharing 2 cores with detection");
            report.Add(group, "fields detected meanwhile", "sustained_fields_detected", detected, "fields",
                $"{taken} taken, {buffer.Dropped} replaced by a newer one (latest wins)");
        }
        finally
        {
            foreach (var m in clip) m.Dispose();
        }
    }

    /// <summary>Two seconds of a 640x480 camera: a 1 s stop, the move away and the start of the next stop.</summary>
    private static Mat[] RenderClip(double fps)
    {
        using var microscope = new SimulatedMicroscope(new MicroscopeOptions
        {
            Seed = 3, Width = 640, Height = 480, FramesPerSecond = fps,
            StopDuration = TimeSpan.FromSeconds(1), StopDurationJitter = TimeSpan.Zero, DefocusProbability = 0, RevisitProbability = 0,
        });
        return Enumerable.Range(0, (int)(2 * fps)).Select(i => microscope.RenderFrame(i, out _)).ToArray();
    }
}
