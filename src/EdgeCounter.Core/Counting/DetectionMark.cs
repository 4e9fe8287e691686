namespace EdgeCounter.Counting;

/// <summary>What the slide-coordinate registry made of one detection of a field.</summary>
/// <param name="AlreadyCounted">The cell was counted in an earlier field of this session (not added to the totals again).</param>
/// <param name="CountedInField">Field id the cell was (or is now) counted in; 0 while the field has no id yet.</param>
public readonly record struct DetectionMark(bool AlreadyCounted, long CountedInField)
{
    public static DetectionMark New => new(false, 0);
}
