using EdgeCounter.Acquisition;

namespace EdgeCounter.Simulation;

/// <summary>The service's simulator settings (EdgeCounter:Source:Simulator, plain settings in Core) as the microscope's options.</summary>
public static class SimulatorOptionsExtensions
{
    private static readonly TimeSpan DefaultJitter = new MicroscopeOptions().StopDurationJitter;

    public static MicroscopeOptions ToMicroscopeOptions(this SimulatorOptions o) => new()
    {
        Seed = (ulong)o.Seed,
        Profile = string.Equals(o.Profile, "marrow", StringComparison.OrdinalIgnoreCase) ? SlideProfile.Marrow : SlideProfile.Blood,
        Width = o.Width,
        Height = o.Height,
        FramesPerSecond = o.FramesPerSecond,
        StopDuration = o.StopDuration,
        // The microscope's default jitter (0.5 s) must stay below the stop: short stops vary by up to half their length.
        StopDurationJitter = o.StopDuration >= 2 * DefaultJitter ? DefaultJitter : o.StopDuration / 2,
        RevisitProbability = o.RevisitProbability,
        MicrometresPerPixel = o.MicrometresPerPixel,
        FieldOverlap = o.FieldOverlap,
        FieldJitter = o.FieldJitter,
        StageSpeed = o.StageSpeed,
        StageAcceleration = o.StageAcceleration,
        DiagonalMoveProbability = o.DiagonalMoveProbability,
        SlideFieldsAcross = o.SlideFieldsAcross,
        SlideFieldsDown = o.SlideFieldsDown,
    };
}
