using System.Globalization;
using System.Runtime.InteropServices;
using EdgeCounter.Commands.Bench;
using EdgeCounter.Hosting;
using Microsoft.Extensions.Configuration;
using OpenCvSharp;

namespace EdgeCounter.Commands;

/// <summary>
/// <c>bench</c>: in-process timings of every stage on this machine, side by side, and of the whole path from the stage
/// stopping to the <c>field</c> message at a subscriber (docs/benchmarks.md). Same model and settings as the service.
/// </summary>
public static class BenchCommand
{
    public const string Usage = """
        bench: time every stage and the whole path on this machine (simulated microscope, the shipped model)
          EdgeCounter bench [options] [--EdgeCounter:Key=Value ...]
            --seconds N          time budget of the main phases in seconds (default 10; the run takes about 2N + 15 s)
            --json FILE          also write the figures as JSON (flat object, snake_case keys)
            --model PATH         ONNX model (default: models/cellnet.onnx beside the executable or in the repository)
            --provider P         auto | cuda | cpu (default: the configured Detector:ExecutionProvider, Auto)
            --threads N          ONNX Runtime intra-op threads (default: the configured value, else the number of cores)
            --no-full-res        skip inference on the full 2560x1920 frame (it is skipped anyway when it would be slow)
            --EdgeCounter:...    any service setting, as for the service (e.g. --EdgeCounter:Detector:ExecutionProvider=Cuda)
        """;

    private const string Prefix = "EdgeCounter:";

    public static async Task<int> RunAsync(CommandLine args, CancellationToken cancellationToken)
    {
        var seconds = args.Double("seconds", 10);
        if (!(seconds > 0) || seconds > 3600) throw new CommandLineException("--seconds must be within (0, 3600]");
        var jsonPath = args.String("json");
        var overrides = new List<string>();
        if (args.String("model") is { } model) overrides.Add($"--{Prefix}Detector:ModelPath={Path.GetFullPath(model)}");
        if (args.String("provider") is { } provider) overrides.Add($"--{Prefix}Detector:ExecutionProvider={provider}");
        if (args.String("threads") is { } threads) overrides.Add($"--{Prefix}Detector:IntraOpThreads={threads}");
        var fullResolution = !args.Flag("no-full-res");
        foreach (var key in args.Unread.Where(k => k.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase)).ToList())
            overrides.Add($"--{key}={args.String(key)}");
        args.ThrowOnUnknown();

        EdgeCounterOptions settings;
        try
        {
            var configuration = new ConfigurationBuilder()
                .AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json"), optional: true)
                .AddCommandLine(overrides.ToArray())
                .Build();
            settings = ServiceHost.BindAndValidate(configuration);
        }
        catch (ConfigurationProblemException e)
        {
            Console.Error.WriteLine("bench: invalid settings");
            foreach (var problem in e.Problems) Console.Error.WriteLine($"  - {problem}");
            return ServiceHost.ConfigurationError;
        }

        BenchReport report;
        try
        {
            report = await MeasureAsync(settings, overrides, TimeSpan.FromSeconds(seconds), fullResolution, Console.Out, cancellationToken);
        }
        catch (Exception e) when (e is ConfigurationProblemException or Detection.ModelLoadException)
        {
            // E.g. --provider cuda where CUDA does not load: say so instead of a stack trace.
            Console.Error.WriteLine($"bench: cannot run: {(e is ConfigurationProblemException c ? string.Join("; ", c.Problems) : e.Message)}");
            return ServiceHost.ConfigurationError;
        }
        Console.WriteLine();
        report.PrintTable(Console.Out);
        if (jsonPath is not null)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(jsonPath))!);
            await using var file = File.Create(jsonPath);
            report.WriteJson(file);
            Console.WriteLine($"\nJSON written to {jsonPath}");
        }
        return 0;
    }

    /// <summary>All phases, in an order that keeps them apart: the service first (its RSS is the service's own), then
    /// the stages one by one, then the sustained frame rate.</summary>
    public static async Task<BenchReport> MeasureAsync(EdgeCounterOptions settings, IReadOnlyList<string> serviceOverrides, TimeSpan budget,
        bool fullResolution, TextWriter progress, CancellationToken cancellationToken)
    {
        var report = new BenchReport();
        report.Fact("machine", MachineDescription());
        report.Fact("os", RuntimeInformation.OSDescription);
        report.Fact("runtime", RuntimeInformation.FrameworkDescription);
        report.Fact("model_path", settings.Detector.ModelPath);
        report.Fact("measured_at", DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
        double Part(double fraction) => budget.TotalSeconds * fraction;

        progress.WriteLine($"bench: end to end, service host for {budget.TotalSeconds:0.#} s ...");
        await EndToEndBench.RunAsync(report, serviceOverrides, budget, cancellationToken);

        progress.WriteLine("bench: frame scoring ...");
        var scoringWidth = settings.Fields.ScoringWidth;
        StageBench.Scoring(report, "640x480", 640, 480, 0.1, scoringWidth, TimeSpan.FromSeconds(Part(0.05)));
        StageBench.Scoring(report, "1080p", 1920, 1080, 0.16, scoringWidth, TimeSpan.FromSeconds(Part(0.05)));
        StageBench.Scoring(report, "2560x1920", 2560, 1920, 0.04, scoringWidth, TimeSpan.FromSeconds(Part(0.05)));
        progress.WriteLine("bench: capture side (scoring + odometry + field stage) ...");
        StageBench.FieldStageCost(report, "1080p", 1920, 1080, 0.16, settings.Fields, TimeSpan.FromSeconds(Part(0.05)));

        cancellationToken.ThrowIfCancellationRequested();
        progress.WriteLine("bench: detector at 640x480 ...");
        using var detector = StageBench.LoadDetector(settings.Detector, inputScale: 1);
        report.Fact("execution_provider", detector.ExecutionProvider);
        report.Fact("model", $"{detector.Model.Name} {detector.Model.Version}");
        report.Add("Model", "model file size", "model_mb", new FileInfo(settings.Detector.ModelPath).Length / (1024.0 * 1024.0), "MB");
        report.Add("Model", "intra-op threads", "intra_op_threads",
            settings.Detector.EffectiveIntraOpThreads, "threads", $"{Environment.ProcessorCount} cores");
        if (detector.ExecutionProvider == "CPU")
        {
            var kernels = KernelMix.Of(settings.Detector.ModelPath, 640, 480, settings.Detector.EffectiveIntraOpThreads);
            int Count(string op) => kernels.TryGetValue(op, out var n) ? n.Nodes : 0;
            report.Add("Model", "integer convolutions (ONNX Runtime's QLinearConv / ConvInteger, of all convolutions)", "int8_conv_share",
                (double)(Count("QLinearConv") + Count("ConvInteger")) / Math.Max(1, Count("QLinearConv") + Count("ConvInteger") + Count("Conv") + Count("FusedConv")),
                "share", KernelMix.Describe(kernels));
        }
        var (small, smallNext) = StageBench.RenderPair(640, 480, 0.1);
        smallNext.Dispose();
        using var smallFrame = small;
        var smallResult = StageBench.Detector(report, detector, smallFrame, "640x480", "640x480 camera at 0.1 um/px (no resize)", TimeSpan.FromSeconds(Part(0.2)));

        // A field with white cells, so that the subtype stage (one crop per white cell) is in the figure too.
        using (var whiteField = StageBench.FieldWithWhiteCells(2))
            StageBench.Detector(report, detector, whiteField, "640x480_white_cells", "640x480 field with white cells (the subtype stage at work)",
                TimeSpan.FromSeconds(Part(0.1)));

        // The same with one intra-op thread: what inference costs when it leaves the other core to capture.
        if (settings.Detector.EffectiveIntraOpThreads != 1 && detector.ExecutionProvider == "CPU")
        {
            var oneThread = settings.Detector.Copy();
            oneThread.IntraOpThreads = 1;
            oneThread.ExecutionProvider = Detection.ExecutionProviderPreference.Cpu;
            using var single = StageBench.LoadDetector(oneThread, inputScale: 1);
            var inference = new List<double>();
            var timing = Samples.Measure(() => inference.Add(single.Detect(smallFrame).InferenceMs), TimeSpan.FromSeconds(Part(0.1)), warmup: 2, minIterations: 5);
            report.Add("Detector, 640x480 camera at 0.1 um/px (no resize)", "inference, 1 intra-op thread", "inference_ms_640x480_1thread",
                new Samples(inference).Median, "ms", $"n={timing.Count}");
        }

        // Large cameras, through the same rule as the service (Source:MicrometresPerPixel / model scale): a 2560x1920
        // sensor resized to 1024x768 for the model (factor 0.4: with the model at 0.1 um/px a camera at 0.04 um/px), and a
        // 1920x1080 one at half the model's pixel size (960x540, the whole-factor shrink).
        var modelScale = detector.Labels.MicrometresPerPixel ?? 0.1;
        var largeCameraScale = 0.4 * modelScale;
        var (largeFrame, largeResult) = CameraDetector(report, settings.Detector, 2560, 1920, largeCameraScale, modelScale, TimeSpan.FromSeconds(Part(0.2)), progress, cancellationToken);
        using var disposeLarge = largeFrame;
        var (hdFrame, hdResult) = CameraDetector(report, settings.Detector, 1920, 1080, 0.5 * modelScale, modelScale, TimeSpan.FromSeconds(Part(0.1)), progress, cancellationToken);
        using var disposeHd = hdFrame;

        // Full resolution: 16x the pixels of 640x480. Only when a few runs fit in the budget.
        var fullEstimateMs = 16 * (report["inference_ms_640x480"] ?? double.PositiveInfinity);
        if (fullResolution && fullEstimateMs < 2000)
        {
            using var full = StageBench.LoadDetector(settings.Detector, inputScale: 1);
            StageBench.Detector(report, full, largeFrame, "2560x1920_full", "2560x1920 at full resolution (no resize; timing only)",
                TimeSpan.FromSeconds(Part(0.1)), warmup: 1, minIterations: 3, maxIterations: 10);
        }
        else
        {
            report.Add("Detector, 2560x1920 at full resolution", "inference (skipped)", "inference_ms_2560x1920_full", double.NaN, "ms",
                fullResolution ? $"estimated {fullEstimateMs:0} ms from 640x480; too slow to repeat here" : "--no-full-res");
        }

        cancellationToken.ThrowIfCancellationRequested();
        progress.WriteLine("bench: against the default fp32 graph on CPU ...");
        StageBench.AgainstFp32Cpu(report, settings.Detector, detector.ExecutionProvider, smallFrame, largeFrame, largeCameraScale, TimeSpan.FromSeconds(Part(0.1)));

        cancellationToken.ThrowIfCancellationRequested();
        progress.WriteLine("bench: annotation + JPEG ...");
        StageBench.AnnotateAndEncode(report, smallFrame, smallResult.Detections, detector.Model.Labels, "640x480", settings.Mqtt, TimeSpan.FromSeconds(Part(0.05)));
        StageBench.AnnotateAndEncode(report, hdFrame, hdResult.Detections, detector.Model.Labels, "1920x1080", settings.Mqtt, TimeSpan.FromSeconds(Part(0.05)));
        StageBench.AnnotateAndEncode(report, largeFrame, largeResult.Detections, detector.Model.Labels, "2560x1920", settings.Mqtt, TimeSpan.FromSeconds(Part(0.05)));

        progress.WriteLine("bench: sustained capture rate ...");
        await SustainedFpsBench.RunAsync(report, detector, settings.Fields, settings.Mqtt, TimeSpan.FromSeconds(Part(0.5)), cancellationToken);
        report.Add("Process", "RSS at the end of the bench (all phases)", "rss_end_mb", EndToEndBench.ResidentMegabytes(), "MB", "includes the 2560x1920 runs; the service figure is rss_mb");
        report.SetTargets(BenchTargets.Check(report, detector.ExecutionProvider, settings.Detector.ModelPath));
        return report;
    }

    /// <summary>The detector's figures for a camera of this size and pixel scale (its own session, resized as the
    /// service resizes it); the frame (the caller disposes it) and the last result, for the annotation figures.</summary>
    private static (Mat Frame, Detection.DetectionResult Result) CameraDetector(BenchReport report, Detection.DetectorOptions options, int width, int height,
        double cameraScale, double modelScale, TimeSpan budget, TextWriter progress, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        progress.WriteLine($"bench: detector at {width}x{height} ...");
        var (frame, next) = StageBench.RenderPair(width, height, cameraScale);
        next.Dispose();
        try
        {
            using var scaled = StageBench.LoadDetector(options, cameraMicrometresPerPixel: cameraScale);
            var result = StageBench.Detector(report, scaled, frame, $"{width}x{height}",
                $"{width}x{height} camera at {cameraScale:0.###} um/px, resized to the model's {modelScale:0.###} um/px", budget);
            return (frame, result);
        }
        catch
        {
            frame.Dispose();
            throw;
        }
    }

    private static string MachineDescription()
    {
        var cpu = "unknown CPU";
        try
        {
            if (File.Exists("/proc/cpuinfo"))
                cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? cpu;
        }
        catch (IOException) { }
        return $"{cpu}, {Environment.ProcessorCount} logical cores, {RuntimeInformation.ProcessArchitecture}";
    }
}
