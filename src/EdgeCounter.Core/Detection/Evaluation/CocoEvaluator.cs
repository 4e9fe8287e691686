namespace EdgeCounter.Detection;

/// <summary>COCO's area ranges, in square pixels of box area.</summary>
public enum AreaRange { All, Small, Medium, Large }

/// <summary>AP figures of one class (NaN when the class has no ground truth).</summary>
public sealed record ClassAp(string Name, int GroundTruth, double AP, double AP50, double AP75, double Recall50);

/// <summary>The COCO summary: AP over IoU 0.50:0.95, AP at 0.50 and 0.75, AP by object size, mean max recall.</summary>
public sealed record CocoSummary(
    double AP, double AP50, double AP75, double APSmall, double APMedium, double APLarge, double AR100,
    IReadOnlyList<ClassAp> PerClass);

/// <summary>
/// Bounding-box mAP exactly as pycocotools' COCOeval computes it: greedy matching by score per image and class at
/// IoU 0.50:0.05:0.95, 101-point interpolated precision, area ranges (small &lt; 32², medium &lt; 96², large), maxDets
/// per image and class, ground truth outside an area range ignored, unmatched detections outside it ignored.
/// Means skip classes without ground truth (COCO's -1). Pure: give it boxes, ask for the summary.
/// </summary>
public sealed class CocoEvaluator
{
    public static readonly double[] IouThresholds = Enumerable.Range(0, 10).Select(i => 0.5 + 0.05 * i).ToArray();
    private const double NumpySpacingOne = 2.220446049250313e-16; // COCOeval adds np.spacing(1) to tp + fp

    public static readonly double[] RecallThresholds = Enumerable.Range(0, 101).Select(i => i / 100.0).ToArray();

    private readonly IReadOnlyList<string> _classes;
    private readonly int _maxDetections;
    // Per image: per class the ground truth (box, ignore) and detections (score, box).
    private readonly List<(List<(BoxF Box, bool Ignore)>[] Truth, List<(float Score, BoxF Box)>[] Detections)> _images = new();

    public CocoEvaluator(IReadOnlyList<string> classNames, int maxDetectionsPerImage = 100)
    {
        if (classNames.Count == 0) throw new ArgumentException("at least one class is needed", nameof(classNames));
        if (maxDetectionsPerImage <= 0) throw new ArgumentOutOfRangeException(nameof(maxDetectionsPerImage));
        _classes = classNames;
        _maxDetections = maxDetectionsPerImage;
    }

    /// <summary>Adds one image: its ground truth (class index, box) and detections.</summary>
    public void AddImage(IEnumerable<(int ClassIndex, BoxF Box)> truth, IEnumerable<(int ClassIndex, float Score, BoxF Box)> detections) =>
        AddImageWithIgnore(truth.Select(t => (t.ClassIndex, t.Box, false)), detections);

    /// <summary>
    /// Adds one image whose ground truth may be marked ignore (VOC's "difficult"): an ignored box is not a positive to
    /// find, and a detection matching it is neither a hit nor a false positive (COCO's ignore flag).
    /// </summary>
    public void AddImageWithIgnore(IEnumerable<(int ClassIndex, BoxF Box, bool Ignore)> truth, IEnumerable<(int ClassIndex, float Score, BoxF Box)> detections)
    {
        var t = NewLists<(BoxF, bool)>();
        var d = NewLists<(float, BoxF)>();
        foreach (var (c, box, ignore) in truth) t[CheckClass(c)].Add((box, ignore));
        foreach (var (c, score, box) in detections) d[CheckClass(c)].Add((score, box));
        _images.Add((t, d));
    }

    private int CheckClass(int c) =>
        c >= 0 && c < _classes.Count ? c : throw new ArgumentOutOfRangeException(nameof(c), c, $"class index outside 0..{_classes.Count - 1}");

    private List<T>[] NewLists<T>()
    {
        var a = new List<T>[_classes.Count];
        for (var i = 0; i < a.Length; i++) a[i] = new List<T>();
        return a;
    }

    public static (double Min, double Max) Bounds(AreaRange range) => range switch
    {
        AreaRange.Small => (0, 32 * 32),
        AreaRange.Medium => (32 * 32, 96 * 96),
        AreaRange.Large => (96 * 96, 1e10),
        _ => (0, 1e10),
    };

    /// <summary>precision[t, r] (101 recall points) and final recall[t] for one class and area range; null: no ground truth.</summary>
    public (double[,] Precision, double[] Recall)? Accumulate(int classIndex, AreaRange range)
    {
        var (lo, hi) = Bounds(range);
        var T = IouThresholds.Length;
        var scores = new List<float>();
        var matched = new List<bool[]>();  // per detection: matched at each threshold
        var ignored = new List<bool[]>();  // per detection: ignored at each threshold
        var truthCount = 0;

        foreach (var (truthLists, detLists) in _images)
        {
            var gts = truthLists[classIndex];
            var dts = detLists[classIndex];
            if (gts.Count == 0 && dts.Count == 0) continue;
            // Ground truth: not-ignored first (COCO sorts by ignore flag, stable).
            var gtIgnoreAll = gts.Select(g => g.Ignore || g.Box.Area < lo || g.Box.Area > hi).ToArray();
            var gtOrder = Enumerable.Range(0, gts.Count).OrderBy(i => gtIgnoreAll[i] ? 1 : 0).ToArray();
            var gtBoxes = gtOrder.Select(i => gts[i].Box).ToArray();
            var gtIgnore = gtOrder.Select(i => gtIgnoreAll[i]).ToArray();
            truthCount += gtIgnore.Count(x => !x);
            var dtSorted = dts.Select((d, i) => (d, i)).OrderByDescending(x => x.d.Score).Take(_maxDetections).Select(x => x.d).ToArray();

            var gtMatched = new bool[T, gtBoxes.Length];
            var dtMatched = new bool[T, dtSorted.Length];
            var dtIgnore = new bool[T, dtSorted.Length];
            for (var t = 0; t < T; t++)
            {
                for (var d = 0; d < dtSorted.Length; d++)
                {
                    var iou = Math.Min(IouThresholds[t], 1 - 1e-10);
                    var m = -1;
                    for (var g = 0; g < gtBoxes.Length; g++)
                    {
                        if (gtMatched[t, g]) continue;
                        // Past the real ground truth with a match in hand: ignored boxes cannot take it.
                        if (m > -1 && !gtIgnore[m] && gtIgnore[g]) break;
                        var o = dtSorted[d].Box.IoU(gtBoxes[g]);
                        if (o < iou) continue;
                        iou = o;
                        m = g;
                    }
                    if (m == -1) continue;
                    dtIgnore[t, d] = gtIgnore[m];
                    dtMatched[t, d] = true;
                    gtMatched[t, m] = true;
                }
            }
            for (var d = 0; d < dtSorted.Length; d++)
            {
                var area = dtSorted[d].Box.Area;
                var outside = area < lo || area > hi;
                var mt = new bool[T];
                var ig = new bool[T];
                for (var t = 0; t < T; t++)
                {
                    mt[t] = dtMatched[t, d];
                    ig[t] = dtIgnore[t, d] || (!dtMatched[t, d] && outside);
                }
                scores.Add(dtSorted[d].Score);
                matched.Add(mt);
                ignored.Add(ig);
            }
        }
        if (truthCount == 0) return null;

        // Stable sort by score, highest first (numpy mergesort in COCOeval).
        var order = Enumerable.Range(0, scores.Count).OrderByDescending(i => scores[i]).ToArray();
        var precision = new double[T, RecallThresholds.Length];
        var recall = new double[T];
        for (var t = 0; t < T; t++)
        {
            var rc = new List<double>(order.Length);
            var pr = new List<double>(order.Length);
            double tp = 0, fp = 0;
            foreach (var i in order)
            {
                if (ignored[i][t]) continue;
                if (matched[i][t]) tp++; else fp++;
                rc.Add(tp / truthCount);
                pr.Add(tp / (tp + fp + NumpySpacingOne));
            }
            recall[t] = rc.Count > 0 ? rc[^1] : 0;
            for (var i = pr.Count - 1; i > 0; i--)
                if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
            for (var r = 0; r < RecallThresholds.Length; r++)
            {
                var idx = LowerBound(rc, RecallThresholds[r]);
                precision[t, r] = idx < pr.Count ? pr[idx] : 0;
            }
        }
        return (precision, recall);
    }

    /// <summary>First index whose value is ≥ <paramref name="x"/> (numpy searchsorted, side left).</summary>
    private static int LowerBound(List<double> sorted, double x)
    {
        int lo = 0, hi = sorted.Count;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (sorted[mid] < x) lo = mid + 1; else hi = mid;
        }
        return lo;
    }

    public CocoSummary Evaluate()
    {
        var perRange = new Dictionary<AreaRange, (double[,] P, double[] R)?[]>();
        foreach (var range in Enum.GetValues<AreaRange>())
            perRange[range] = Enumerable.Range(0, _classes.Count).Select(c => Accumulate(c, range)).ToArray();

        double Mean(AreaRange range, int? iouIndex, int? classIndex)
        {
            double sum = 0; var n = 0;
            var results = perRange[range];
            for (var c = 0; c < results.Length; c++)
            {
                if (classIndex is { } only && c != only) continue;
                if (results[c] is not { } r) continue;
                for (var t = 0; t < IouThresholds.Length; t++)
                {
                    if (iouIndex is { } ti && t != ti) continue;
                    for (var k = 0; k < RecallThresholds.Length; k++) { sum += r.P[t, k]; n++; }
                }
            }
            return n == 0 ? double.NaN : sum / n;
        }

        double MeanRecall(int? classIndex, int? iouIndex)
        {
            double sum = 0; var n = 0;
            var results = perRange[AreaRange.All];
            for (var c = 0; c < results.Length; c++)
            {
                if (classIndex is { } only && c != only) continue;
                if (results[c] is not { } r) continue;
                for (var t = 0; t < IouThresholds.Length; t++)
                {
                    if (iouIndex is { } ti && t != ti) continue;
                    sum += r.R[t]; n++;
                }
            }
            return n == 0 ? double.NaN : sum / n;
        }

        var perClass = _classes.Select((name, c) => new ClassAp(
            name,
            CountTruth(c),
            Mean(AreaRange.All, null, c),
            Mean(AreaRange.All, 0, c),
            Mean(AreaRange.All, 5, c),
            MeanRecall(c, 0))).ToList();

        return new CocoSummary(
            Mean(AreaRange.All, null, null), Mean(AreaRange.All, 0, null), Mean(AreaRange.All, 5, null),
            Mean(AreaRange.Small, null, null), Mean(AreaRange.Medium, null, null), Mean(AreaRange.Large, null, null),
            MeanRecall(null, null), perClass);
    }

    private int CountTruth(int c) => _images.Sum(i => i.Truth[c].Count(t => !t.Ignore));
}
