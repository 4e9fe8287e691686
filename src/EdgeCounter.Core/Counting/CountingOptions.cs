namespace EdgeCounter.Counting;

/// <summary>Configuration section "Counting".</summary>
public sealed class CountingOptions
{
    public const string SectionName = "Counting";
    public const int MaxTarget = 100_000;

    /// <summary>Blood: the model's groups and a white-cell differential. Marrow: the paper's seven categories, the M:E
    /// ratio and the plasma-cell percentage over nucleated cells (<see cref="MarrowDifferential"/>).</summary>
    public CountingMode Mode { get; set; } = CountingMode.Blood;

    /// <summary>Cells (sum over the differential labels: white cells, or nucleated cells in marrow mode) after which a
    /// session completes by itself; unset: 100 in blood mode, 500 in marrow mode.</summary>
    public int? DefaultTarget { get; set; }

    public int EffectiveDefaultTarget => DefaultTarget ?? (Mode == CountingMode.Marrow ? MarrowDifferential.DefaultTarget : 100);

    /// <summary>Sample id of the session opened automatically at first start.</summary>
    public string DefaultSampleId { get; set; } = "";

    /// <summary>Extra report groups (e.g. the paper's categories): group name to the model labels it adds up.</summary>
    public Dictionary<string, string[]> ExtraGroups { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Name of the session file inside the service's state directory.</summary>
    public string StateFileName { get; set; } = "counting-session.json";

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (!Enum.IsDefined(Mode)) errors.Add($"Counting:Mode must be blood or marrow (is {Mode}).");
        if (DefaultTarget is < 1 or > MaxTarget)
            errors.Add($"Counting:DefaultTarget must be 1..{MaxTarget} (is {DefaultTarget}).");
        if (DefaultSampleId.Length > SessionCommandParser.MaxSampleIdLength)
            errors.Add($"Counting:DefaultSampleId is longer than {SessionCommandParser.MaxSampleIdLength} characters.");
        if (string.IsNullOrWhiteSpace(StateFileName) || StateFileName.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0)
            errors.Add("Counting:StateFileName must be a plain file name.");
        foreach (var (name, members) in ExtraGroups)
            if (members is null || members.Length == 0) errors.Add($"Counting:ExtraGroups:{name} is empty.");
        return errors;
    }
}
