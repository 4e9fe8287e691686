using EdgeCounter.Counting;
using EdgeCounter.Fields;
using OpenCvSharp;

namespace EdgeCounter.Publishing;

/// <summary>
/// The live slide map: a low-resolution mosaic of the counted fields at their slide positions, each with its outline,
/// and the counted cells as dots by class group (white cells purple, red cells red, platelets blue). The technician
/// sees where they have counted and where not. The map shows the current map segment (positions compare only within a
/// segment; after an unknown position a new map starts, and a field that joins two segments brings the old map back). Pure image work, no I/O; not thread-safe.
/// </summary>
public sealed class SlideMap(int maxWidth = 1024, int maxHeight = 768, double scale = 1 / 8.0, int memory = 4000) : IDisposable
{
    private sealed record Tile(Mat Thumbnail, double X, double Y, double Width, double Height, List<(float X, float Y, string Group)> Cells, int Segment);

    private readonly LinkedList<Tile> _tiles = new();
    private int _segment = int.MinValue;

    public static Scalar ColourOf(string group) => group switch
    {
        "WBC" => new Scalar(170, 40, 140),
        "RBC" => new Scalar(40, 40, 220),
        "Platelets" => new Scalar(200, 120, 20),
        _ => new Scalar(40, 160, 40),
    };

    /// <summary>Fields on the map now.</summary>
    public int Fields => _tiles.Count(t => t.Segment == _segment);

    /// <summary>Adds a counted field: its image, where it lies, and the cells it counted (new ones; frame pixels).</summary>
    public void Add(Mat bgrField, FieldPlacement? placement, IReadOnlyList<Detection.Detection> detections, IReadOnlyList<DetectionMark>? marks)
    {
        var p = placement ?? FieldPlacement.Unknown(int.MaxValue);
        // Fields of every segment are kept (a later field may join two); the map shows the current one.
        if (p.Merged is { } m)
            for (var node = _tiles.First; node is not null; node = node.Next)
                if (node.Value.Segment == m.From) node.Value = node.Value with { X = node.Value.X + m.Dx, Y = node.Value.Y + m.Dy, Segment = m.Into };
        _segment = p.Segment;
        var thumbnail = new Mat();
        Cv2.Resize(bgrField, thumbnail, new Size(Math.Max(1, (int)Math.Round(bgrField.Cols * scale)), Math.Max(1, (int)Math.Round(bgrField.Rows * scale))), 0, 0, InterpolationFlags.Area);
        var cells = new List<(float, float, string)>();
        for (var i = 0; i < detections.Count; i++)
            if (marks is null || !marks[i].AlreadyCounted)
            {
                var d = detections[i];
                cells.Add((d.Box.CenterX, d.Box.CenterY, d.Class));
                // A count moved here from a field that saw the cell cut: its dot there goes (one dot per counted cell).
                if (marks is not null && marks[i].Moved && p.Known)
                    RemoveNearestDot(p.Segment, p.X + d.Box.CenterX, p.Y + d.Box.CenterY, d.Class, Math.Max(d.Box.Width, d.Box.Height));
            }
        // Unknown position: alone in its segment, at the origin.
        _tiles.AddLast(new Tile(thumbnail, p.Known ? p.X : 0, p.Known ? p.Y : 0, bgrField.Cols, bgrField.Rows, cells, p.Segment));
        while (_tiles.Count > memory)
        {
            _tiles.First!.Value.Thumbnail.Dispose();
            _tiles.RemoveFirst();
        }
    }

    private void RemoveNearestDot(int segment, double x, double y, string group, double within)
    {
        (Tile Tile, int Index)? best = null;
        var bestDistance = within;
        foreach (var t in _tiles)
        {
            if (t.Segment != segment || x < t.X - within || x > t.X + t.Width + within || y < t.Y - within || y > t.Y + t.Height + within) continue;
            for (var i = 0; i < t.Cells.Count; i++)
            {
                var c = t.Cells[i];
                if (c.Group != group) continue;
                var distance = Math.Sqrt(Math.Pow(t.X + c.X - x, 2) + Math.Pow(t.Y + c.Y - y, 2));
                if (distance < bestDistance) (best, bestDistance) = ((t, i), distance);
            }
        }
        if (best is { } b) b.Tile.Cells.RemoveAt(b.Index);
    }

    /// <summary>Renders the map (BGR; the caller disposes): fields in counting order, outlines, cells, the latest field outlined brighter.</summary>
    public Mat Render()
    {
        var tiles = _tiles.Where(t => t.Segment == _segment).ToList();
        if (tiles.Count == 0) return new Mat(64, 64, MatType.CV_8UC3, new Scalar(40, 40, 40));
        var x0 = tiles.Min(t => t.X);
        var y0 = tiles.Min(t => t.Y);
        var x1 = tiles.Max(t => t.X + t.Width);
        var y1 = tiles.Max(t => t.Y + t.Height);
        const int pad = 8;
        // The map's scale: the configured one, smaller when the slide area counted so far would not fit.
        var s = Math.Min(scale, Math.Min((maxWidth - 2 * pad) / (x1 - x0), (maxHeight - 2 * pad) / (y1 - y0)));
        var canvas = new Mat((int)Math.Ceiling((y1 - y0) * s) + 2 * pad, (int)Math.Ceiling((x1 - x0) * s) + 2 * pad, MatType.CV_8UC3, new Scalar(40, 40, 40));
        Point At(double x, double y) => new((int)Math.Round((x - x0) * s) + pad, (int)Math.Round((y - y0) * s) + pad);
        foreach (var t in tiles)
        {
            var topLeft = At(t.X, t.Y);
            var size = new Size(Math.Max(1, (int)Math.Round(t.Width * s)), Math.Max(1, (int)Math.Round(t.Height * s)));
            var rect = new Rect(topLeft, size) & new Rect(0, 0, canvas.Cols, canvas.Rows);
            if (rect.Width <= 0 || rect.Height <= 0) continue;
            using var resized = new Mat();
            Cv2.Resize(t.Thumbnail, resized, size, 0, 0, InterpolationFlags.Area);
            using var target = new Mat(canvas, rect);
            using var source = new Mat(resized, new Rect(rect.X - topLeft.X, rect.Y - topLeft.Y, rect.Width, rect.Height));
            // Dimmed, so the outlines and dots stand out.
            Cv2.AddWeighted(source, 0.6, source, 0, 30, target);
        }
        var radius = Math.Max(1, (int)Math.Round(2 * s / scale));
        foreach (var t in tiles)
        {
            Cv2.Rectangle(canvas, new Rect(At(t.X, t.Y), new Size((int)Math.Round(t.Width * s), (int)Math.Round(t.Height * s))),
                t == tiles[^1] ? new Scalar(0, 230, 255) : new Scalar(200, 200, 200), 1);
            foreach (var (cx, cy, group) in t.Cells)
                Cv2.Circle(canvas, At(t.X + cx, t.Y + cy), radius, ColourOf(group), -1, LineTypes.AntiAlias);
        }
        return canvas;
    }

    /// <summary>The map as JPEG bytes.</summary>
    public byte[] RenderJpeg(int quality = 80)
    {
        using var image = Render();
        Cv2.ImEncode(".jpg", image, out var bytes, new ImageEncodingParam(ImwriteFlags.JpegQuality, quality));
        return bytes;
    }

    public void Clear()
    {
        foreach (var t in _tiles) t.Thumbnail.Dispose();
        _tiles.Clear();
    }

    public void Dispose() => Clear();
}
