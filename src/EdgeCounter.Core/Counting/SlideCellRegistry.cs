using EdgeCounter.Detection;
using EdgeCounter.Fields;

namespace EdgeCounter.Counting;

/// <summary>
/// The cells counted in a session, in slide coordinates: each cell counted once however often the slide shows it.
/// A detection in a placed field whose centre maps onto a cell already counted (same class group) is
/// <c>alreadyCounted</c>. Whole cells match within half a cell radius of each other's centre; when either is cut by
/// the frame edge (its box holds only the visible part, so its centre is off the cell's), they match when the cut
/// box's centre lies inside the other box. The counting-frame rule: a cell cut by the frame edge is counted where it
/// is at once (no neighbour may ever show it whole), and when a later field shows it whole its count moves there
/// (<see cref="DetectionMark.MovedFrom"/>): counted once, classified from its whole view. A field with an unknown
/// position (the first of a new map segment) is counted as it is; later fields of its segment are compared with it.
/// Pure logic: no I/O, no clock, not thread-safe (the counting worker owns one per session).
/// </summary>
public sealed class SlideCellRegistry
{
    private const double Bucket = 128;
    private const int MaxCells = 500_000;

    internal sealed class Cell(string group, string label, BoxF box, bool cut, long fieldId)
    {
        public string Group { get; } = group;

        /// <summary>The label the cell is counted under (in <see cref="FieldId"/>).</summary>
        public string Label { get; set; } = label;

        public BoxF Box { get; set; } = box;
        public bool Cut { get; set; } = cut;
        public long FieldId { get; set; } = fieldId;

        /// <summary>The session's id of the cell its count is under (the newest view's when the count moved).</summary>
        public long CellId { get; set; }
    }

    /// <summary>A field's decisions before it has its id (<see cref="Commit"/> adds the new cells).</summary>
    public sealed class Plan
    {
        internal Plan(FieldPlacement? placement, IReadOnlyList<DetectionMark> marks, List<(BoxF Box, string Group, string Label, bool Cut)?> added,
            List<(Cell Cell, BoxF Box, bool Whole, string? MovedLabel)> upgrades, Cell?[] matched)
        {
            Placement = placement;
            Marks = marks;
            Added = added;
            Upgrades = upgrades;
            Matched = matched;
        }

        public FieldPlacement? Placement { get; }
        public IReadOnlyList<DetectionMark> Marks { get; }
        internal List<(BoxF Box, string Group, string Label, bool Cut)?> Added { get; }
        internal List<(Cell Cell, BoxF Box, bool Whole, string? MovedLabel)> Upgrades { get; }
        internal Cell?[] Matched { get; } // per detection: the counted cell it is (null: a new cell)
        public int NewCount => Marks.Count(m => !m.AlreadyCounted);

        /// <summary>The cells earlier fields counted whose counts move to this field (one per move), each with its place
        /// among the field's new cells.</summary>
        public IReadOnlyList<CellMove> MovedOut
        {
            get
            {
                var moves = new List<CellMove>();
                var newCell = 0;
                for (var i = 0; i < Marks.Count; i++)
                {
                    if (Marks[i].AlreadyCounted) continue;
                    if (Marks[i].Moved) moves.Add(new CellMove(Matched[i]!.CellId, newCell));
                    newCell++;
                }
                return moves;
            }
        }
    }

    private readonly Dictionary<(int Segment, long X, long Y), List<Cell>> _buckets = new();
    private readonly Func<Detection.Detection, string> _groupOf;
    private int _cells;

    /// <param name="groupOf">The class group of a detection (cells of different groups never match); default its detector class.</param>
    public SlideCellRegistry(Func<Detection.Detection, string>? groupOf = null) => _groupOf = groupOf ?? (d => d.Class);

    /// <summary>Cells counted so far (with a known position).</summary>
    public int Count => _cells;

    /// <summary>Marks each detection of a field of the given size (frame pixels) new or already counted.</summary>
    public Plan Mark(FieldPlacement? placement, IReadOnlyList<Detection.Detection> detections, int frameWidth, int frameHeight)
    {
        var marks = new DetectionMark[detections.Count];
        var added = new List<(BoxF, string, string, bool)?>(detections.Count);
        var upgrades = new List<(Cell Cell, BoxF, bool, string?)>();
        var matched = new Cell?[detections.Count];
        for (var i = 0; i < detections.Count; i++)
        {
            var d = detections[i];
            if (placement is null)
            {
                marks[i] = DetectionMark.New;
                added.Add(null);
                continue;
            }
            var p = placement;
            var box = new BoxF((float)(d.Box.X1 + p.X), (float)(d.Box.Y1 + p.Y), (float)(d.Box.X2 + p.X), (float)(d.Box.Y2 + p.Y));
            var cut = d.Box.IsCutBy(frameWidth, frameHeight);
            var group = _groupOf(d);
            // A field with an unknown position starts its own segment: counted as it is, but later fields placed
            // relative to it are de-duplicated against it.
            if (p.Known && Find(p.Segment, group, box, cut) is { } match)
            {
                matched[i] = match;
                // Counted cut, now whole: the count moves here (once per cell, whatever else this field matches to it).
                if (match.Cut && !cut && !upgrades.Any(u => ReferenceEquals(u.Cell, match)))
                {
                    marks[i] = new DetectionMark(false, 0, match.FieldId, match.Label);
                    upgrades.Add((match, box, true, d.Label));
                }
                else
                {
                    marks[i] = new DetectionMark(true, match.FieldId);
                    // The registry keeps the best view: the whole box once seen whole, else the union of the cut views.
                    if (match.Cut && !upgrades.Any(u => ReferenceEquals(u.Cell, match))) upgrades.Add((match, cut ? Union(match.Box, box) : box, !cut, null));
                }
                added.Add(null);
            }
            else
            {
                marks[i] = DetectionMark.New;
                added.Add((box, group, d.Label, cut));
            }
        }
        return new Plan(placement, marks, added, upgrades, matched);
    }

    /// <summary>The field was counted with this id, its n-th new cell (in detection order) with cell id
    /// <paramref name="firstCellId"/> + n: its new cells join the registry. Returns the marks with the ids filled in.</summary>
    public IReadOnlyList<DetectionMark> Commit(Plan plan, long fieldId, long firstCellId = 0)
    {
        // Each new detection's cell id, in order (also a moved one's: the count now rests on this view).
        var cellIds = new long[plan.Marks.Count];
        var next = firstCellId;
        for (var i = 0; i < cellIds.Length; i++)
        {
            cellIds[i] = plan.Marks[i].AlreadyCounted ? 0 : firstCellId == 0 ? 0 : next++;
            if (plan.Marks[i].Moved) plan.Matched[i]!.CellId = cellIds[i];
        }
        foreach (var (cell, box, whole, movedLabel) in plan.Upgrades)
        {
            Remove(plan.Placement!.Segment, cell);
            cell.Box = box;
            cell.Cut = !whole;
            if (movedLabel is not null)
            {
                cell.Label = movedLabel;
                cell.FieldId = fieldId;
            }
            Insert(plan.Placement.Segment, cell);
        }
        var marks = new DetectionMark[plan.Marks.Count];
        for (var i = 0; i < marks.Length; i++)
        {
            // Where the cell is counted now: a count that moved to this field is this field's for all its boxes.
            var counted = plan.Marks[i].AlreadyCounted;
            marks[i] = plan.Marks[i] with
            {
                CountedInField = counted ? plan.Matched[i]!.FieldId : fieldId,
                CellId = counted ? plan.Matched[i]!.CellId : cellIds[i],
            };
            if (plan.Added[i] is { } a && _cells < MaxCells)
            {
                Insert(plan.Placement!.Segment, new Cell(a.Group, a.Label, a.Box, a.Cut, fieldId) { CellId = cellIds[i] });
                _cells++;
            }
        }
        return marks;
    }

    /// <summary>The registrar joined two segments: the cells of one move into the other's coordinates, so fields of
    /// either are compared with all of them from now on.</summary>
    public void Merge(SegmentMerge merge)
    {
        ArgumentNullException.ThrowIfNull(merge);
        var moving = _buckets.Where(b => b.Key.Segment == merge.From).ToList();
        foreach (var (key, cells) in moving)
        {
            _buckets.Remove(key);
            foreach (var cell in cells)
            {
                cell.Box = new BoxF((float)(cell.Box.X1 + merge.Dx), (float)(cell.Box.Y1 + merge.Dy), (float)(cell.Box.X2 + merge.Dx), (float)(cell.Box.Y2 + merge.Dy));
                Insert(merge.Into, cell);
            }
        }
    }

    public void Clear()
    {
        _buckets.Clear();
        _cells = 0;
    }

    private Cell? Find(int segment, string group, BoxF box, bool cut)
    {
        var cx = box.CenterX;
        var cy = box.CenterY;
        Cell? best = null;
        var bestDistance = double.MaxValue;
        var bx = (long)Math.Floor(cx / Bucket);
        var by = (long)Math.Floor(cy / Bucket);
        for (var y = by - 1; y <= by + 1; y++)
            for (var x = bx - 1; x <= bx + 1; x++)
            {
                if (!_buckets.TryGetValue((segment, x, y), out var list)) continue;
                foreach (var c in list)
                {
                    if (c.Group != group) continue;
                    var dx = c.Box.CenterX - cx;
                    var dy = c.Box.CenterY - cy;
                    var distance = Math.Sqrt(dx * dx + dy * dy);
                    if (!Same(c.Box, c.Cut, box, cut, distance) || distance >= bestDistance) continue;
                    best = c;
                    bestDistance = distance;
                }
            }
        return best;
    }

    /// <summary>Whether two boxes (slide pixels) are one cell.</summary>
    internal static bool Same(BoxF a, bool aCut, BoxF b, bool bCut, double centreDistance)
    {
        if (!aCut && !bCut)
        {
            var radius = (a.Width + a.Height + b.Width + b.Height) / 8.0;
            return centreDistance <= 0.5 * radius;
        }
        // A cut box's centre is off the cell's centre but inside the cell: inside the other (whole or cut) box.
        static bool Inside(BoxF box, float x, float y) => x >= box.X1 && x <= box.X2 && y >= box.Y1 && y <= box.Y2;
        if ((aCut && Inside(b, a.CenterX, a.CenterY)) || (bCut && Inside(a, b.CenterX, b.CenterY))) return true;
        // Cut on different sides (e.g. at a corner): most of the smaller part lies in the other box.
        var iw = MathF.Min(a.X2, b.X2) - MathF.Max(a.X1, b.X1);
        var ih = MathF.Min(a.Y2, b.Y2) - MathF.Max(a.Y1, b.Y1);
        if (iw > 0 && ih > 0 && iw * ih >= 0.5f * MathF.Min(a.Area, b.Area)) return true;
        // Both cut, by the facing edges of two fields: the two parts of one cell side by side. Together they are no
        // bigger than one cell (two different cells cut so would span two).
        if (!aCut || !bCut) return false;
        var u = Union(a, b);
        var d = MathF.Max(MathF.Max(a.Width, a.Height), MathF.Max(b.Width, b.Height));
        // Side by side: they share most of their extent across the cut.
        var across = MathF.Max(iw > 0 ? iw / MathF.Min(a.Width, b.Width) : 0, ih > 0 ? ih / MathF.Min(a.Height, b.Height) : 0);
        return across >= 0.5f && u.Width <= 1.25f * d && u.Height <= 1.25f * d;
    }

    private static BoxF Union(BoxF a, BoxF b) => new(MathF.Min(a.X1, b.X1), MathF.Min(a.Y1, b.Y1), MathF.Max(a.X2, b.X2), MathF.Max(a.Y2, b.Y2));

    private void Insert(int segment, Cell cell)
    {
        var key = (segment, (long)Math.Floor(cell.Box.CenterX / Bucket), (long)Math.Floor(cell.Box.CenterY / Bucket));
        if (!_buckets.TryGetValue(key, out var list)) _buckets[key] = list = new List<Cell>();
        list.Add(cell);
    }

    private void Remove(int segment, Cell cell)
    {
        var key = (segment, (long)Math.Floor(cell.Box.CenterX / Bucket), (long)Math.Floor(cell.Box.CenterY / Bucket));
        if (_buckets.TryGetValue(key, out var list)) list.Remove(cell);
    }
}
