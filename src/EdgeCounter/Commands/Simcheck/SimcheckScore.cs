using EdgeCounter.Counting;
using EdgeCounter.Fields;
using EdgeCounter.Simulation;

namespace EdgeCounter.Commands.Simcheck;

/// <summary>One class group's figures. Fractions are of <see cref="DistinctCounted"/>.</summary>
/// <param name="DoubleCountedInOneField">Of <see cref="DoubleCountedDetections"/>, those counted in the same field as the
/// cell's first count: the detector boxed one cell twice (a fragment), which no stage motion explains.</param>
/// <param name="MovedCounts">Counted detections that took over an earlier field's count of a cell seen there cut by the
/// edge (the counting-frame rule). A move onto another cell than the one it took the count from counts as a double
/// (when that cell was counted already) and as wrongly suppressed (the cell it took the count from, now uncounted).</param>
/// <param name="LabelAgreement">White cells only: of the cells counted now, the share whose counted label is their
/// simulator type (neutrophil, lymphocyte...): what classifying a cut cell from its whole view improves.</param>
/// <param name="LabelAgreementFirstView">The same with each cell's label from the field that first counted it (what
/// the agreement would be without moved counts).</param>
public sealed record GroupScore(
    int DistinctCounted,
    double DoubleCounted,
    double WronglySuppressed,
    int DoubleCountedDetections,
    int WronglySuppressedDetections,
    int CountedDetections,
    int SuppressedDetections,
    int Unmatched,
    int DistinctOnSlide,
    int DoubleCountedInOneField = 0,
    int MovedCounts = 0,
    double? LabelAgreement = null,
    double? LabelAgreementFirstView = null);

/// <summary>The whole run.</summary>
public sealed record SimcheckResult(
    IReadOnlyDictionary<string, GroupScore> PerClass,
    int Fields,
    int UnknownPositionFields,
    double? OdometryErrorPx,
    int Revisits,
    double SimulatedSeconds);

/// <summary>
/// Judges counted fields by the simulator's truth: every detection is matched to a simulator cell id (its centre
/// inside the whole cell, else the nearest cell of its class group within 1.5 radii), then each id is followed
/// through the session. Pure: feed it fields in the order the service handled them.
/// </summary>
public sealed class SimcheckScorer
{
    public static readonly string[] Groups = ["WBC", "RBC", "Platelets"];

    private sealed class Tally
    {
        /// <summary>Counts each simulator cell holds now (a moved count leaves one cell for another).</summary>
        public readonly Dictionary<long, int> Counts = new();
        public readonly Dictionary<long, string> Label = new(); // the label the cell's latest count is under
        public readonly Dictionary<long, string> FirstLabel = new();
        public int Double, Wrong, CountedDetections, Suppressed, Unmatched, DoubleInOneField, Moved;
        public bool IsCounted(long cell) => Counts.GetValueOrDefault(cell) > 0;
    }

    private readonly Dictionary<string, Tally> _tallies = Groups.ToDictionary(g => g, _ => new Tally());
    private readonly List<double> _odometryErrors = new();
    private readonly Dictionary<int, (double EstX, double EstY, double TrueX, double TrueY)> _segmentOrigins = new();
    private int _fields, _unknown, _revisits;
    private readonly Dictionary<long, (int Field, Detection.BoxF Box)> _firstCounted = new();
    // The simulator cells each field's new detections were counted as, per label (the service's field id): where a
    // moved count is taken from.
    private readonly Dictionary<(long FieldId, string Label), List<long?>> _countedAt = new();
    private readonly Dictionary<long, CellType> _typeOf = new();
    private double _lastTime;

    public static string GroupOf(CellType type) => type switch
    {
        CellType.Erythrocyte => "RBC",
        CellType.Platelet => "Platelets",
        _ => "WBC",
    };

    /// <summary>A model label names the simulator type: compared as the marrow differential compares labels (lower case,
    /// '_' for spaces and hyphens) with the type's exported label (plasma_cell, band_neutrophil) or its name.</summary>
    public static bool LabelNames(string label, CellType type)
    {
        static string Key(string s) => s.Trim().ToLowerInvariant().Replace(' ', '_').Replace('-', '_');
        var key = Key(label);
        return key == Key(VocAnnotation.Label(type, WbcLabelMode.Subtype)) || key == Key(type.ToString());
    }

    public void AddRevisit(FrameTruth truth, FieldPlacement? placement)
    {
        _revisits++;
        if (Environment.GetEnvironmentVariable("SIMCHECK_TRACE") is null || placement is not { Known: true } || !_segmentOrigins.TryGetValue(placement.Segment, out var o)) return;
        Console.Error.WriteLine($"revisit stop {truth.StopIndex} of {truth.RevisitOf} err {placement.X - o.EstX - (truth.StageX - o.TrueX):0.0},{placement.Y - o.EstY - (truth.StageY - o.TrueY):0.0} anchored {placement.Anchored} conf {placement.Confidence} anchor {placement.AnchorField}");
    }

    /// <summary>A counted field: its truth, its detections (frame pixels) and what the service marked them.</summary>
    public void AddField(FrameTruth truth, IReadOnlyList<Detection.Detection> detections, IReadOnlyList<DetectionMark>? marks, FieldPlacement? placement)
    {
        _fields++;
        _lastTime = Math.Max(_lastTime, truth.Time.TotalSeconds);
        if (placement is not { Known: true })
        {
            _unknown++;
            if (Environment.GetEnvironmentVariable("SIMCHECK_TRACE") is not null) Console.Error.WriteLine($"field {_fields} stop {truth.StopIndex} at {truth.StageX},{truth.StageY} unknown position (segment {placement?.Segment})");
        }
        else
        {
            // Positions compare only within a segment: measured from the segment's first field.
            if (!_segmentOrigins.TryGetValue(placement.Segment, out var origin))
                _segmentOrigins[placement.Segment] = origin = (placement.X, placement.Y, truth.StageX, truth.StageY);
            else
            {
                var ex = placement.X - origin.EstX - (truth.StageX - origin.TrueX);
                var ey = placement.Y - origin.EstY - (truth.StageY - origin.TrueY);
                _odometryErrors.Add(Math.Sqrt(ex * ex + ey * ey));
                if (Environment.GetEnvironmentVariable("SIMCHECK_TRACE") is not null)
                    Console.Error.WriteLine($"field {_fields} stop {truth.StopIndex} at {truth.StageX},{truth.StageY} err {ex:0.0},{ey:0.0} anchored {placement.Anchored} conf {placement.Confidence} anchor {placement.AnchorField} seg {placement.Segment}");
            }
        }

        // Decide per field first, then apply: suppression is judged against cells counted in earlier fields.
        var decisions = new List<(string Group, long? Cell, DetectionMark? Mark, string Label, Detection.BoxF Box)>();
        for (var i = 0; i < detections.Count; i++)
        {
            var d = detections[i];
            var group = Groups.Contains(d.Class) ? d.Class : "WBC";
            var cell = Match(truth, group, truth.StageX + d.Box.CenterX, truth.StageY + d.Box.CenterY);
            decisions.Add((group, cell, marks?[i], d.Label,
                new Detection.BoxF((float)(d.Box.X1 + truth.StageX), (float)(d.Box.Y1 + truth.StageY), (float)(d.Box.X2 + truth.StageX), (float)(d.Box.Y2 + truth.StageY))));
        }
        var countedBefore = _tallies.ToDictionary(t => t.Key, t => t.Value.Counts.Where(c => c.Value > 0).Select(c => c.Key).ToHashSet());
        foreach (var (group, cell, mark, label, box) in decisions)
        {
            var t = _tallies[group];
            if (mark is { AlreadyCounted: true })
            {
                t.Suppressed++;
                if (cell is { } id && !countedBefore[group].Contains(id)) t.Wrong++;
                continue;
            }
            t.CountedDetections++;
            if (mark is { CountedInField: > 0 } m)
            {
                var key = (m.CountedInField, label);
                if (!_countedAt.TryGetValue(key, out var list)) _countedAt[key] = list = new List<long?>();
                list.Add(cell);
            }
            if (mark is { Moved: true } moved)
            {
                t.Moved++;
                // Take the count back from the cell the earlier field counted under that label (this cell when it was).
                var from = _countedAt.GetValueOrDefault((moved.MovedFrom, moved.MovedFromLabel!));
                long? taken = null;
                if (from is { Count: > 0 })
                {
                    var at = cell is { } c0 && from.Contains(c0) ? from.IndexOf(c0) : 0;
                    taken = from[at];
                    from.RemoveAt(at);
                }
                // Counts move within a class group (the registry matches only its own group).
                if (taken is { } r && t.Counts.ContainsKey(r))
                {
                    t.Counts[r]--;
                    if (r != cell && !t.IsCounted(r)) t.Wrong++; // the cell it left is now uncounted
                }
            }
            if (cell is not { } c) { t.Unmatched++; continue; }
            if (t.IsCounted(c))
            {
                t.Double++;
                if (_firstCounted[c].Field == _fields) t.DoubleInOneField++;
                if (Environment.GetEnvironmentVariable("SIMCHECK_TRACE") is not null)
                {
                    Trace(truth, group, c, placement);
                    var (f, b) = _firstCounted[c];
                    Console.Error.WriteLine($"   first counted in field {f} slide box {b.X1:0},{b.Y1:0}-{b.X2:0},{b.Y2:0}; now slide box {box.X1:0},{box.Y1:0}-{box.X2:0},{box.Y2:0} (frame {box.X1 - truth.StageX:0},{box.Y1 - truth.StageY:0}-{box.X2 - truth.StageX:0},{box.Y2 - truth.StageY:0})");
                }
            }
            else if (!t.Counts.ContainsKey(c)) _firstCounted[c] = (_fields, box);
            t.Counts[c] = t.Counts.GetValueOrDefault(c) + 1;
            t.Label[c] = label;
            t.FirstLabel.TryAdd(c, label); // the label of its first count (the cut view, for a moved one)
        }
    }

    private void Trace(FrameTruth truth, string group, long cell, FieldPlacement? placement)
    {
        var origin = placement is { Known: true } && _segmentOrigins.TryGetValue(placement.Segment, out var o) ? o : default;
        var err = placement is { Known: true } ? $"{placement.X - origin.EstX - (truth.StageX - origin.TrueX):0.0},{placement.Y - origin.EstY - (truth.StageY - origin.TrueY):0.0}" : "unknown";
        var c = truth.Cells.First(x => x.CellId == cell);
        Console.Error.WriteLine($"double {group} field {_fields} stop {truth.StopIndex} cell {cell} box {c.Box.X:0},{c.Box.Y:0},{c.Box.Width:0}x{c.Box.Height:0} truncated {c.Truncated} placement err {err} anchored {placement?.Anchored} conf {placement?.Confidence} anchor {placement?.AnchorField}");
    }

    /// <summary>The simulator cell a detection centre (slide pixels) belongs to, or null (a false positive).</summary>
    private long? Match(FrameTruth truth, string group, double x, double y)
    {
        long? inside = null, near = null;
        double bestInside = double.MaxValue, bestNear = double.MaxValue;
        foreach (var c in truth.Cells)
        {
            if (GroupOf(c.Type) != group) continue;
            var dist = Math.Sqrt((c.SlideX - x) * (c.SlideX - x) + (c.SlideY - y) * (c.SlideY - y));
            var relative = dist / Math.Max(1, c.Radius);
            _typeOf[c.CellId] = c.Type;
            if (relative <= 1 && relative < bestInside) { bestInside = relative; inside = c.CellId; }
            else if (relative <= 1.5 && relative < bestNear) { bestNear = relative; near = c.CellId; }
        }
        return inside ?? near;
    }

    /// <param name="distinctOnSlide">Per group, the distinct cells a perfect counter would have counted (simulator truth), for context.</param>
    public SimcheckResult Result(IReadOnlyDictionary<string, int>? distinctOnSlide = null)
    {
        var perClass = new Dictionary<string, GroupScore>();
        foreach (var g in Groups)
        {
            var t = _tallies[g];
            // Cells counted at least once (a cell whose count moved away wrongly was counted, and is in wronglySuppressed).
            var n = t.Counts.Count;
            var countedNow = t.Counts.Where(c => c.Value > 0).Select(c => c.Key).ToList();
            double? Agreement(Dictionary<long, string> labels) => g == "WBC" && countedNow.Count > 0
                ? Math.Round(countedNow.Count(c => LabelNames(labels[c], _typeOf[c])) / (double)countedNow.Count, 4)
                : null;
            perClass[g] = new GroupScore(n, n > 0 ? Math.Round((double)t.Double / n, 4) : 0, n > 0 ? Math.Round((double)t.Wrong / n, 4) : 0,
                t.Double, t.Wrong, t.CountedDetections, t.Suppressed, t.Unmatched, distinctOnSlide?.GetValueOrDefault(g) ?? 0, t.DoubleInOneField, t.Moved, Agreement(t.Label), Agreement(t.FirstLabel));
        }
        double? odometry = _odometryErrors.Count > 0 ? Math.Round(Median(_odometryErrors), 2) : null;
        return new SimcheckResult(perClass, _fields, _unknown, odometry, _revisits, Math.Round(_lastTime, 1));
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        var mid = sorted.Count / 2;
        return sorted.Count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}
