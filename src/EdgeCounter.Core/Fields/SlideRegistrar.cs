using OpenCvSharp;

namespace EdgeCounter.Fields;

/// <summary>
/// Places each stable field on the slide. The odometry's integrated position (dead reckoning while the stage moved)
/// predicts where the field lies relative to the fields placed before; the field is then registered directly against
/// the earlier field(s) it overlaps (normalised cross-correlation of the overlapping part, high-pass filtered, on a
/// half-size grey copy), so the error of one move never carries into the next: drift does not accumulate. A revisit
/// is the full-overlap case. When the odometry lost track, the field is correlated against the last few fields as a
/// whole (phase correlation) to find its way back. When nothing registers, the field keeps the odometry's position
/// if the odometry kept track, else its position is unknown and it starts a new segment of the map.
/// Not thread-safe: the counting worker owns one, per session.
/// </summary>
public sealed class SlideRegistrar(int memory = 48) : IDisposable
{
    /// <summary>Normalised correlation an overlap must reach to count as registered: a large template (at least
    /// <see cref="LargeTemplate"/> registration pixels) inside a small search window rarely reaches 0.4 by chance;
    /// a small one needs more.</summary>
    public const double MinMatch = 0.4, MinMatchSmall = 0.6;

    private const int LargeTemplate = 1500;

    /// <summary>Phase-correlation response a whole-field match needs after the odometry lost track.</summary>
    public const double MinRecoveryResponse = 0.12;

    private const int Width = 320;      // registration copy width (frame pixels are Scale times this)
    private const int MinTemplate = 12; // registration pixels each way

    private sealed record Placed(int Index, Mat Image, double X, double Y, int Segment, double RawX, double RawY, int OdometrySegment, long RawGuesses);

    private readonly LinkedList<Placed> _fields = new();
    // Copies of forgotten fields, written over by the next ones: a session's copies (memory x 0.3 MB at 640x480) stay
    // allocated from one session to the next, so the resident memory does not drop and climb again with each slide.
    private readonly Stack<Mat> _spare = new();
    private readonly Mat _window = new();
    private readonly PhaseCorrelator _correlator = new();
    private int _next, _segment;
    private Placed? _last;
    // Odometry gain, learnt from registered moves (phase correlation on blurred frames reads long moves a little short).
    private double _travelOdometry, _travelRegistered;

    /// <summary>Fields placed so far (also those with an unknown position).</summary>
    public int Count => _next;

    /// <summary>Places the field and remembers it for the next ones.</summary>
    public FieldPlacement Place(Mat bgrField, OdometryReading? odometry)
    {
        var spare = _spare.TryPop(out var kept) ? kept : null;
        Mat image;
        double scale;
        try { image = Prepare(bgrField, out scale, spare); }
        catch
        {
            if (spare is not null) _spare.Push(spare); // a frame it cannot read loses no buffer
            throw;
        }
        var index = _next++;
        var raw = odometry ?? new OdometryReading(0, 0, -1 - index, 0); // no odometry: never the same segment twice
        FieldPlacement placement;
        var last = _last;
        if (last is not null && raw.Segment == last.OdometrySegment)
        {
            // Prediction: the odometry's travel since the last placed field, from where that field was placed.
            var (tx, ty) = (raw.X - last.RawX, raw.Y - last.RawY);
            var travel = Math.Sqrt(tx * tx + ty * ty);
            var gain = Gain;
            var px = last.X + gain * tx;
            var py = last.Y + gain * ty;
            var guessed = raw.Guesses != last.RawGuesses;
            var margin = Math.Clamp(16 + 0.02 * travel, 16, 96) / scale;
            // A guessed frame pair is usually close (the stage accelerates smoothly): a registration near the
            // prediction still places the field.
            if (Register(image, scale, px, py, margin, last.Segment) is { } registered)
            {
                placement = registered with { Confidence = Math.Round(registered.Confidence, 3) };
                if (registered.AnchorField == last.Index && travel > 50) Learn(travel, registered.X - last.X, registered.Y - last.Y, tx, ty);
            }
            // Nothing registered near the prediction: the odometry may have misread a long, fast move (a revisit);
            // look for the field among the last few as a whole before trusting dead reckoning alone.
            // A partly guessed move: search the whole neighbourhood, and without a registration the position is unknown.
            else if (Recover(image, scale, (px, py, last.Segment, 0.25 * bgrField.Cols + (guessed ? 0.5 : 0.35) * travel)) is { } found)
                placement = found with { Confidence = Math.Round(found.Confidence, 3) };
            // The odometry can also read a move short without noticing (blur, a repetitive smear): search a wider
            // window, where only a clearer match counts.
            else if (Register(image, scale, px, py, Math.Clamp(32 + 0.3 * travel, 32, 240) / scale, last.Segment, MinMatchSmall) is { } wide)
                placement = wide with { Confidence = Math.Round(wide.Confidence, 3) };
            // A guessed move (frames too blurred to read) keeps its direction better than its length: the guesses
            // extrapolate the speed. Search along the direction from the last field.
            else if (guessed && AlongTheMove(image, scale, last, tx, ty) is { } along)
                placement = along with { Confidence = Math.Round(along.Confidence, 3) };
            // Dead reckoning alone only where no earlier field could contradict it: a prediction that overlaps a
            // counted field which the image does not match is wrong, so the position is unknown.
            else placement = guessed || ExpectedOverlap(px, py, scale, image, last.Segment) >= ContradictingOverlap
                ? FieldPlacement.Unknown(++_segment)
                : new FieldPlacement(true, px, py, last.Segment, false, Math.Round(raw.Confidence, 3));
        }
        // The session's first field is the origin of its map; later, a lost odometry with no way back is unknown.
        else if (last is null) placement = new FieldPlacement(true, 0, 0, ++_segment, false, 1);
        else placement = Recover(image, scale, null) ?? FieldPlacement.Unknown(++_segment);

        placement = Rejoin(image, scale, placement);

        // An unknown field starts a segment of its own: later fields can still be placed relative to it.
        var (x, y) = placement.Known ? (placement.X, placement.Y) : (0.0, 0.0);
        var placed = new Placed(index, image, x, y, placement.Segment, raw.X, raw.Y, raw.Segment, raw.Guesses);
        _fields.AddFirst(placed);
        _last = placed;
        while (_fields.Count > memory)
        {
            _spare.Push(_fields.Last!.Value.Image);
            _fields.RemoveLast();
        }
        return placement;
    }

    /// <summary>Registered travel per odometry travel, 1 until a few moves have been registered; kept within ±10 %.</summary>
    internal double Gain => _travelOdometry > 2000 ? Math.Clamp(_travelRegistered / _travelOdometry, 0.9, 1.1) : 1;

    private void Learn(double travel, double rx, double ry, double tx, double ty)
    {
        // Projection of the registered move on the odometry's, summed with a slow decay (the optics do not change).
        var along = (rx * tx + ry * ty) / travel;
        _travelOdometry = 0.98 * _travelOdometry + travel;
        _travelRegistered = 0.98 * _travelRegistered + along;
    }

    /// <summary>Best registration against the earlier fields of the segment that the predicted field overlaps.</summary>
    private FieldPlacement? Register(Mat image, double scale, double px, double py, double margin, int segment, double minScore = 0)
    {
        int w = image.Cols, h = image.Rows;
        var candidates = _fields
            .Where(f => f.Segment == segment)
            .Select(f => (Field: f, Overlap: OverlapArea((f.X - px) / scale, (f.Y - py) / scale, w, h)))
            .Where(c => c.Overlap > 0)
            .OrderByDescending(c => c.Overlap)
            .Take(3);
        FieldPlacement? best = null;
        foreach (var (field, _) in candidates)
        {
            // The field's offset from the earlier one, in registration pixels.
            var ox = (px - field.X) / scale;
            var oy = (py - field.Y) / scale;
            if (Match(field.Image, image, ox, oy, margin) is not { } m || m.Score < Math.Max(m.Required, minScore)) continue;
            if (best is null || m.Score > best.Confidence)
                best = new FieldPlacement(true, field.X + m.X * scale, field.Y + m.Y * scale, segment, true, m.Score, field.Index);
        }
        return best;
    }

    /// <summary>Registers the field against <paramref name="from"/> at every distance along the odometry's direction of
    /// travel (tx, ty) at which the two could still overlap; only a clear match (<see cref="MinMatchSmall"/>) counts.</summary>
    private static FieldPlacement? AlongTheMove(Mat image, double scale, Placed from, double tx, double ty)
    {
        var length = Math.Sqrt(tx * tx + ty * ty);
        if (length < 1) return null;
        var (ux, uy) = (tx / length, ty / length);
        // Beyond this distance (registration pixels) the field no longer overlaps the one it left.
        var reach = Math.Min(Math.Abs(ux) > 1e-6 ? image.Cols / Math.Abs(ux) : double.MaxValue, Math.Abs(uy) > 1e-6 ? image.Rows / Math.Abs(uy) : double.MaxValue);
        const double margin = 12; // searched on both sides of each point, so points 2 x margin apart cover the line
        FieldPlacement? best = null;
        for (var d = 0.0; d < reach; d += 2 * margin)
        {
            if (Match(from.Image, image, ux * d, uy * d, margin) is not { } m || m.Score < Math.Max(m.Required, MinMatchSmall)) continue;
            if (best is null || m.Score > best.Confidence)
                best = new FieldPlacement(true, from.X + m.X * scale, from.Y + m.Y * scale, from.Segment, true, m.Score, from.Index);
        }
        return best;
    }

    /// <summary>
    /// A field of one map segment that overlaps a remembered field of another (the technician came back to where the
    /// odometry lost track, or the next row runs beside the old one) joins the two: found by correlating the field as
    /// a whole with the last few fields of other segments, a large overlap and a clear match only (as when the
    /// odometry lost track). Its own segment then moves into the other's coordinates (<see cref="FieldPlacement.Merged"/>
    /// says how, so the cells and the map can follow); an unknown field is simply placed there.
    /// </summary>
    private FieldPlacement Rejoin(Mat image, double scale, FieldPlacement placement)
    {
        var others = _fields.Where(f => f.Segment != placement.Segment).Take(RejoinCandidates).ToList();
        if (others.Count == 0 || Recover(image, scale, null, others) is not { } found) return placement;
        found = found with { Confidence = Math.Round(found.Confidence, 3) };
        if (!placement.Known) return found;
        var merge = new SegmentMerge(placement.Segment, found.Segment, found.X - placement.X, found.Y - placement.Y);
        for (var node = _fields.First; node is not null; node = node.Next)
            if (node.Value.Segment == merge.From)
                node.Value = node.Value with { X = node.Value.X + merge.Dx, Y = node.Value.Y + merge.Dy, Segment = merge.Into };
        if (_last is { } last && last.Segment == merge.From) _last = _fields.First(f => f.Index == last.Index);
        return found with { Merged = merge };
    }

    /// <summary>Fields of other segments a field is tried against to join them (each one phase correlation).</summary>
    private const int RejoinCandidates = 6;

    /// <summary>The odometry lost track: find the field by correlating it as a whole with the last few fields.</summary>
    /// <param name="guide">With the odometry's (misread) prediction: only a position within Tolerance of it, in that segment;
    /// without (the odometry lost track): any of the last few fields, with a large overlap only.</param>
    /// <param name="among">Without a guide: the fields to try (default the last four).</param>
    private FieldPlacement? Recover(Mat image, double scale, (double X, double Y, int Segment, double Tolerance)? guide, IEnumerable<Placed>? among = null)
    {
        if (_fields.Count == 0) return null;
        // One window and one correlator for the registrar's life: Rejoin tries this on every field while another
        // segment is remembered.
        if (_window.Empty() || _window.Size() != image.Size()) Cv2.CreateHanningWindow(_window, image.Size(), MatType.CV_32FC1);
        FieldPlacement? best = null;
        var candidates = guide is { } g
            ? _fields.Where(f => f.Segment == g.Segment)
                .Where(f => OverlapArea((f.X - g.X) / scale, (f.Y - g.Y) / scale, image.Cols, image.Rows) > 0 || f == _last)
                .Take(6)
            : among ?? _fields.Take(4);
        foreach (var field in candidates.Where(f => f.Image.Size() == image.Size()))
        {
            var shift = _correlator.Shift(field.Image, image, _window, out var response);
            if (response < MinRecoveryResponse) continue;
            // Content moves opposite to the stage: the new field lies at -shift from the earlier one. Without the
            // odometry only a large overlap is evidence enough (a thin strip of a sparse smear matches by chance).
            if (OverlapArea(shift.X, shift.Y, image.Cols, image.Rows) < (guide is null ? 0.3 : 0.1) * image.Cols * image.Rows) continue;
            if (guide is { } h && Math.Abs(field.X - shift.X * scale - h.X) + Math.Abs(field.Y - shift.Y * scale - h.Y) > h.Tolerance) continue;
            if (Match(field.Image, image, -shift.X, -shift.Y, 8) is not { } m || m.Score < (guide is null ? MinMatchSmall : m.Required)) continue;
            if (best is null || m.Score > best.Confidence)
                best = new FieldPlacement(true, field.X + m.X * scale, field.Y + m.Y * scale, field.Segment, true, m.Score, field.Index);
        }
        return best;
    }

    /// <summary>A predicted overlap at least this large (fraction of the field) that does not register makes the position unknown.</summary>
    public const double ContradictingOverlap = 0.2;

    private double ExpectedOverlap(double px, double py, double scale, Mat image, int segment) =>
        _fields.Where(f => f.Segment == segment)
            .Select(f => OverlapArea((f.X - px) / scale, (f.Y - py) / scale, image.Cols, image.Rows) / (image.Cols * (double)image.Rows))
            .DefaultIfEmpty(0).Max();

    private static double OverlapArea(double dx, double dy, int w, int h) =>
        Math.Max(0, w - Math.Abs(dx)) * Math.Max(0, h - Math.Abs(dy));

    /// <summary>
    /// Registers <paramref name="image"/> against <paramref name="earlier"/> near the predicted offset (ox, oy) of its
    /// top-left in the earlier field's pixels, searching ±margin: a template from the part of the new field that stays
    /// inside the earlier one for every offset searched, matched over that window. Sub-pixel by a parabola through the peak.
    /// </summary>
    internal static (double X, double Y, double Score, double Required)? Match(Mat earlier, Mat image, double ox, double oy, double margin)
    {
        int w = image.Cols, h = image.Rows, m = (int)Math.Ceiling(margin);
        int ix = (int)Math.Round(ox), iy = (int)Math.Round(oy);
        // Template in the new field's pixels: inside the new field, and inside the earlier field shrunk by the margin.
        var x0 = Math.Max(0, -ix + m);
        var y0 = Math.Max(0, -iy + m);
        var x1 = Math.Min(w, earlier.Cols - ix - m);
        var y1 = Math.Min(h, earlier.Rows - iy - m);
        if (x1 - x0 < MinTemplate || y1 - y0 < MinTemplate) return null;
        var template = new Rect(x0, y0, x1 - x0, y1 - y0);
        var search = new Rect(x0 + ix - m, y0 + iy - m, template.Width + 2 * m, template.Height + 2 * m);
        if (search.X < 0 || search.Y < 0 || search.Right > earlier.Cols || search.Bottom > earlier.Rows) return null;
        using var t = new Mat(image, template);
        using var s = new Mat(earlier, search);
        using var result = new Mat();
        Cv2.MatchTemplate(s, t, result, TemplateMatchModes.CCoeffNormed);
        Cv2.MinMaxLoc(result, out _, out var score, out _, out var at);
        double Peak(int dx, int dy) => result.At<float>(at.Y + dy, at.X + dx);
        double Sub(double minus, double centre, double plus)
        {
            var d = minus - 2 * centre + plus;
            return d < 0 ? Math.Clamp(0.5 * (minus - plus) / d, -0.5, 0.5) : 0;
        }
        var sx = at.X > 0 && at.X < result.Cols - 1 ? Sub(Peak(-1, 0), score, Peak(1, 0)) : 0;
        var sy = at.Y > 0 && at.Y < result.Rows - 1 ? Sub(Peak(0, -1), score, Peak(0, 1)) : 0;
        // At the edge of the window the true offset may lie beyond it: not a registration.
        if (at.X == 0 || at.Y == 0 || at.X == result.Cols - 1 || at.Y == result.Rows - 1) return null;
        return (search.X + at.X + sx - template.X, search.Y + at.Y + sy - template.Y, score, template.Width * template.Height >= LargeTemplate ? MinMatch : MinMatchSmall);
    }

    /// <summary>Half-size (Width pixels across) grey copy, high-pass filtered: vignetting and stain tint do not register.</summary>
    internal static Mat Prepare(Mat bgr, out double scale, Mat? into = null)
    {
        scale = bgr.Cols / (double)Width;
        return GreyThumbnail.HighPass(bgr, Width, MinTemplate * 2, 10, into);
    }

    /// <summary>Buffers of forgotten fields kept for the next ones (at most <c>memory</c> + 1 copies in all).</summary>
    internal int SpareBuffers => _spare.Count;

    /// <summary>Forget every field (a new session: a new slide). Their buffers are kept for the next session's fields.</summary>
    public void Clear()
    {
        foreach (var f in _fields) _spare.Push(f.Image);
        _fields.Clear();
        _last = null;
        _segment++;
    }

    public void Dispose()
    {
        Clear();
        while (_spare.TryPop(out var m)) m.Dispose();
        _window.Dispose();
        _correlator.Dispose();
    }
}
