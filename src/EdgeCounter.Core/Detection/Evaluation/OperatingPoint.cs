namespace EdgeCounter.Detection;

/// <summary>True/false positives and misses of one class at the detector's operating thresholds (IoU ≥ 0.5).</summary>
public sealed class OperatingPointCounts
{
    public int TruePositives { get; set; }
    public int FalsePositives { get; set; }
    public int Missed { get; set; }
    public double Precision => TruePositives + FalsePositives == 0 ? double.NaN : (double)TruePositives / (TruePositives + FalsePositives);
    public double Recall => TruePositives + Missed == 0 ? double.NaN : (double)TruePositives / (TruePositives + Missed);
}

/// <summary>The count error the product's users see: the cells counted at the operating threshold against the truth.</summary>
public static class CountError
{
    /// <summary>100 × (counted − truth) / truth, summed over a whole set; NaN without truth.</summary>
    public static double Percent(double counted, double truth) => truth > 0 ? 100 * (counted - truth) / truth : double.NaN;
}

/// <summary>Greedy, score-ordered one-to-one matching of detections to ground truth at an IoU threshold (VOC style).</summary>
public static class BoxMatcher
{
    /// <summary>For each detection (in the given order) the index of the ground-truth box it matched, or -1.</summary>
    public static int[] Match(IReadOnlyList<(float Score, BoxF Box)> detections, IReadOnlyList<BoxF> truth, double iouThreshold = 0.5)
    {
        var order = Enumerable.Range(0, detections.Count).OrderByDescending(i => detections[i].Score).ToArray();
        var taken = new bool[truth.Count];
        var result = new int[detections.Count];
        Array.Fill(result, -1);
        foreach (var d in order)
        {
            var best = -1;
            double bestIou = iouThreshold;
            for (var g = 0; g < truth.Count; g++)
            {
                if (taken[g]) continue;
                var iou = detections[d].Box.IoU(truth[g]);
                if (iou >= bestIou) { bestIou = iou; best = g; }
            }
            if (best < 0) continue;
            taken[best] = true;
            result[d] = best;
        }
        return result;
    }

    /// <summary>
    /// Adds one image's matches to <paramref name="counts"/>. Truth marked in <paramref name="ignore"/> (VOC "difficult")
    /// is neither missed when not found nor a hit when found, and a detection on it is not a false positive.
    /// Returns the match (<see cref="Match"/>) for figures that split it further.
    /// </summary>
    public static int[] Accumulate(OperatingPointCounts counts, IReadOnlyList<(float Score, BoxF Box)> detections, IReadOnlyList<BoxF> truth,
        double iouThreshold = 0.5, IReadOnlyList<bool>? ignore = null)
    {
        var m = Match(detections, truth, iouThreshold);
        var onIgnored = m.Count(g => g >= 0 && ignore?[g] == true);
        var tp = m.Count(g => g >= 0) - onIgnored;
        var realTruth = ignore is null ? truth.Count : ignore.Count(x => !x);
        counts.TruePositives += tp;
        counts.FalsePositives += detections.Count - tp - onIgnored;
        counts.Missed += realTruth - tp;
        return m;
    }
}

/// <summary>
/// Recall at the operating threshold split by whether the labelled cell touches the image's edge (cut by the frame,
/// <see cref="BoxF.IsCutBy(float, float)"/>) or lies whole inside it. Labs differ in whether they label cut cells
/// (BCCD leaves most of them out, draaslan boxes them down to slivers), so a count error is read with this split.
/// </summary>
public sealed class FrameEdgeRecall
{
    public int CutTruth { get; private set; }
    public int CutFound { get; private set; }
    public int WholeTruth { get; private set; }
    public int WholeFound { get; private set; }
    public double CutRecall => CutTruth == 0 ? double.NaN : (double)CutFound / CutTruth;
    public double WholeRecall => WholeTruth == 0 ? double.NaN : (double)WholeFound / WholeTruth;

    /// <summary>Adds one image: its truth (ignored truth, VOC "difficult", counts neither way) and, per detection at
    /// the operating threshold, the truth box it matched (<see cref="BoxMatcher.Match"/>, as
    /// <see cref="BoxMatcher.Accumulate"/> returns it), or -1.</summary>
    public void Add(IReadOnlyList<int> matchOfDetection, IReadOnlyList<BoxF> truth, float imageWidth, float imageHeight, IReadOnlyList<bool>? ignore = null)
    {
        var found = new bool[truth.Count];
        foreach (var g in matchOfDetection)
            if (g >= 0) found[g] = true;
        for (var g = 0; g < truth.Count; g++)
        {
            if (ignore?[g] == true) continue;
            if (truth[g].IsCutBy(imageWidth, imageHeight)) { CutTruth++; if (found[g]) CutFound++; }
            else { WholeTruth++; if (found[g]) WholeFound++; }
        }
    }
}

/// <summary>A confusion matrix over named categories (rows: truth, columns: prediction).</summary>
public sealed class ConfusionMatrix(IReadOnlyList<string> categories)
{
    private readonly int[,] _counts = new int[categories.Count, categories.Count];

    public IReadOnlyList<string> Categories { get; } = categories;

    public int this[int truth, int predicted] => _counts[truth, predicted];

    public void Add(int truth, int predicted) => _counts[truth, predicted]++;

    public int Total => Enumerable.Range(0, Categories.Count).Sum(t => Enumerable.Range(0, Categories.Count).Sum(p => _counts[t, p]));

    public int Correct => Enumerable.Range(0, Categories.Count).Sum(i => _counts[i, i]);

    public double Accuracy => Total == 0 ? double.NaN : (double)Correct / Total;
}
