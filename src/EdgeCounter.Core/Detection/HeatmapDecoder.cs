namespace EdgeCounter.Detection;

/// <summary>A decoded peak before labels are attached: class channel, subtype channel (-1 if none), score, box.</summary>
public readonly record struct RawDetection(int ClassIndex, int SubtypeIndex, float Score, BoxF Box);

/// <summary>Shape of the model outputs for one image: C classes, S subtypes, an h×w grid at <c>Stride</c> input pixels per cell.</summary>
public readonly record struct OutputGeometry(int Classes, int Subtypes, int Height, int Width, int Stride)
{
    public int Plane => Height * Width;
}

/// <summary>
/// Turns the CenterNet-style outputs (docs/model-contract.md) into boxes. Pure: reads float spans laid out
/// [C, h, w] / [2, h, w] / [S, h, w] (batch of one), writes into a caller-owned list so buffers are reused.
/// </summary>
public static class HeatmapDecoder
{
    /// <summary>
    /// Appends every heatmap peak whose score is above its class threshold (strictly, as the training recipe's decode). The heatmap is already peak-filtered by
    /// the model (non-maxima are 0), so a scan with a threshold is the whole peak search.
    /// </summary>
    /// <param name="subtypeClassIndex">Class whose detections read the subtype softmax; -1 for none.</param>
    public static void Decode(
        ReadOnlySpan<float> heatmap,
        ReadOnlySpan<float> size,
        ReadOnlySpan<float> offset,
        ReadOnlySpan<float> subtype,
        OutputGeometry g,
        ReadOnlySpan<float> classThresholds,
        int subtypeClassIndex,
        List<RawDetection> output)
    {
        var plane = g.Plane;
        if (heatmap.Length < g.Classes * plane) throw new ArgumentException($"heatmap holds {heatmap.Length} values, expected {g.Classes * plane}");
        if (size.Length < 2 * plane) throw new ArgumentException($"size holds {size.Length} values, expected {2 * plane}");
        if (offset.Length < 2 * plane) throw new ArgumentException($"offset holds {offset.Length} values, expected {2 * plane}");
        if (classThresholds.Length < g.Classes) throw new ArgumentException("one threshold per class is needed");
        var readSubtypes = subtypeClassIndex >= 0 && g.Subtypes > 0;
        if (readSubtypes && subtype.Length < g.Subtypes * plane) throw new ArgumentException($"subtype holds {subtype.Length} values, expected {g.Subtypes * plane}");

        for (var c = 0; c < g.Classes; c++)
        {
            var threshold = classThresholds[c];
            var channel = heatmap.Slice(c * plane, plane);
            for (var k = 0; k < plane; k++)
            {
                var score = channel[k];
                // Also rejects NaN; with a zero threshold a peak still needs some score.
                if (!(score > threshold)) continue;
                var i = k / g.Width;
                var j = k - i * g.Width;
                var cx = (j + offset[k]) * g.Stride;
                var cy = (i + offset[plane + k]) * g.Stride;
                var halfW = size[k] * 0.5f;
                var halfH = size[plane + k] * 0.5f;
                var sub = -1;
                if (readSubtypes && c == subtypeClassIndex)
                {
                    var best = float.NegativeInfinity;
                    for (var s = 0; s < g.Subtypes; s++)
                    {
                        var p = subtype[s * plane + k];
                        if (p > best) { best = p; sub = s; }
                    }
                }
                output.Add(new RawDetection(c, sub, score, new BoxF(cx - halfW, cy - halfH, cx + halfW, cy + halfH)));
            }
        }
    }
}

/// <summary>Class-aware greedy non-maximum suppression: a box suppresses boxes of its own class; optionally (the
/// sidecar's <c>crossClassIou</c> and <c>containment</c>) each cell is also kept once: as one class, and whole.</summary>
public static class MultiClassNms
{
    /// <summary>Candidates per class that take part in NMS, highest scores first: a guard against a flood of
    /// low peaks (the training recipe's decode uses the same top-k, over all classes).</summary>
    public const int PreNmsTopK = 500;

    /// <summary>
    /// Sorts <paramref name="detections"/> by score (highest first) and keeps, in place, each box whose IoU with every
    /// kept box of its class is at most <paramref name="iouThreshold"/>, up to <paramref name="maxDetections"/> in all,
    /// or per class when <paramref name="limitPerClass"/> (evaluation: one crowded class must not starve the others).
    /// When set, a box is also dropped when its IoU with a kept box of another class exceeds
    /// <paramref name="crossClassIou"/> (the same cell seen as two classes: a pale white cell also boxed as a red
    /// cell), or when more than <paramref name="containment"/> of its area lies inside a kept box of its own class (a
    /// part of that cell: a nucleus lobe boxed apart). The recipe's decode applies the same rules (one_cell_each).
    /// <paramref name="suppressorFloor"/> (per class; evaluation, which decodes below the operating thresholds): only
    /// a kept box at or above its class's floor drops others by these two rules, so the detections at the operating
    /// thresholds are exactly those of a decode at them. <paramref name="crossClassOf"/> (per class; null: every class):
    /// the cross-class rule compares only pairs of two marked classes. <paramref name="partsOf"/> (per class; null:
    /// none; needs <paramref name="containment"/>): classes whose cells are boxed in parts as well, e.g. the lobes of a
    /// segmented nucleus scored above the whole cell: a box that two or more kept boxes of its class lie inside (each
    /// more than <paramref name="containment"/>) replaces them.
    /// </summary>
    public static void Apply(List<RawDetection> detections, float iouThreshold, int maxDetections, bool limitPerClass = false,
        float? crossClassIou = null, float? containment = null, IReadOnlyList<float>? suppressorFloor = null,
        IReadOnlyList<bool>? crossClassOf = null, IReadOnlyList<bool>? partsOf = null)
    {
        // Stable order for equal scores (class, then position) so runs and platforms agree.
        detections.Sort(static (a, b) =>
        {
            var s = b.Score.CompareTo(a.Score);
            if (s != 0) return s;
            s = a.ClassIndex.CompareTo(b.ClassIndex);
            if (s != 0) return s;
            s = a.Box.Y1.CompareTo(b.Box.Y1);
            return s != 0 ? s : a.Box.X1.CompareTo(b.Box.X1);
        });
        var classes = 0;
        foreach (var d in detections) classes = Math.Max(classes, d.ClassIndex + 1);
        Span<int> candidates = classes <= 64 ? stackalloc int[classes] : new int[classes];
        Span<int> keptOfClass = classes <= 64 ? stackalloc int[classes] : new int[classes];
        var kept = 0;
        for (var n = 0; n < detections.Count; n++)
        {
            var candidate = detections[n];
            var c = candidate.ClassIndex;
            if (++candidates[c] > PreNmsTopK) continue;
            if (limitPerClass ? keptOfClass[c] >= maxDetections : kept >= maxDetections) continue;
            var suppressed = false;
            for (var k = 0; k < kept; k++)
            {
                var other = detections[k];
                if (other.ClassIndex == c && other.Box.IoU(candidate.Box) > iouThreshold) { suppressed = true; break; }
                if (suppressorFloor is not null && other.Score < suppressorFloor[other.ClassIndex]) continue;
                if (other.ClassIndex == c
                        ? containment is { } inside && candidate.Box.FractionInside(other.Box) > inside
                        : crossClassIou is { } across && (crossClassOf is null || (crossClassOf[c] && crossClassOf[other.ClassIndex]))
                          && other.Box.IoU(candidate.Box) > across) { suppressed = true; break; }
            }
            if (suppressed) continue;
            // The whole of a cell whose parts scored above it (the lobes of a segmented nucleus, boxed apart): a box
            // with two or more kept boxes of its class inside it is the cell, they are its parts.
            if (partsOf is not null && partsOf[c] && containment is { } whole && (suppressorFloor is null || candidate.Score >= suppressorFloor[c]))
                kept = DropParts(detections, kept, candidate, whole, ref keptOfClass[c]);
            detections[kept++] = candidate;
            keptOfClass[c]++;
        }
        detections.RemoveRange(kept, detections.Count - kept);
    }

    /// <summary>Drops from the first <paramref name="kept"/> detections the parts of <paramref name="whole"/> (kept boxes of
    /// its class more than <paramref name="containment"/> inside it) when there are two or more, keeping the others'
    /// order; returns the new count. One box inside another is left alone: a cell inside a wrong, larger box.</summary>
    private static int DropParts(List<RawDetection> detections, int kept, RawDetection whole, float containment, ref int keptOfClass)
    {
        bool IsPart(RawDetection d) => d.ClassIndex == whole.ClassIndex && d.Box.FractionInside(whole.Box) > containment;
        var parts = 0;
        for (var k = 0; k < kept; k++) if (IsPart(detections[k])) parts++;
        if (parts < 2) return kept;
        var left = 0;
        for (var k = 0; k < kept; k++) if (!IsPart(detections[k])) detections[left++] = detections[k];
        keptOfClass -= parts;
        return left;
    }
}
