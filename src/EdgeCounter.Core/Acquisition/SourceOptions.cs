namespace EdgeCounter.Acquisition;

public enum SourceKind
{
    Simulated,
    Camera,
    Video,
    Folder,
}

/// <summary>Configuration section EdgeCounter:Source.</summary>
public sealed class SourceOptions
{
    public SourceKind Kind { get; set; } = SourceKind.Simulated;

    /// <summary>Camera: a V4L2 index ("0"), a device path ("/dev/video2") or a stream URL (rtsp://, http://).
    /// Video: a file path. Folder: a directory of images.</summary>
    public string? Path { get; set; }

    /// <summary>Requested capture size and rate (0 = the device's default).</summary>
    public int Width { get; set; }
    public int Height { get; set; }
    public double FramesPerSecond { get; set; }

    /// <summary>Camera four-character code, e.g. "MJPG" (empty = default).</summary>
    public string? FourCC { get; set; }

    /// <summary>Video: start again at the end.</summary>
    public bool Loop { get; set; }

    /// <summary>Video and simulator: deliver frames at their own rate (true) or as fast as they can be made.</summary>
    public bool RealTime { get; set; } = true;

    /// <summary>Folder: how long each image is shown, as if the stage stopped on it.</summary>
    public TimeSpan FolderImageHold { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Reopen back-off after a failure: first delay, doubling up to the maximum.</summary>
    public TimeSpan ReopenDelay { get; set; } = TimeSpan.FromSeconds(1);
    public TimeSpan MaxReopenDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Camera pixel scale, used to bring frames to the detector's scale (0 = same as the model).</summary>
    public double MicrometresPerPixel { get; set; }

    public SimulatorOptions Simulator { get; set; } = new();

    public IEnumerable<string> Validate()
    {
        switch (Kind)
        {
            case SourceKind.Camera when string.IsNullOrWhiteSpace(Path):
                yield return "EdgeCounter:Source:Path must name the camera (an index such as 0, a device path such as /dev/video0, or an rtsp:// or http:// URL) when Source:Kind is Camera";
                break;
            case SourceKind.Video when string.IsNullOrWhiteSpace(Path) || !File.Exists(Path):
                yield return $"EdgeCounter:Source:Path must be an existing video file when Source:Kind is Video (got '{Path}')";
                break;
            case SourceKind.Folder when string.IsNullOrWhiteSpace(Path) || !Directory.Exists(Path):
                yield return $"EdgeCounter:Source:Path must be an existing folder of images when Source:Kind is Folder (got '{Path}')";
                break;
        }
        if (FourCC is { Length: > 0 and not 4 })
            yield return $"EdgeCounter:Source:FourCC must be four characters, e.g. MJPG (got '{FourCC}')";
        if (Width < 0 || Height < 0 || Width > 8192 || Height > 8192)
            yield return $"EdgeCounter:Source:Width/Height must be 0 (device default) or up to 8192 (got {Width}x{Height})";
        if (FramesPerSecond is < 0 or > 240)
            yield return $"EdgeCounter:Source:FramesPerSecond must be 0 (device default) to 240 (got {FramesPerSecond})";
        if (FolderImageHold <= TimeSpan.Zero)
            yield return "EdgeCounter:Source:FolderImageHold must be positive";
        if (ReopenDelay <= TimeSpan.Zero)
            yield return "EdgeCounter:Source:ReopenDelay must be positive";
        if (MicrometresPerPixel is < 0 or > 100)
            yield return $"EdgeCounter:Source:MicrometresPerPixel must be 0 (model scale) or a positive pixel size in micrometres (got {MicrometresPerPixel})";
        if (MaxReopenDelay < ReopenDelay)
            yield return "EdgeCounter:Source:MaxReopenDelay must not be shorter than Source:ReopenDelay";
        if (Kind == SourceKind.Simulated)
            foreach (var e in Simulator.Validate()) yield return e;
    }
}

/// <summary>Configuration section EdgeCounter:Source:Simulator.</summary>
public sealed class SimulatorOptions
{
    public int Seed { get; set; } = 1;
    public string Profile { get; set; } = "blood";
    public int Width { get; set; } = 640;
    public int Height { get; set; } = 480;
    public double FramesPerSecond { get; set; } = 15;

    /// <summary>How long the simulated technician rests on each field.</summary>
    public TimeSpan StopDuration { get; set; } = TimeSpan.FromSeconds(1.5);

    /// <summary>Chance that the next stop goes back to a field already seen.</summary>
    public double RevisitProbability { get; set; } = 0.05;

    /// <summary>Simulated camera pixel size; 0.1 matches the shipped model.</summary>
    public double MicrometresPerPixel { get; set; } = 0.1;

    /// <summary>Fraction of a field that neighbouring fields of the stage's meander share (0..0.85), before jitter.</summary>
    public double FieldOverlap { get; set; } = 0.1;

    /// <summary>Random shift of each stop, as a fraction of the field size (0..0.3).</summary>
    public double FieldJitter { get; set; } = 0.05;

    /// <summary>Peak stage speed, micrometres per second.</summary>
    public double StageSpeed { get; set; } = 400;

    /// <summary>Stage acceleration, micrometres per second squared.</summary>
    public double StageAcceleration { get; set; } = 2000;

    /// <summary>Slide size in fields of the camera (the meander's rows are this many fields wide).</summary>
    public int SlideFieldsAcross { get; set; } = 40;

    public int SlideFieldsDown { get; set; } = 30;

    /// <summary>Chance that a meander step also moves sideways by part of a field (a diagonal move).</summary>
    public double DiagonalMoveProbability { get; set; }

    public IEnumerable<string> Validate()
    {
        if (!string.Equals(Profile, "blood", StringComparison.OrdinalIgnoreCase) && !string.Equals(Profile, "marrow", StringComparison.OrdinalIgnoreCase))
            yield return $"EdgeCounter:Source:Simulator:Profile must be 'blood' or 'marrow' (got '{Profile}')";
        if (FramesPerSecond is <= 0 or > 120)
            yield return $"EdgeCounter:Source:Simulator:FramesPerSecond must be within (0, 120] (got {FramesPerSecond})";
        if (StopDuration <= TimeSpan.Zero) yield return $"EdgeCounter:Source:Simulator:StopDuration must be positive (got {StopDuration})";
        if (RevisitProbability is < 0 or > 1) yield return $"EdgeCounter:Source:Simulator:RevisitProbability must be within 0..1 (got {RevisitProbability})";
        if (MicrometresPerPixel is <= 0 or > 10) yield return $"EdgeCounter:Source:Simulator:MicrometresPerPixel must be within (0, 10] (got {MicrometresPerPixel})";
        if (FieldOverlap is < 0 or > 0.85) yield return $"EdgeCounter:Source:Simulator:FieldOverlap must be within 0..0.85 (got {FieldOverlap})";
        if (FieldJitter is < 0 or > 0.3) yield return $"EdgeCounter:Source:Simulator:FieldJitter must be within 0..0.3 (got {FieldJitter})";
        if (StageSpeed is <= 0 or > 100_000 || StageAcceleration is <= 0 or > 1_000_000)
            yield return $"EdgeCounter:Source:Simulator:StageSpeed and StageAcceleration must be positive (got {StageSpeed}, {StageAcceleration})";
        if (SlideFieldsAcross is < 2 or > 1000 || SlideFieldsDown is < 2 or > 1000)
            yield return $"EdgeCounter:Source:Simulator:SlideFieldsAcross/SlideFieldsDown must be within 2..1000 (got {SlideFieldsAcross}x{SlideFieldsDown})";
        if (DiagonalMoveProbability is < 0 or > 1) yield return $"EdgeCounter:Source:Simulator:DiagonalMoveProbability must be within 0..1 (got {DiagonalMoveProbability})";
        if (Width is < 320 or > 4096 || Height is < 240 or > 4096)
            yield return $"EdgeCounter:Source:Simulator:Width/Height must be within 320x240..4096x4096 (got {Width}x{Height})";
    }
}
