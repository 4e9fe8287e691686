namespace EdgeCounter.Fields;

/// <summary>Configuration section EdgeCounter:Fields: when a field counts as still and sharp.</summary>
public sealed class FieldOptions
{
    /// <summary>Width of the grey copy each frame is scored on; smaller is cheaper, too small misses small motion.</summary>
    public int ScoringWidth { get; set; } = 160;

    /// <summary>How long the stage must be still before the field is taken.</summary>
    public TimeSpan Debounce { get; set; } = TimeSpan.FromMilliseconds(300);

    /// <summary>Mean absolute grey difference (0..255) against the previous frame above which the stage is moving.</summary>
    public double MotionThreshold { get; set; } = 2.0;

    /// <summary>A still field is sharp when its focus is at least this fraction of the best focus of recent fields.</summary>
    public double SharpFraction { get; set; } = 0.5;

    /// <summary>Focus must be steady over the debounce window (min/max at least this) so a settling focus is waited out.</summary>
    public double FocusSteadiness { get; set; } = 0.85;

    /// <summary>How many counted fields are remembered to recognise a field the technician returns to.</summary>
    public int RevisitMemory { get; set; } = 256;

    /// <summary>Correlation (0..1) above which a field is the same as one already counted.</summary>
    public double RevisitSimilarity { get; set; } = 0.85;

    public IEnumerable<string> Validate()
    {
        if (ScoringWidth is < 64 or > 1920) yield return $"EdgeCounter:Fields:ScoringWidth must be within 64..1920 (got {ScoringWidth})";
        if (Debounce < TimeSpan.Zero || Debounce > TimeSpan.FromSeconds(30)) yield return $"EdgeCounter:Fields:Debounce must be within 0..30 s (got {Debounce})";
        if (MotionThreshold is <= 0 or > 255) yield return $"EdgeCounter:Fields:MotionThreshold must be within (0, 255] (got {MotionThreshold})";
        if (SharpFraction is < 0 or > 1) yield return $"EdgeCounter:Fields:SharpFraction must be within 0..1 (got {SharpFraction})";
        if (FocusSteadiness is < 0 or > 1) yield return $"EdgeCounter:Fields:FocusSteadiness must be within 0..1 (got {FocusSteadiness})";
        if (RevisitMemory is < 0 or > 100_000) yield return $"EdgeCounter:Fields:RevisitMemory must be within 0..100000 (got {RevisitMemory})";
        if (RevisitSimilarity is <= 0 or > 1) yield return $"EdgeCounter:Fields:RevisitSimilarity must be within (0, 1] (got {RevisitSimilarity})";
    }
}
