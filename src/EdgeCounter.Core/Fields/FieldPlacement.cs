namespace EdgeCounter.Fields;

/// <summary>Where a stable field lies on the slide, as the service estimated it (never from simulator truth).</summary>
/// <param name="Known">False: registration failed (no overlap, too little texture, low confidence); X and Y mean nothing.</param>
/// <param name="X">Field top-left on the slide, frame pixels, in the coordinates of <paramref name="Segment"/>.</param>
/// <param name="Y">Field top-left on the slide, frame pixels.</param>
/// <param name="Segment">Positions compare only within one segment: the odometry starts a new one when it loses track.</param>
/// <param name="Anchored">The position was registered against an earlier counted field (not odometry alone).</param>
/// <param name="Confidence">Registration (or odometry) confidence, 0..1.</param>
/// <param name="AnchorField">Index (within the session) of the earlier field it was registered against, or -1.</param>
public sealed record FieldPlacement(bool Known, double X, double Y, int Segment, bool Anchored, double Confidence, int AnchorField = -1)
{
    public static FieldPlacement Unknown(int segment) => new(false, 0, 0, segment, false, 0);

    /// <summary>This field joined its segment to another: positions of segment From are now in Into's coordinates,
    /// shifted by (Dx, Dy). Whoever keeps positions per segment (the cell registry, the map) moves them the same way.</summary>
    public SegmentMerge? Merged { get; init; }
}

/// <summary>Segment <paramref name="From"/> becomes part of <paramref name="Into"/>: a position (x, y) in From is (x + Dx, y + Dy) in Into.</summary>
public sealed record SegmentMerge(int From, int Into, double Dx, double Dy);
