using System.Globalization;
using System.Xml.Linq;

namespace EdgeCounter.Detection;

/// <summary>One annotated object of a VOC image; <see cref="Name"/> is the class name as written in the XML.</summary>
public sealed record VocObject(string Name, BoxF Box, bool Difficult);

/// <summary>One VOC image: id (file stem), image path, size from the XML, objects.</summary>
public sealed record VocImage(string Id, string ImagePath, int Width, int Height, IReadOnlyList<VocObject> Objects);

/// <summary>
/// A Pascal VOC layout set (Annotations/*.xml, JPEGImages/, ImageSets/Main/&lt;split&gt;.txt) such as BCCD or the
/// output of <c>synth</c>. Boxes of zero or negative size are skipped and reported in <see cref="Warnings"/>.
/// </summary>
public sealed class VocDataset
{
    private VocDataset(string root, string split, IReadOnlyList<VocImage> images, IReadOnlyList<string> classNames, IReadOnlyList<string> warnings)
    {
        Root = root; Split = split; Images = images; ClassNames = classNames; Warnings = warnings;
    }

    public string Root { get; }
    public string Split { get; }
    public IReadOnlyList<VocImage> Images { get; }
    /// <summary>Object names in order of first appearance (over the whole split).</summary>
    public IReadOnlyList<string> ClassNames { get; }
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>"test" when ImageSets/Main/test.txt exists, else "all" (every annotation file).</summary>
    public static string DefaultSplit(string root) =>
        File.Exists(Path.Combine(root, "ImageSets", "Main", "test.txt")) ? "test" : "all";

    public static VocDataset Load(string root, string? split = null)
    {
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"VOC directory not found: {root}");
        var annotations = Path.Combine(root, "Annotations");
        if (!Directory.Exists(annotations)) throw new DirectoryNotFoundException($"not a VOC layout (no Annotations/ folder): {root}");
        split ??= DefaultSplit(root);

        IEnumerable<string> ids;
        if (split.Equals("all", StringComparison.OrdinalIgnoreCase) && !File.Exists(SplitFile(root, split)))
            ids = Directory.EnumerateFiles(annotations, "*.xml").Select(Path.GetFileNameWithoutExtension).Order(StringComparer.Ordinal)!;
        else
        {
            var file = SplitFile(root, split);
            if (!File.Exists(file)) throw new FileNotFoundException($"split '{split}' not found: {file}", file);
            ids = File.ReadLines(file).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#'))
                .Select(l => l.Split(' ', '\t')[0]);
        }

        var warnings = new List<string>();
        var images = new List<VocImage>();
        var classes = new List<string>();
        foreach (var id in ids)
        {
            var xmlPath = Path.Combine(annotations, id + ".xml");
            if (!File.Exists(xmlPath)) throw new FileNotFoundException($"annotation of '{id}' not found: {xmlPath}", xmlPath);
            var image = ParseAnnotation(XDocument.Load(xmlPath), id, root, warnings);
            foreach (var o in image.Objects)
                if (!classes.Contains(o.Name, StringComparer.Ordinal)) classes.Add(o.Name);
            images.Add(image);
        }
        return new VocDataset(root, split, images, classes, warnings);
    }

    private static string SplitFile(string root, string split) => Path.Combine(root, "ImageSets", "Main", split + ".txt");

    /// <summary>Reads one annotation XML; degenerate boxes are left out with a line in <paramref name="warnings"/>.</summary>
    public static VocImage ParseAnnotation(XDocument xml, string id, string root, List<string> warnings)
    {
        var annotation = xml.Root ?? throw new FormatException($"{id}: empty annotation");
        var fileName = annotation.Element("filename")?.Value.Trim();
        var imagePath = Path.Combine(root, "JPEGImages", string.IsNullOrEmpty(fileName) ? id + ".jpg" : fileName);
        if (!File.Exists(imagePath))
        {
            // Some sets name the file in the XML differently from the file on disk; try the id with common extensions.
            var found = new[] { ".jpg", ".jpeg", ".png", ".bmp" }.Select(e => Path.Combine(root, "JPEGImages", id + e)).FirstOrDefault(File.Exists);
            if (found is not null) imagePath = found;
        }
        var size = annotation.Element("size");
        var width = ParseInt(size?.Element("width")?.Value);
        var height = ParseInt(size?.Element("height")?.Value);
        var objects = new List<VocObject>();
        var n = 0;
        foreach (var o in annotation.Elements("object"))
        {
            n++;
            var name = o.Element("name")?.Value.Trim() ?? "";
            var b = o.Element("bndbox");
            if (name.Length == 0 || b is null) { warnings.Add($"{id}: object {n} has no name or box; skipped"); continue; }
            var box = new BoxF(ParseFloat(b.Element("xmin")?.Value), ParseFloat(b.Element("ymin")?.Value),
                ParseFloat(b.Element("xmax")?.Value), ParseFloat(b.Element("ymax")?.Value));
            if (!(box.X2 > box.X1 && box.Y2 > box.Y1))
            {
                warnings.Add($"{id}: {name} box ({box.X1}, {box.Y1})-({box.X2}, {box.Y2}) has zero or negative size; skipped");
                continue;
            }
            var difficult = o.Element("difficult")?.Value.Trim() == "1";
            objects.Add(new VocObject(name, box, difficult));
        }
        return new VocImage(id, imagePath, width, height, objects);
    }

    private static int ParseInt(string? s) =>
        int.TryParse(s?.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : 0;

    private static float ParseFloat(string? s) =>
        float.TryParse(s?.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : float.NaN;
}

/// <summary>The per-image WBC subtype list of BCCD (<c>wbc_subtypes.csv</c>: image,subtype[,...]).</summary>
public static class SubtypeCsv
{
    public static IReadOnlyDictionary<string, string> Parse(IEnumerable<string> lines)
    {
        var map = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var first = true;
        foreach (var raw in lines)
        {
            var line = raw.Trim();
            if (line.Length == 0) continue;
            var cells = line.Split(',');
            if (first)
            {
                first = false;
                if (cells[0].Trim().Equals("image", StringComparison.OrdinalIgnoreCase)) continue; // header
            }
            if (cells.Length < 2) throw new FormatException($"subtype CSV line '{line}' needs image,subtype");
            map[Path.GetFileNameWithoutExtension(cells[0].Trim())] = cells[1].Trim();
        }
        return map;
    }
}
