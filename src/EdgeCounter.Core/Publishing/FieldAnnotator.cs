using System.Globalization;
using EdgeCounter.Counting;
using EdgeCounter.Detection;
using OpenCvSharp;

namespace EdgeCounter.Publishing;

/// <summary>Draws a field for people: boxes coloured by label with the label written on them, and a header band
/// above the image with text lines and a colour legend. Works on a copy; the input Mat is not changed.</summary>
public sealed class FieldAnnotator
{
    // Distinct BGR colours; labels take them in report order so a label keeps its colour across fields.
    private static readonly Scalar[] Palette =
    [
        new(60, 76, 231), new(113, 204, 46), new(219, 152, 52), new(15, 196, 241), new(182, 89, 155),
        new(0, 84, 211), new(156, 188, 26), new(94, 73, 52), new(34, 126, 230), new(166, 165, 149),
        new(133, 160, 22), new(43, 57, 192),
    ];

    private readonly IReadOnlyList<string> _labels;

    /// <param name="labels">The labels in report order (e.g. ModelInfo.Labels): they get palette colours in that order.</param>
    public FieldAnnotator(IReadOnlyList<string> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        _labels = labels.ToArray();
    }

    public Scalar ColourOf(string label)
    {
        var index = -1;
        for (var i = 0; i < _labels.Count; i++)
            if (string.Equals(_labels[i], label, StringComparison.Ordinal)) { index = i; break; }
        if (index < 0) index = _labels.Count + (int)((uint)StableHash(label) % (uint)Palette.Length);
        return Palette[index % Palette.Length];
    }

    /// <summary>The colour of a cell counted in an earlier field: boxed thin and grey, so the technician sees at a
    /// glance which cells this field added.</summary>
    public static readonly Scalar AlreadyCountedColour = new(150, 150, 150);

    /// <summary>
    /// <see cref="Annotate"/> at the height the picture is shown at: when the annotated frame would be taller than
    /// <paramref name="maxHeight"/>, the frame is shrunk first (<see cref="FrameResizer"/>), its boxes with it, so that
    /// frame and header band together are <paramref name="maxHeight"/> tall, and then annotated. A 2560x1920 camera's
    /// boxes and labels then read as a 640x480 camera's do (drawn at full size and shrunk 4x they were a pixel thin and
    /// the text unreadable), and no 5-megapixel copy is drawn on for a 480-line picture. 0: as <see cref="Annotate"/>.
    /// </summary>
    public Mat AnnotateAtHeight(Mat bgr, IReadOnlyList<Detection.Detection> detections, IReadOnlyList<string> headerLines, int maxHeight,
        IReadOnlyList<DetectionMark>? marks = null)
    {
        ArgumentNullException.ThrowIfNull(bgr);
        ArgumentNullException.ThrowIfNull(detections);
        ArgumentNullException.ThrowIfNull(headerLines);
        ArgumentOutOfRangeException.ThrowIfNegative(maxHeight);
        if (maxHeight == 0 || bgr.Empty() || bgr.Rows + Layout(bgr.Cols, detections, headerLines).BandHeight <= maxHeight)
            return Annotate(bgr, detections, headerLines, marks);
        // The band's height depends on the width (text size, legend rows): a few rounds settle the frame's height. Should
        // they not, the picture is a few lines over and the JPEG encoder's own height cap takes them off.
        int WidthAt(int h) => Math.Max(1, (int)Math.Round(bgr.Cols * (double)h / bgr.Rows));
        var height = maxHeight;
        for (var round = 0; round < 4; round++)
        {
            var next = Math.Max(1, maxHeight - Layout(WidthAt(height), detections, headerLines).BandHeight);
            if (next == height) break;
            height = next;
        }
        var width = WidthAt(height);
        float fx = (float)width / bgr.Cols, fy = (float)height / bgr.Rows;
        var scaled = detections.Select(d => d with { Box = new BoxF(d.Box.X1 * fx, d.Box.Y1 * fy, d.Box.X2 * fx, d.Box.Y2 * fy) }).ToList();
        using var resizer = new FrameResizer();
        return Annotate(resizer.Resize(bgr, width, height), scaled, headerLines, marks);
    }

    /// <summary>The field's picture as P/field/image carries it: annotated at <see cref="MqttOptions.ImageHeight"/>
    /// (<see cref="AnnotateAtHeight"/>), then a JPEG at <see cref="MqttOptions.ImageQuality"/> under
    /// <see cref="MqttOptions.MaxImageBytes"/>. The field publisher and the bench both make it here.</summary>
    public JpegEncoding Picture(Mat bgr, IReadOnlyList<Detection.Detection> detections, IReadOnlyList<string> headerLines, MqttOptions options,
        IReadOnlyList<DetectionMark>? marks = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        using var annotated = AnnotateAtHeight(bgr, detections, headerLines, options.ImageHeight, marks);
        return JpegBudgetEncoder.Encode(annotated, options.MaxImageBytes, options.ImageHeight, options.ImageQuality);
    }

    /// <summary>Returns a new BGR image: a header band (text lines, then a legend of the labels present) on top of
    /// the field with every detection boxed. Boxes are in the field's pixels. <paramref name="marks"/> (one per
    /// detection, optional): cells already counted in an earlier field are boxed thin and grey.</summary>
    public Mat Annotate(Mat bgr, IReadOnlyList<Detection.Detection> detections, IReadOnlyList<string> headerLines,
        IReadOnlyList<DetectionMark>? marks = null)
    {
        ArgumentNullException.ThrowIfNull(bgr);
        ArgumentNullException.ThrowIfNull(detections);
        ArgumentNullException.ThrowIfNull(headerLines);
        if (bgr.Empty() || bgr.Type() != MatType.CV_8UC3) throw new ArgumentException("Expected a non-empty 8-bit BGR image.", nameof(bgr));
        if (marks is not null && marks.Count != detections.Count) throw new ArgumentException("One mark per detection.", nameof(marks));

        var (fontScale, thickness, lineHeight, lines, legendRows, bandHeight) = Layout(bgr.Width, detections, headerLines);

        var canvas = new Mat();
        try
        {
            Cv2.CopyMakeBorder(bgr, canvas, bandHeight, 0, 0, 0, BorderTypes.Constant, new Scalar(30, 30, 30));
            var y = lineHeight;
            foreach (var line in lines)
            {
                // OpenCV refuses empty text (e.g. no totals yet at the first field).
                if (!string.IsNullOrEmpty(line))
                    Cv2.PutText(canvas, line, new Point(8, y - 6), HersheyFonts.HersheySimplex, fontScale, Scalar.White, thickness, LineTypes.AntiAlias);
                y += lineHeight;
            }
            foreach (var row in legendRows)
            {
                foreach (var (label, x) in row)
                {
                    var size = lineHeight - 12;
                    Cv2.Rectangle(canvas, new Rect(x, y - lineHeight + 4, size, size), ColourOf(label), -1);
                    Cv2.PutText(canvas, label, new Point(x + size + 6, y - 6), HersheyFonts.HersheySimplex, fontScale, Scalar.White, thickness, LineTypes.AntiAlias);
                }
                y += lineHeight;
            }

            // Cells counted before first, so the new ones are drawn over them.
            var order = Enumerable.Range(0, detections.Count).OrderBy(i => marks is not null && marks[i].AlreadyCounted ? 0 : 1);
            foreach (var i in order)
            {
                var detection = detections[i];
                var box = detection.Box;
                var rect = new Rect((int)MathF.Round(box.X1), (int)MathF.Round(box.Y1) + bandHeight,
                    Math.Max(1, (int)MathF.Round(box.Width)), Math.Max(1, (int)MathF.Round(box.Height)));
                if (marks is not null && marks[i].AlreadyCounted)
                {
                    Cv2.Rectangle(canvas, rect, AlreadyCountedColour, 1, LineTypes.Link8);
                    continue;
                }
                var colour = ColourOf(detection.Label);
                Cv2.Rectangle(canvas, rect, colour, thickness + 1, LineTypes.AntiAlias);
                var caption = $"{detection.Label} {detection.Score:0.00}";
                var textSize = Cv2.GetTextSize(caption, HersheyFonts.HersheySimplex, fontScale * 0.8, thickness, out var baseline);
                var top = Math.Max(bandHeight, rect.Y - textSize.Height - baseline - 2);
                Cv2.Rectangle(canvas, new Rect(rect.X, top, textSize.Width + 4, textSize.Height + baseline + 2), colour, -1);
                Cv2.PutText(canvas, caption, new Point(rect.X + 2, top + textSize.Height + 1), HersheyFonts.HersheySimplex, fontScale * 0.8,
                    Scalar.Black, thickness, LineTypes.AntiAlias);
            }
            return canvas;
        }
        catch
        {
            canvas.Dispose();
            throw;
        }
    }

    /// <summary>Text size, line height, legend rows and the header band's height for a field <paramref name="width"/> wide.</summary>
    private (double FontScale, int Thickness, int LineHeight, List<string> Lines, List<List<(string Label, int X)>> LegendRows, int BandHeight) Layout(int width,
        IReadOnlyList<Detection.Detection> detections, IReadOnlyList<string> headerLines)
    {
        var fontScale = Math.Clamp(width / 1400.0, 0.4, 1.2);
        var thickness = Math.Max(1, (int)Math.Round(fontScale * 2));
        var lineHeight = (int)Math.Ceiling(28 * fontScale) + 6;
        var lines = headerLines.SelectMany(l => WrapLine(l, width, fontScale, thickness)).ToList();
        var legend = _labels.Concat(detections.Select(d => d.Label).Where(l => !_labels.Contains(l)).Distinct()).ToArray();
        var legendRows = LayoutLegend(legend, width, fontScale, thickness);
        return (fontScale, thickness, lineHeight, lines, legendRows, lineHeight * (lines.Count + legendRows.Count) + 8);
    }

    /// <summary>A header line too wide for the picture, broken at its two-space separators (between "RBC 538" and
    /// "Platelets 50", never inside one): a narrow picture keeps every total in view instead of cutting the line.</summary>
    private static IEnumerable<string> WrapLine(string line, int width, double fontScale, int thickness)
    {
        if (string.IsNullOrEmpty(line)) { yield return line; yield break; }
        int Width(string text) => Cv2.GetTextSize(text, HersheyFonts.HersheySimplex, fontScale, thickness, out _).Width;
        var room = width - 16;
        if (Width(line) <= room) { yield return line; yield break; }
        var current = "";
        foreach (var part in line.Split("  ", StringSplitOptions.RemoveEmptyEntries))
        {
            var joined = current.Length == 0 ? part : $"{current}  {part}";
            if (current.Length > 0 && Width(joined) > room)
            {
                yield return current;
                current = part;
            }
            else current = joined;
        }
        if (current.Length > 0) yield return current;
    }

    /// <summary>Header lines for a counted field: session, field, target progress, then group and label totals.</summary>
    public static IReadOnlyList<string> HeaderFor(CountsSnapshot counts, long fieldId)
    {
        ArgumentNullException.ThrowIfNull(counts);
        var sample = string.IsNullOrEmpty(counts.SampleId) ? "" : $"sample {counts.SampleId}  ";
        return
        [
            $"{sample}field {fieldId}  {(counts.Marrow is null ? "white" : "nucleated")} cells {counts.WhiteCells}/{counts.Target} ({counts.Progress * 100:0}%)  {counts.State.ToString().ToLowerInvariant()}",
            string.Join("  ", counts.Groups.Select(g => $"{g.Key} {g.Value}")
                .Concat(counts.Marrow?.Headline() ?? [])),
            string.Join("  ", counts.Totals.Where(t => t.Value > 0).Select(t => $"{t.Key} {t.Value}")),
        ];
    }

    private static List<List<(string Label, int X)>> LayoutLegend(IReadOnlyList<string> labels, int width, double fontScale, int thickness)
    {
        var rows = new List<List<(string, int)>>();
        var row = new List<(string, int)>();
        var x = 8;
        var square = (int)Math.Ceiling(28 * fontScale) - 6;
        foreach (var label in labels)
        {
            var w = square + 6 + Cv2.GetTextSize(label, HersheyFonts.HersheySimplex, fontScale, thickness, out _).Width + 16;
            if (x + w > width && row.Count > 0)
            {
                rows.Add(row);
                row = [];
                x = 8;
            }
            row.Add((label, x));
            x += w;
        }
        if (row.Count > 0) rows.Add(row);
        return rows;
    }

    private static int StableHash(string text)
    {
        unchecked
        {
            var hash = (int)2166136261;
            foreach (var c in text) hash = (hash ^ c) * 16777619;
            return hash;
        }
    }
}
