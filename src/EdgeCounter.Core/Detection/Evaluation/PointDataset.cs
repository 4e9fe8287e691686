using System.Globalization;

namespace EdgeCounter.Detection;

/// <summary>One labelled cell centre: pixel position and the set's type code (e.g. a red-cell morphology).</summary>
public readonly record struct LabelledPoint(float X, float Y, int Type);

/// <summary>One image of a point set and its points.</summary>
public sealed record PointImage(string Id, string ImagePath, IReadOnlyList<LabelledPoint> Points);

/// <summary>
/// A point-labelled set laid out like Chula RBC-12: <c>images/N.jpg</c>, <c>points/N.txt</c> with one <c>x y type</c>
/// line per labelled cell, <c>splits/NAME.txt</c> listing image ids. Type names come from <c>types.txt</c>
/// (<c>code name</c> lines) when the set has one, else Chula RBC-12's morphology codes.
/// </summary>
public sealed class PointDataset
{
    /// <summary>Chula RBC-12's type codes (its README): red-cell morphology.</summary>
    public static readonly IReadOnlyDictionary<int, string> ChulaRbc12Types = new Dictionary<int, string>
    {
        [0] = "normal", [1] = "macrocyte", [2] = "microcyte", [3] = "spherocyte", [4] = "target cell", [5] = "stomatocyte",
        [6] = "ovalocyte", [7] = "teardrop", [8] = "burr cell", [9] = "schistocyte", [10] = "uncategorised",
        [11] = "hypochromia", [12] = "elliptocyte",
    };

    private static readonly string[] ImageExtensions = [".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"];

    private PointDataset(string root, string split, IReadOnlyList<PointImage> images, IReadOnlyDictionary<int, string> typeNames, IReadOnlyList<string> warnings)
    {
        Root = root; Split = split; Images = images; TypeNames = typeNames; Warnings = warnings;
    }

    public string Root { get; }
    public string Split { get; }
    public IReadOnlyList<PointImage> Images { get; }
    public IReadOnlyDictionary<int, string> TypeNames { get; }
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>The name of a type code ("type N" when the set does not name it).</summary>
    public string TypeName(int type) => TypeNames.TryGetValue(type, out var n) ? n : $"type {type}";

    /// <summary>"test" when splits/test.txt exists, else "all" (every image with a points file).</summary>
    public static string DefaultSplit(string root) => File.Exists(Path.Combine(root, "splits", "test.txt")) ? "test" : "all";

    /// <exception cref="IOException">The folder, a split, an image or a points file is missing.</exception>
    /// <exception cref="FormatException">A points or types line cannot be read (the message names file and line).</exception>
    public static PointDataset Load(string root, string? split = null)
    {
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"point set not found: {root}");
        var imagesDir = Path.Combine(root, "images");
        var pointsDir = Path.Combine(root, "points");
        if (!Directory.Exists(imagesDir) || !Directory.Exists(pointsDir))
            throw new DirectoryNotFoundException($"not a point set (needs images/ and points/): {root}");
        split ??= DefaultSplit(root);
        var splitFile = Path.Combine(root, "splits", split + ".txt");
        IEnumerable<string> ids;
        if (File.Exists(splitFile))
            ids = File.ReadLines(splitFile).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).Select(l => l.Split(' ', '\t')[0]);
        else if (split.Equals("all", StringComparison.OrdinalIgnoreCase))
            ids = Directory.EnumerateFiles(pointsDir, "*.txt").Select(Path.GetFileNameWithoutExtension).OfType<string>()
                .OrderBy(id => int.TryParse(id, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? n : int.MaxValue).ThenBy(id => id, StringComparer.Ordinal);
        else throw new FileNotFoundException($"split '{split}' not found: {splitFile}", splitFile);

        var warnings = new List<string>();
        var images = new List<PointImage>();
        foreach (var id in ids)
        {
            var image = ImageExtensions.Select(e => Path.Combine(imagesDir, id + e)).FirstOrDefault(File.Exists)
                ?? throw new FileNotFoundException($"image of '{id}' not found in {imagesDir}");
            var pointsFile = Path.Combine(pointsDir, id + ".txt");
            if (!File.Exists(pointsFile)) { warnings.Add($"{id}: no points file ({pointsFile}); image left out"); continue; }
            images.Add(new PointImage(id, image, ParsePoints(File.ReadLines(pointsFile), pointsFile)));
        }
        var typesFile = Path.Combine(root, "types.txt");
        var typeNames = File.Exists(typesFile) ? ParseTypes(File.ReadLines(typesFile), typesFile) : ChulaRbc12Types;
        return new PointDataset(root, split, images, typeNames, warnings);
    }

    /// <summary>Reads "x y type" lines (type optional: 0); blank and # lines are skipped.</summary>
    public static IReadOnlyList<LabelledPoint> ParsePoints(IEnumerable<string> lines, string source)
    {
        var points = new List<LabelledPoint>();
        var n = 0;
        foreach (var raw in lines)
        {
            n++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            var cells = line.Split([' ', '\t', ','], StringSplitOptions.RemoveEmptyEntries);
            if (cells.Length is < 2 or > 3
                || !float.TryParse(cells[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var x)
                || !float.TryParse(cells[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var y)
                || !float.IsFinite(x) || !float.IsFinite(y))
                throw new FormatException($"{source}:{n}: '{line}' is not 'x y type'");
            var type = 0;
            if (cells.Length == 3 && !int.TryParse(cells[2], NumberStyles.Integer, CultureInfo.InvariantCulture, out type))
                throw new FormatException($"{source}:{n}: type '{cells[2]}' is not an integer");
            points.Add(new LabelledPoint(x, y, type));
        }
        return points;
    }

    /// <summary>Reads "code name" lines (the name may hold spaces).</summary>
    public static IReadOnlyDictionary<int, string> ParseTypes(IEnumerable<string> lines, string source)
    {
        var names = new Dictionary<int, string>();
        var n = 0;
        foreach (var raw in lines)
        {
            n++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            var space = line.IndexOfAny([' ', '\t']);
            if (space < 0 || !int.TryParse(line[..space], NumberStyles.Integer, CultureInfo.InvariantCulture, out var code))
                throw new FormatException($"{source}:{n}: '{line}' is not 'code name'");
            names[code] = line[(space + 1)..].Trim();
        }
        return names;
    }
}

/// <summary>Points against boxes: a point is found when it falls inside a detected box; one point per box, boxes
/// taken greedily by score, each taking the unmatched point inside it nearest its centre.</summary>
public static class PointMatcher
{
    /// <summary>For each point, whether a detection found it.</summary>
    public static bool[] Match(IReadOnlyList<(float Score, BoxF Box)> detections, IReadOnlyList<LabelledPoint> points)
    {
        var found = new bool[points.Count];
        foreach (var (_, box) in detections.OrderByDescending(d => d.Score))
        {
            var best = -1;
            var bestDistance = double.MaxValue;
            for (var p = 0; p < points.Count; p++)
            {
                if (found[p]) continue;
                var (x, y) = (points[p].X, points[p].Y);
                if (x < box.X1 || x > box.X2 || y < box.Y1 || y > box.Y2) continue;
                var distance = Math.Pow(x - box.CenterX, 2) + Math.Pow(y - box.CenterY, 2);
                if (distance < bestDistance) { bestDistance = distance; best = p; }
            }
            if (best >= 0) found[best] = true;
        }
        return found;
    }
}
