namespace EdgeCounter.Counting;

/// <summary>Configuration section "Counting".</summary>
public sealed class CountingOptions
{
    public const string SectionName = "Counting";
    public const int MaxTarget = 100_000;

    /// <summary>White cells (sum over the differential labels) after which a session completes by itself.</summary>
    public int DefaultTarget { get; set; } = 100;

    /// <summary>Sample id of the session opened automatically at first start.</summary>
    public string DefaultSampleId { get; set; } = "";

    /// <summary>Extra report groups (e.g. the paper's categories): group name to the model labels it adds up.</summary>
    public Dictionary<string, string[]> ExtraGroups { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Name of the session file inside the service's state directory.</summary>
    public string StateFileName { get; set; } = "counting-session.json";

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (DefaultTarget < 1 || DefaultTarget > MaxTarget)
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
