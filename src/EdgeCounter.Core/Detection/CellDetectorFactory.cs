using Microsoft.Extensions.Logging;

namespace EdgeCounter.Detection;

/// <summary>When the detector estimates the pixel scale from the red cells' size (<see cref="AutoScalingDetector"/>).</summary>
public enum AutoScaleMode
{
    /// <summary>The configured (or default) input scale, fixed.</summary>
    Off,
    /// <summary>Estimated when the model has a red-cell class; else a warning and the fixed scale (the service).</summary>
    WhenPossible,
    /// <summary>Estimated, or the model is refused (a command asked for it).</summary>
    Required,
}

/// <summary>The one way the service and the commands (<c>eval</c>, <c>count</c>, <c>bench</c>) get a detector: the
/// session core on the model's family (sidecar <c>family</c>), with automatic pixel-scale calibration as asked.</summary>
public static class CellDetectorFactory
{
    /// <exception cref="ModelLoadException">The model or its sidecar cannot be used (the message names the problem).</exception>
    public static ICellDetector Create(DetectorOptions options, ILoggerFactory loggers, AutoScaleMode autoScale)
    {
        var detector = Open(options, loggers.CreateLogger<OnnxCellDetector>());
        if (autoScale == AutoScaleMode.Off) return detector;
        if (detector.Labels.RedCellClass is null)
        {
            if (autoScale == AutoScaleMode.Required)
            {
                detector.Dispose();
                throw new ModelLoadException($"automatic pixel scale: model {detector.Model.Name} {detector.Model.Version} has no red-cell class (sidecar redCellClass) to measure the scale by");
            }
            loggers.CreateLogger<AutoScalingDetector>().LogWarning(
                "Detector:AutoScale: the model has no red-cell class to measure the pixel scale by; frames go in at input scale {Scale} (set Source:MicrometresPerPixel)", detector.InputScale);
            return detector;
        }
        return new AutoScalingDetector(detector, loggers.CreateLogger<AutoScalingDetector>());
    }

    /// <summary>The session core alone, at its fixed input scale (benchmarks time its stages).</summary>
    /// <exception cref="ModelLoadException">The model or its sidecar cannot be used.</exception>
    public static OnnxCellDetector Open(DetectorOptions options, ILogger logger) => new(options, logger);
}
