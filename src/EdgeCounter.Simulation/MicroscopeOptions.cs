namespace EdgeCounter.Simulation;

/// <summary>Which kind of smear the slide is.</summary>
public enum SlideProfile
{
    /// <summary>Peripheral blood: RBC, platelets and the five white-cell types.</summary>
    Blood,

    /// <summary>Bone marrow: more nucleated cells (granulocytic precursors, erythroblasts, blasts), plasma cells and occasional megakaryocytes.</summary>
    Marrow,
}

/// <summary>One stop of an explicit stage script (hand-checkable runs).</summary>
/// <param name="X">Top-left of the field on the slide, slide pixels.</param>
/// <param name="Y">Top-left of the field on the slide, slide pixels.</param>
/// <param name="Duration">How long the stage stays still there. The last stop lasts for ever.</param>
/// <param name="InitialDefocusSigma">Defocus (Gaussian sigma, frame pixels) on arrival; settles to 0 over FocusSettleTime.</param>
public sealed record ScriptedStop(int X, int Y, TimeSpan Duration, double InitialDefocusSigma = 0);

/// <summary>Everything that defines a simulated microscope run. Same options (seed included) = same frames.</summary>
public sealed class MicroscopeOptions
{
    public ulong Seed { get; set; } = 1;

    public SlideProfile Profile { get; set; } = SlideProfile.Blood;

    // Camera
    public int Width { get; set; } = 640;

    public int Height { get; set; } = 480;

    public double FramesPerSecond { get; set; } = 30;

    /// <summary>Exposure time per frame; motion blur is the stage travel during it.</summary>
    public TimeSpan Exposure { get; set; } = TimeSpan.FromMilliseconds(8);

    /// <summary>Pixel scale of the camera (and of the slide's pixel grid).</summary>
    public double MicrometresPerPixel { get; set; } = 0.1;

    /// <summary>Sensor noise standard deviation in grey levels; null = drawn per slide (1.5..3.5).</summary>
    public double? NoiseSigma { get; set; }

    /// <summary>JPEG quality of the camera's compression artefacts (1..100); 0 = raw frames (default, fastest).</summary>
    public int JpegQuality { get; set; }

    // Slide
    /// <summary>Slide size, in fields of the camera (Width x Height).</summary>
    public int SlideFieldsAcross { get; set; } = 40;

    public int SlideFieldsDown { get; set; } = 30;

    // Stage
    /// <summary>Mean time the stage rests at each field.</summary>
    public TimeSpan StopDuration { get; set; } = TimeSpan.FromSeconds(1.5);

    /// <summary>Each stop lasts StopDuration plus or minus up to this (uniform).</summary>
    public TimeSpan StopDurationJitter { get; set; } = TimeSpan.FromSeconds(0.5);

    /// <summary>Peak stage speed, micrometres per second.</summary>
    public double StageSpeed { get; set; } = 400;

    /// <summary>Stage acceleration and deceleration, micrometres per second squared.</summary>
    public double StageAcceleration { get; set; } = 2000;

    /// <summary>Fraction of a field that neighbouring meander fields share (0..0.9), before jitter.</summary>
    public double FieldOverlap { get; set; } = 0.1;

    /// <summary>Random shift of each meander stop, as a fraction of the field size.</summary>
    public double FieldJitter { get; set; } = 0.05;

    /// <summary>
    /// Chance that a meander step is diagonal: besides the step along the row it moves across the row by up to half
    /// the free part of a field (1 - FieldOverlap), as a technician's hand does. Overlap along the row is kept.
    /// </summary>
    public double DiagonalMoveProbability { get; set; }

    /// <summary>Chance that the next stop returns to one of the last few fields.</summary>
    public double RevisitProbability { get; set; } = 0.05;

    /// <summary>Chance that a stop starts out of focus.</summary>
    public double DefocusProbability { get; set; } = 0.5;

    /// <summary>Largest defocus sigma (frame pixels at 0.1 um/px; scaled with pixel size) a stop can start with.</summary>
    public double MaxInitialDefocusSigma { get; set; } = 5;

    /// <summary>Time for a defocused stop to settle to sharp (linear in sigma).</summary>
    public TimeSpan FocusSettleTime { get; set; } = TimeSpan.FromSeconds(0.4);

    /// <summary>Defocus sigma while the stage moves (focus is never perfect in motion).</summary>
    public double MovingDefocusSigma { get; set; } = 1.0;

    /// <summary>Explicit stops instead of the meander (tests, demos). Null = the endless meander.</summary>
    public IReadOnlyList<ScriptedStop>? Stops { get; set; }

    /// <summary>
    /// Rendered slide tiles kept in memory (256x256 each, about 200 KB). Null = enough for the field in view, the
    /// path to the next one and the next one: 3 fields' worth plus 32 (194 tiles, about 38 MB, at 1920x1080; 68 at 640x480).
    /// </summary>
    public int? TileCacheCapacity { get; set; }

    internal int EffectiveTileCacheCapacity =>
        TileCacheCapacity ?? 3 * ((Width + 255) / 256 + 1) * ((Height + 255) / 256 + 1) + 32;

    /// <summary>
    /// Time a still frame may spend rendering the slide tiles of the path to the next stop, so frames in motion
    /// do not stall on tile rendering. Zero disables it. Never changes what a frame shows.
    /// </summary>
    public TimeSpan PrefetchBudget { get; set; } = TimeSpan.FromMilliseconds(12);

    public int SlideWidthPixels => checked(SlideFieldsAcross * Width);

    public int SlideHeightPixels => checked(SlideFieldsDown * Height);

    /// <summary>A copy, so later changes to these options do not reach a running microscope.</summary>
    public MicroscopeOptions Copy()
    {
        var copy = (MicroscopeOptions)MemberwiseClone();
        copy.Stops = Stops?.ToArray();
        return copy;
    }

    public void Validate()
    {
        static void Require(bool ok, string message)
        {
            if (!ok) throw new ArgumentException(message);
        }

        Require(Width is >= 64 and <= 4096 && Height is >= 64 and <= 4096, "Width and Height must be 64..4096");
        Require(FramesPerSecond is > 0 and <= 1000, "FramesPerSecond must be in (0, 1000]");
        Require(Exposure > TimeSpan.Zero && Exposure.TotalSeconds <= 1.0 / FramesPerSecond, "Exposure must be positive and at most one frame interval");
        Require(MicrometresPerPixel is >= 0.02 and <= 1, "MicrometresPerPixel must be 0.02..1");
        Require(NoiseSigma is null or (>= 0 and <= 50), "NoiseSigma must be 0..50");
        Require(JpegQuality is >= 0 and <= 100, "JpegQuality must be 0..100");
        Require(SlideFieldsAcross is >= 2 and <= 1000 && SlideFieldsDown is >= 2 and <= 1000, "slide must be 2..1000 fields each way");
        Require(StopDuration > TimeSpan.Zero && StopDurationJitter >= TimeSpan.Zero && StopDurationJitter < StopDuration, "StopDuration must exceed StopDurationJitter >= 0");
        Require(StageSpeed > 0 && StageAcceleration > 0, "StageSpeed and StageAcceleration must be positive");
        Require(FieldOverlap is >= 0 and < 0.9, "FieldOverlap must be 0..0.9");
        Require(FieldJitter is >= 0 and <= 0.3, "FieldJitter must be 0..0.3");
        Require(DiagonalMoveProbability is >= 0 and <= 1, "DiagonalMoveProbability must be 0..1");
        Require(RevisitProbability is >= 0 and <= 1 && DefocusProbability is >= 0 and <= 1, "probabilities must be 0..1");
        Require(MaxInitialDefocusSigma >= 0 && MovingDefocusSigma >= 0, "defocus sigmas must be >= 0");
        Require(FocusSettleTime >= TimeSpan.Zero, "FocusSettleTime must be >= 0");
        Require(TileCacheCapacity is null or >= 16, "TileCacheCapacity must be >= 16");
        Require(PrefetchBudget >= TimeSpan.Zero, "PrefetchBudget must be >= 0");
        if (Stops is not null)
        {
            Require(Stops.Count > 0, "Stops, when given, must not be empty");
            foreach (var s in Stops)
            {
                Require(s.Duration > TimeSpan.Zero, "every scripted stop needs a positive Duration");
                Require(s.X >= 0 && s.Y >= 0 && s.X + Width <= SlideWidthPixels && s.Y + Height <= SlideHeightPixels, $"scripted stop ({s.X},{s.Y}) leaves the slide");
                Require(s.InitialDefocusSigma >= 0, "InitialDefocusSigma must be >= 0");
            }
        }
    }
}
