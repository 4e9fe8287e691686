namespace EdgeCounter.Detection;

/// <summary>
/// Drops boxes too small to be a whole cell of their class, measured against the red cells of the same image, so the
/// rule holds at any magnification and camera: no white cell is less than about half a red cell across (the smallest,
/// small lymphocytes, are about one), while a platelet or a nucleus lobe boxed as a white cell is. Only whole boxes
/// are judged (one cut by the image edge shows part of its cell), and only when the image has enough whole,
/// confident red cells to measure (else nothing is dropped). Size is √(w·h), as the red-cell ruler measures it.
/// Pure and allocation-free apart from the caller's list.
/// </summary>
public static class CellSizeRule
{
    /// <summary>Fewer whole confident red cells than this: their median is no ruler.</summary>
    public const int MinRedCells = 5;

    private const int MaxRulerCells = 512;

    /// <param name="detections">Boxes in image pixels (after NMS); filtered in place, order kept.</param>
    /// <param name="minSizeOfRedCell">Per class, in class order: the smallest whole box as a fraction of the median red
    /// cell (0: no rule for that class).</param>
    /// <param name="redClass">The red-cell class index.</param>
    /// <param name="redScoreFloor">Red cells below this score are not used as the ruler (the operating threshold, so
    /// an evaluation that decodes below it measures what the service would).</param>
    /// <param name="imageWidth">Width of the image region (without padding), in the boxes' pixels.</param>
    /// <param name="imageHeight">Height of the image region, likewise.</param>
    /// <param name="imageLeft">Where the image region starts (a letterbox pads before it), likewise.</param>
    /// <param name="imageTop">Likewise, vertically.</param>
    /// <returns>The median red-cell size used (NaN when too few red cells to judge).</returns>
    public static float Apply(List<RawDetection> detections, IReadOnlyList<float> minSizeOfRedCell, int redClass, float redScoreFloor,
        float imageWidth, float imageHeight, float imageLeft = 0, float imageTop = 0)
    {
        Span<float> sizes = stackalloc float[MaxRulerCells];
        var n = 0;
        foreach (var d in detections)
            if (d.ClassIndex == redClass && d.Score >= redScoreFloor && n < MaxRulerCells && !d.Box.IsCutBy(imageLeft, imageTop, imageWidth, imageHeight))
                sizes[n++] = Size(d.Box);
        if (n < MinRedCells) return float.NaN;
        sizes = sizes[..n];
        sizes.Sort();
        var median = n % 2 == 1 ? sizes[n / 2] : (sizes[n / 2 - 1] + sizes[n / 2]) / 2;

        var kept = 0;
        for (var i = 0; i < detections.Count; i++)
        {
            var d = detections[i];
            var min = d.ClassIndex < minSizeOfRedCell.Count ? minSizeOfRedCell[d.ClassIndex] : 0;
            if (min > 0 && Size(d.Box) < min * median && !d.Box.IsCutBy(imageLeft, imageTop, imageWidth, imageHeight)) continue;
            detections[kept++] = d;
        }
        detections.RemoveRange(kept, detections.Count - kept);
        return median;
    }

    private static float Size(BoxF box) => MathF.Sqrt(box.Width * box.Height);
}
