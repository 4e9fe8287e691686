using OpenCvSharp;

namespace EdgeCounter.Fields;

/// <summary>
/// Recognises a field the technician returns to, so it is not counted twice. Each counted field leaves a small
/// fingerprint (grey thumbnail, high-pass filtered so vignetting and stain tint do not make every field look alike);
/// a new field that correlates strongly with one of them, allowing a small stage offset, is a revisit.
/// Neighbouring fields that only partly overlap correlate weakly and are counted.
/// </summary>
public sealed class RevisitGuard(int memory = 256, double similarity = 0.85) : IDisposable
{
    private const int ThumbWidth = 64;
    private const int MaxShift = 4; // thumbnail pixels: about 6 % of the field width
    private readonly LinkedList<Mat> _fingerprints = new();

    public int Count => _fingerprints.Count;

    /// <summary>True when the field was counted before; otherwise remembers it and returns false.</summary>
    public bool CheckAndRemember(Mat bgrField, out double bestMatch)
    {
        var print = Fingerprint(bgrField);
        bestMatch = BestMatchOf(print);
        if (bestMatch >= similarity)
        {
            print.Dispose();
            return true;
        }
        Remember(print);
        return false;
    }

    private void Remember(Mat print)
    {
        if (memory <= 0) { print.Dispose(); return; }
        _fingerprints.AddFirst(print);
        while (_fingerprints.Count > memory)
        {
            _fingerprints.Last!.Value.Dispose();
            _fingerprints.RemoveLast();
        }
    }

    private double BestMatchOf(Mat print)
    {
        if (_fingerprints.Count == 0) return 0;
        // Compare the centre of the new print against each stored one at every offset up to MaxShift.
        using var centre = new Mat(print, new Rect(MaxShift, MaxShift, print.Cols - 2 * MaxShift, print.Rows - 2 * MaxShift));
        using var result = new Mat();
        var best = 0.0;
        foreach (var stored in _fingerprints)
        {
            if (stored.Size() != print.Size()) continue;
            Cv2.MatchTemplate(stored, centre, result, TemplateMatchModes.CCoeffNormed);
            Cv2.MinMaxLoc(result, out _, out double max);
            best = Math.Max(best, max);
        }
        return best;
    }

    internal static Mat Fingerprint(Mat bgr) => GreyThumbnail.HighPass(bgr, ThumbWidth, 2 * MaxShift + 8, 6);

    /// <summary>Forget every field, e.g. when a new session (a new slide) starts.</summary>
    public void Clear()
    {
        foreach (var m in _fingerprints) m.Dispose();
        _fingerprints.Clear();
    }

    public void Dispose() => Clear();
}
