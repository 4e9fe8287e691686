using EdgeCounter.Acquisition;
using EdgeCounter.Counting;
using EdgeCounter.Detection;
using EdgeCounter.Fields;
using EdgeCounter.Publishing;
using EdgeCounter.Storage;

namespace EdgeCounter.Hosting;

/// <summary>Configuration section "EdgeCounter" (config/appsettings.json, environment EdgeCounter__..., command line --EdgeCounter:...).</summary>
public sealed class EdgeCounterOptions
{
    public const string SectionName = "EdgeCounter";

    /// <summary>Names this microscope in topics and logs; defaults to the host name.</summary>
    public string DeviceId { get; set; } = "";

    /// <summary>Where the open session and the MQTT outbox are kept; defaults to a per-user data folder.</summary>
    public string StateDirectory { get; set; } = "";

    /// <summary>Free space the state directory's filesystem keeps for results: below it the outbox stops keeping
    /// images on disk (they are still sent live). 0: no reserve.</summary>
    public long StateDiskReserveBytes { get; set; } = StorageMonitor.DefaultReserveBytes;

    /// <summary>Print one line per counted field (for a person watching the console).</summary>
    public bool ConsoleFieldLines { get; set; } = true;

    /// <summary>A field in detection longer than this is reported as stuck (and the watchdog is no longer fed).</summary>
    public TimeSpan StuckDetectionAfter { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often free memory is handed back to the system (a compacting collection and malloc_trim); 0: never
    /// (the default: it lowered a long run's level by ~6 % but did not flatten it, docs/reliability.md).</summary>
    public TimeSpan MemoryTrimInterval { get; set; } = TimeSpan.Zero;

    public SourceOptions Source { get; set; } = new();
    public FieldOptions Fields { get; set; } = new();
    public DetectorOptions Detector { get; set; } = new();
    public CountingOptions Counting { get; set; } = new();
    public Reporting.ReportOptions Report { get; set; } = new();
    public MqttOptions Mqtt { get; set; } = new();
    public Web.WebOptions Web { get; set; } = new();

    public string EffectiveDeviceId => string.IsNullOrWhiteSpace(DeviceId) ? Environment.MachineName.ToLowerInvariant() : DeviceId;

    public string EffectiveStateDirectory => string.IsNullOrWhiteSpace(StateDirectory)
        ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create), "edgecounter")
        : Path.GetFullPath(StateDirectory);

    /// <summary>Every problem with the settings, each naming its key; empty when the service can start.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (DeviceId.IndexOfAny(['/', '+', '#', ' ']) >= 0) errors.Add($"EdgeCounter:DeviceId must not contain '/', '+', '#' or spaces (got '{DeviceId}')");
        if (StateDiskReserveBytes < 0) errors.Add($"EdgeCounter:StateDiskReserveBytes must be 0 or more (is {StateDiskReserveBytes})");
        if (StuckDetectionAfter <= TimeSpan.Zero) errors.Add("EdgeCounter:StuckDetectionAfter must be positive");
        if (MemoryTrimInterval < TimeSpan.Zero || (MemoryTrimInterval > TimeSpan.Zero && MemoryTrimInterval < TimeSpan.FromSeconds(10)))
            errors.Add($"EdgeCounter:MemoryTrimInterval must be 0 (off) or at least 10 seconds (is {MemoryTrimInterval})");
        errors.AddRange(Source.Validate());
        errors.AddRange(Fields.Validate());
        try { Detector.Validate(); } catch (ArgumentException e) { errors.Add(e.Message); }
        errors.AddRange(Counting.Validate());
        errors.AddRange(Report.Validate());
        errors.AddRange(Mqtt.Validate());
        errors.AddRange(Web.Validate());
        return errors.Select(e => e.StartsWith(SectionName + ":", StringComparison.Ordinal) ? e : $"{SectionName}:{e}").ToList();
    }
}
