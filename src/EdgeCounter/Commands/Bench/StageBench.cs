using System.Diagnostics;
using EdgeCounter.Acquisition;
using EdgeCounter.Detection;
using EdgeCounter.Fields;
using EdgeCounter.Publishing;
using EdgeCounter.Simulation;
using Microsoft.Extensions.Logging.Abstractions;
using OpenCvSharp;

namespace EdgeCounter.Commands.Bench;

/// <summary>Per-stage timings on simulated frames: scoring, detector pre/inference/post, annotation + JPEG.</summary>
public static class StageBench
{
    /// <summary>Two consecutive still frames of the simulated microscope at a camera size and pixel scale.</summary>
    public static (Mat First, Mat Second) RenderPair(int width, int height, double micrometresPerPixel, ulong seed = 7)
    {
        using var microscope = StillMicroscope(width, height, micrometresPerPixel, seed);
        return (microscope.RenderFrame(10, out _), microscope.RenderFrame(11, out _));
    }

    /// <summary>The bench's simulated microscope: 30 fps, 5 s stops without jitter, always in focus.</summary>
    private static SimulatedMicroscope StillMicroscope(int width, int height, double micrometresPerPixel, ulong seed) => new(new MicroscopeOptions
    {
        Seed = seed, Width = width, Height = height, FramesPerSecond = 30, MicrometresPerPixel = micrometresPerPixel,
        StopDuration = TimeSpan.FromSeconds(5), StopDurationJitter = TimeSpan.Zero, DefocusProbability = 0,
    });

    /// <summary>A still 640x480 field at 0.1 µm/px holding at least <paramref name="whiteCells"/> whole white cells
    /// (not cut by the frame: the truth's boxes are clipped to it, so its <c>Truncated</c> flag says so; the first such
    /// stop of the seed-7 microscope), for the detector's cost with its subtype stage at work.</summary>
    public static Mat FieldWithWhiteCells(int whiteCells)
    {
        using var microscope = StillMicroscope(640, 480, 0.1, seed: 7);
        static bool White(CellType t) => t is >= CellType.Neutrophil and <= CellType.Monocyte;
        // One frame in the middle of each 5 s stop (150 frames at 30 fps), until one holds enough white cells inside it.
        for (var i = 0; i < 60; i++)
        {
            var frame = microscope.RenderFrame(10 + 150 * i, out var truth);
            if (!truth.Moving && truth.Cells.Count(c => White(c.Type) && !c.Truncated) >= whiteCells)
                return frame;
            frame.Dispose();
        }
        throw new InvalidOperationException($"no simulated field with {whiteCells} white cells in 60 stops");
    }

    /// <summary>Motion + focus scoring of alternating frames, as the capture loop does; also managed bytes allocated per frame.</summary>
    public static void Scoring(BenchReport report, string name, int width, int height, double micrometresPerPixel, int scoringWidth, TimeSpan budget)
    {
        var (a, b) = RenderPair(width, height, micrometresPerPixel);
        using (a)
        using (b)
        using (var scorer = new FrameScorer(scoringWidth))
        {
            var flip = false;
            void Step() { scorer.Score(flip ? a : b); flip = !flip; }
            var samples = Samples.Measure(Step, budget, warmup: 10, minIterations: 20);
            // Steady state allocation: a fixed number of calls on this thread after the warm-up above.
            const int calls = 200;
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < calls; i++) Step();
            var perFrame = (GC.GetAllocatedBytesForCurrentThread() - before) / (double)calls;
            report.Add("Frame scoring (motion + focus)", $"{name} ({width}x{height})", $"scoring_ms_{name}", samples.Median, "ms", $"p95 {samples.P95:0.00}, n={samples.Count}");
            report.Add("Frame scoring (motion + focus)", $"{name} managed allocation", $"scoring_alloc_bytes_{name}", perFrame, "B/frame");
        }
    }

    /// <summary>The whole capture side per frame, as the service runs it (<see cref="FieldStage"/>: scoring, stage
    /// odometry, the Rx field stage, the copy of a taken field), on a pre-rendered clip of a stop, the move away and the
    /// next stop, so moving frames (odometry at work) and still ones are both timed. No detector.</summary>
    public static void FieldStageCost(BenchReport report, string name, int width, int height, double micrometresPerPixel, FieldOptions options, TimeSpan budget)
    {
        const double fps = 30;
        Mat[] clip;
        using (var microscope = new SimulatedMicroscope(new MicroscopeOptions
        {
            Seed = 3, Width = width, Height = height, FramesPerSecond = fps, MicrometresPerPixel = micrometresPerPixel,
            StopDuration = TimeSpan.FromSeconds(1), StopDurationJitter = TimeSpan.Zero, DefocusProbability = 0, RevisitProbability = 0,
        }))
            clip = Enumerable.Range(0, (int)(2 * fps)).Select(i => microscope.RenderFrame(i, out _)).ToArray();
        var buffer = new LatestFieldBuffer();
        try
        {
            using var stage = new FieldStage(options, buffer);
            var start = DateTimeOffset.UnixEpoch;
            long index = 0;
            void Step()
            {
                // The clip's image stands for the camera's buffer (not copied: that is the camera's cost, not the stage's);
                // the frame is not disposed, the clip is at the end.
                var frame = new Frame(clip[(int)(index % clip.Length)], index, start + TimeSpan.FromSeconds(index / fps), TimeSpan.FromSeconds(index / fps));
                stage.Push(frame);
                index++;
                while (buffer.TryTake(out var taken)) taken?.Dispose();
            }
            var samples = Samples.Measure(Step, budget, warmup: clip.Length, minIterations: 2 * clip.Length);
            report.Add("Capture side (FieldStage: scoring + stage odometry + field stage)", $"{name} ({width}x{height}) per frame", $"field_stage_ms_{name}",
                samples.Median, "ms", $"p95 {samples.P95:0.00}, n={samples.Count}; target under 3 ms at 1080p");
        }
        finally
        {
            foreach (var m in clip) m.Dispose();
            while (buffer.TryTake(out var left)) left?.Dispose();
        }
    }

    /// <summary>The detector's own stage timings (pre, inference, post) and the wall time of Detect, per field.</summary>
    public static DetectionResult Detector(BenchReport report, OnnxCellDetector detector, Mat frame, string name, string description, TimeSpan budget,
        int warmup = 2, int minIterations = 5, int maxIterations = 100_000)
    {
        var pre = new List<double>();
        var inference = new List<double>();
        var post = new List<double>();
        DetectionResult? last = null;
        for (var i = 0; i < warmup; i++) last = detector.Detect(frame);
        var total = Samples.Measure(() =>
        {
            last = detector.Detect(frame);
            pre.Add(last.PreprocessMs);
            inference.Add(last.InferenceMs);
            post.Add(last.PostprocessMs);
        }, budget, warmup: 0, minIterations: minIterations, maxIterations: maxIterations);
        var group = $"Detector, {description}";
        var geometry = detector.GeometryFor(frame.Cols, frame.Rows, detector.InputScale);
        var input = $"model input {geometry.PaddedWidth}x{geometry.PaddedHeight}";
        report.Add(group, "pre-processing", $"preprocess_ms_{name}", new Samples(pre).Median, "ms", input);
        // The subtype stage runs once per white cell and its time counts as inference: say how many the field has.
        var stageClass = detector.SubtypeStage is null ? null : detector.Labels.SubtypeOf;
        var stageCells = stageClass is null ? "" : $", subtype stage on {last!.Detections.Count(d => d.Class == stageClass)} white cells";
        report.Add(group, "inference", $"inference_ms_{name}", new Samples(inference).Median, "ms", $"p95 {new Samples(inference).P95:0.0}, n={inference.Count}{stageCells}");
        report.Add(group, "post-processing (decode + NMS)", $"postprocess_ms_{name}", new Samples(post).Median, "ms", $"{last!.Detections.Count} detections");
        report.Add(group, "Detect() wall time", $"detector_total_ms_{name}", total.Median, "ms");
        return last;
    }

    /// <summary>What the reporter does for each field's picture: annotate, then JPEG under the broker's byte budget.</summary>
    public static void AnnotateAndEncode(BenchReport report, Mat frame, IReadOnlyList<Detection.Detection> detections, IReadOnlyList<string> labels,
        string name, MqttOptions image, TimeSpan budget)
    {
        var annotator = new FieldAnnotator(labels);
        string[] header =
        [
            "sample S-1  field 12  white cells 37/100 (37%)  running",
            "WBC 37  granulocyte 24",
            "neutrophil 21  eosinophil 2  basophil 1  lymphocyte 11  monocyte 2  RBC 1304  Platelets 96",
        ];
        var encoding = default(JpegEncoding);
        var samples = Samples.Measure(() => encoding = annotator.Picture(frame, detections, header, image), budget, warmup: 2, minIterations: 5);
        var bytes = encoding!.Bytes.Length;
        report.Add("Annotation + JPEG", $"{name} ({frame.Cols}x{frame.Rows})", $"annotate_jpeg_ms_{name}", samples.Median, "ms",
            $"{bytes / 1024} KiB, {encoding.Width}x{encoding.Height} at quality {encoding.Quality} (Mqtt:ImageHeight {image.ImageHeight}), {detections.Count} boxes");
    }

    /// <summary>
    /// This run's graph against the default fp32 graph on CPU: Detect calls alternate on the same frame, so both see
    /// the same spell of the machine (its speed drifts by more than the difference between graphs), at 640x480
    /// (inference) and for the 2560x1920 camera (Detect wall time). Writes the reference's medians and the ratios
    /// (<see cref="BenchTargets.RatioKey"/>); a run of the default fp32 graph on CPU is its own reference.
    /// </summary>
    public static void AgainstFp32Cpu(BenchReport report, DetectorOptions options, string executionProvider, Mat small, Mat large,
        double largeCameraScale, TimeSpan budget)
    {
        const string group = "Against the default fp32 graph on CPU (Detect calls alternating with it)";
        var referencePath = ModelLocator.FindDefaultModel();
        if (!File.Exists(referencePath))
        {
            report.Add(group, "skipped", BenchTargets.RatioKey("inference_ms_640x480"), double.NaN, "x", $"no default graph at {referencePath}");
            return;
        }
        if (executionProvider == "CPU" && SameFile(options.ModelPath, referencePath))
        {
            const string itself = "this run is the default fp32 graph on CPU";
            report.Add(group, "inference 640x480, ratio", BenchTargets.RatioKey("inference_ms_640x480"), 1, "x", itself);
            report.Add(group, "detector total 2560x1920, ratio", BenchTargets.RatioKey("detector_total_ms_2560x1920"), 1, "x", itself);
            return;
        }
        var reference = options.Copy();
        reference.ModelPath = referencePath;
        reference.LabelsPath = null;
        reference.ExecutionProvider = ExecutionProviderPreference.Cpu;
        static double Inference(OnnxCellDetector d, Mat frame) => d.Detect(frame).InferenceMs;
        static double Wall(OnnxCellDetector d, Mat frame)
        {
            var start = Stopwatch.GetTimestamp();
            d.Detect(frame);
            return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }
        using (var mine = LoadDetector(options, inputScale: 1))
        using (var theirs = LoadDetector(reference, inputScale: 1))
            Alternate(report, group, "inference 640x480", "inference_ms_640x480", mine, theirs, small, Inference, budget);
        using (var mine = LoadDetector(options, cameraMicrometresPerPixel: largeCameraScale))
        using (var theirs = LoadDetector(reference, cameraMicrometresPerPixel: largeCameraScale))
            Alternate(report, group, "detector total 2560x1920", "detector_total_ms_2560x1920", mine, theirs, large, Wall, budget);
    }

    /// <summary>The same path, or a copy of the same bytes (the build output's models/ beside the repository's).</summary>
    private static bool SameFile(string a, string b)
    {
        if (string.Equals(Path.GetFullPath(a), Path.GetFullPath(b), StringComparison.Ordinal)) return true;
        var fa = new FileInfo(a);
        var fb = new FileInfo(b);
        return fa.Exists && fb.Exists && fa.Length == fb.Length && File.ReadAllBytes(a).AsSpan().SequenceEqual(File.ReadAllBytes(b));
    }

    private static void Alternate(BenchReport report, string group, string what, string key, OnnxCellDetector mine, OnnxCellDetector theirs,
        Mat frame, Func<OnnxCellDetector, Mat, double> time, TimeSpan budget)
    {
        var a = new List<double>();
        var b = new List<double>();
        for (var i = 0; i < 2; i++) { time(mine, frame); time(theirs, frame); }
        Samples.Measure(() =>
        {
            a.Add(time(mine, frame));
            b.Add(time(theirs, frame));
        }, budget, warmup: 0, minIterations: 5);
        double ours = new Samples(a).Median, fp32 = new Samples(b).Median;
        report.Add(group, $"{what}, default fp32 graph on CPU", $"fp32_cpu_{key}", fp32, "ms", $"this graph alternating with it: {ours:0.00} ms, n={a.Count}");
        report.Add(group, $"{what}, ratio", BenchTargets.RatioKey(key), ours / fp32, "x", "this graph / fp32 CPU");
    }

    /// <summary>The configured detector with its own input scale: a fixed factor, or the camera's pixel size.</summary>
    public static OnnxCellDetector LoadDetector(DetectorOptions baseOptions, double? inputScale = null, double? cameraMicrometresPerPixel = null)
    {
        var options = baseOptions.Copy(); // the service's settings (threads, spinning, thresholds), own scale
        options.InputScale = inputScale;
        options.CameraMicrometresPerPixel = cameraMicrometresPerPixel;
        return CellDetectorFactory.Open(options, NullLogger.Instance);
    }
}
