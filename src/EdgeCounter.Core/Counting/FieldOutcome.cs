using EdgeCounter.Detection;
using EdgeCounter.Fields;

namespace EdgeCounter.Counting;

/// <summary>What became of a stable field.</summary>
public enum FieldFate
{
    /// <summary>No session was running, or it closed while the field was in detection (the count was refused).</summary>
    NotCounted,

    /// <summary>A field already counted in this session: skipped before detection.</summary>
    Revisit,

    /// <summary>The detector failed on the field; nothing counted.</summary>
    DetectionFailed,

    /// <summary>Detected and counted (its new cells only).</summary>
    Counted,
}

/// <summary>What happened to one stable field, for the sinks (publishing) and observers (console, simcheck, tests).
/// The field's image belongs to whoever handed the field in: read it during the call, never keep it.</summary>
/// <param name="Placement">Where the field lies on the slide; null when not estimated (no session running).</param>
public sealed record FieldOutcome(FieldFate Fate, StableField Field, FieldPlacement? Placement = null)
{
    public bool Revisit => Fate == FieldFate.Revisit;

    /// <summary>Best fingerprint similarity to a remembered field (0 when none was compared).</summary>
    public double RevisitMatch { get; init; }

    /// <summary>The detector's result; null when the field was not detected (no session, revisit, detection failed).</summary>
    public DetectionResult? Detection { get; init; }

    /// <summary>The counting session's answer; null when nothing was offered to it.</summary>
    public FieldCountResult? Count { get; init; }

    /// <summary>Per detection (same order): new or already counted, with the field ids filled in; null when every
    /// detection counts as new.</summary>
    public IReadOnlyList<DetectionMark>? Marks { get; init; }
}

/// <summary>Where the field processor hands each outcome (publishing is one). Called on the processor's thread, in
/// order; a sink ignores the fates it has nothing to do with.</summary>
public interface IFieldOutcomeSink
{
    void Accept(FieldOutcome outcome);
}

/// <summary>A sink whose message for a counted field must survive a power cut with the count itself: what it returns
/// is saved in the same atomic session write that counts the field (before any sink sees the outcome), and is handed
/// out again at the next start (<see cref="CountingService.LastFieldResult"/>).</summary>
public interface IFieldResultKeeper
{
    string ResultToKeep(FieldOutcome counted);
}
