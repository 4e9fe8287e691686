namespace EdgeCounter.Counting;

/// <summary>What the slide-coordinate registry made of one detection of a field.</summary>
/// <param name="AlreadyCounted">The cell was counted in an earlier field of this session (not added to the totals again).</param>
/// <param name="CountedInField">Field id the cell was (or is now) counted in; 0 while the field has no id yet.</param>
/// <param name="MovedFrom">For a new detection: the earlier field whose count of this cell (seen there cut by the frame
/// edge) moves to this field, where the cell is whole (the counting-frame rule); 0 when none.</param>
/// <param name="MovedFromLabel">The label the cell was counted under in <paramref name="MovedFrom"/> (taken off its total).</param>
public readonly record struct DetectionMark(bool AlreadyCounted, long CountedInField, long MovedFrom = 0, string? MovedFromLabel = null)
{
    /// <summary>The session's id of the cell (what review names): this detection's own when new, the earlier count's
    /// when already counted; 0 when not known (no id given, or a cell of a field with no known position).</summary>
    public long CellId { get; init; }

    public static DetectionMark New => new(false, 0);

    /// <summary>A new count that replaces an earlier field's count of the same cell.</summary>
    public bool Moved => MovedFrom != 0;
}
