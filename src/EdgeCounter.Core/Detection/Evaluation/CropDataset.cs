namespace EdgeCounter.Detection;

/// <summary>One single-cell image and its class.</summary>
public sealed record CropImage(string ImagePath, string Class);

/// <summary>
/// A single-cell set laid out like LISC crops or PBC: <c>CLASS/FILE.jpg</c> and <c>labels.csv</c> (<c>file,class[,...]</c>,
/// file relative to the set). Without labels.csv, every image in a class folder is of that class.
/// </summary>
public sealed class CropDataset
{
    private static readonly string[] ImageExtensions = [".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"];

    private CropDataset(string root, IReadOnlyList<CropImage> images, IReadOnlyList<string> classes)
    {
        Root = root; Images = images; Classes = classes;
    }

    public string Root { get; }
    public IReadOnlyList<CropImage> Images { get; }
    /// <summary>Class names in order of first appearance.</summary>
    public IReadOnlyList<string> Classes { get; }

    /// <exception cref="IOException">The folder or a listed image is missing.</exception>
    /// <exception cref="FormatException">A labels.csv line has no file and class.</exception>
    public static CropDataset Load(string root)
    {
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"crop set not found: {root}");
        var csv = Path.Combine(root, "labels.csv");
        var images = new List<CropImage>();
        if (File.Exists(csv))
        {
            var n = 0;
            foreach (var raw in File.ReadLines(csv))
            {
                n++;
                var line = raw.Trim();
                if (line.Length == 0) continue;
                var cells = line.Split(',');
                if (n == 1 && cells[0].Trim().Equals("file", StringComparison.OrdinalIgnoreCase)) continue; // header
                if (cells.Length < 2 || cells[0].Trim().Length == 0 || cells[1].Trim().Length == 0)
                    throw new FormatException($"{csv}:{n}: '{line}' is not file,class");
                var path = Path.Combine(root, cells[0].Trim());
                if (!File.Exists(path)) throw new FileNotFoundException($"{csv}:{n}: image not found: {path}", path);
                images.Add(new CropImage(path, cells[1].Trim()));
            }
        }
        else
        {
            foreach (var folder in Directory.EnumerateDirectories(root).Order(StringComparer.Ordinal))
                foreach (var file in Directory.EnumerateFiles(folder).Where(f => ImageExtensions.Contains(Path.GetExtension(f).ToLowerInvariant())).Order(StringComparer.Ordinal))
                    images.Add(new CropImage(file, Path.GetFileName(folder)));
        }
        if (images.Count == 0) throw new FileNotFoundException($"no crops in {root} (expected CLASS/FILE.jpg and labels.csv)");
        return new CropDataset(root, images, images.Select(i => i.Class).Distinct(StringComparer.Ordinal).ToList());
    }

    /// <summary>The detection of <paramref name="cellClass"/> whose box centre is nearest the crop's centre, or null.</summary>
    public static Detection? CellNearestCentre(IEnumerable<Detection> detections, string cellClass, int width, int height)
    {
        Detection? best = null;
        var bestDistance = double.MaxValue;
        foreach (var d in detections)
        {
            if (!string.Equals(d.Class, cellClass, StringComparison.Ordinal)) continue;
            var distance = Math.Pow(d.Box.CenterX - width / 2.0, 2) + Math.Pow(d.Box.CenterY - height / 2.0, 2);
            if (distance < bestDistance) { bestDistance = distance; best = d; }
        }
        return best;
    }
}
