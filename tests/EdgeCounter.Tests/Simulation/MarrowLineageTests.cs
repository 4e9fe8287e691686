using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Xml.Linq;
using EdgeCounter.Simulation;

namespace EdgeCounter.Tests.Simulation;

/// <summary>The marrow profile's erythroid, immature granulocytic and blast cells: shares, sizes, look, labels.</summary>
public class MarrowLineageTests
{
    private static readonly CellType[] MarrowLineages =
        [CellType.Erythroblast, CellType.Myelocyte, CellType.Metamyelocyte, CellType.BandNeutrophil, CellType.Blast];

    /// <summary>The white-layer cells (nucleated, megakaryocytes apart) centred in 600 fields of 64 x 48 um.</summary>
    private static List<SlideCell> WhiteCellsOfManyFields(SlideProfile profile, ulong seed)
    {
        var layout = new SlideLayout(seed, profile, 0.1, 40 * 640, 30 * 480);
        var cells = new List<SlideCell>();
        for (var i = 0; i < 600; i++)
        {
            var x = 640 + (i % 30) * 800;
            var y = 480 + (i / 30) * 650;
            cells.AddRange(layout.CellsIn(x, y, x + 640, y + 480)
                .Where(c => c.Cx >= x && c.Cx < x + 640 && c.Cy >= y && c.Cy < y + 480)
                .Where(c => c.Type is not (CellType.Erythrocyte or CellType.Platelet or CellType.Megakaryocyte)));
        }
        return cells;
    }

    [Fact]
    public void Marrow_lineages_appear_at_the_documented_shares()
    {
        var cells = WhiteCellsOfManyFields(SlideProfile.Marrow, 99);
        Assert.True(cells.Count > 1000, $"only {cells.Count} nucleated cells");
        double Share(params CellType[] types) => cells.Count(c => types.Contains(c.Type)) / (double)cells.Count;
        // Each type near its weight in the mix (docs/simulator.md), within ~4 standard errors.
        foreach (var (type, weight) in SlideLayout.MarrowMix)
        {
            var tolerance = 4 * Math.Sqrt(weight * (1 - weight) / cells.Count) + 0.005;
            Assert.InRange(Share(type), weight - tolerance, weight + tolerance);
        }
        // And the lineages a marrow differential reports, at a normal adult marrow's figures.
        var granulocytic = Share(CellType.Neutrophil, CellType.BandNeutrophil, CellType.Metamyelocyte, CellType.Myelocyte, CellType.Eosinophil, CellType.Basophil);
        var erythroid = Share(CellType.Erythroblast);
        Assert.InRange(granulocytic, 0.50, 0.65);
        Assert.InRange(erythroid, 0.19, 0.26);
        Assert.InRange(granulocytic / erythroid, 2, 4); // M:E ratio
        Assert.InRange(Share(CellType.Lymphocyte), 0.08, 0.15);
        Assert.InRange(Share(CellType.PlasmaCell), 0.04, 0.09);
        Assert.InRange(Share(CellType.Blast), 0.005, 0.03);
    }

    [Fact]
    public void Marrow_lineages_have_their_sizes()
    {
        var cells = WhiteCellsOfManyFields(SlideProfile.Marrow, 5);
        IEnumerable<double> Diameters(CellType type) => cells.Where(c => c.Type == type).Select(c => 2 * c.Radius * 0.1);
        void InRange(CellType type, double min, double max)
        {
            var d = Diameters(type).ToList();
            Assert.NotEmpty(d);
            Assert.All(d, x => Assert.InRange(x, min, max));
        }
        InRange(CellType.Erythroblast, 7, 16);
        InRange(CellType.Myelocyte, 12, 18);
        InRange(CellType.Metamyelocyte, 10, 15);
        InRange(CellType.BandNeutrophil, 10, 12);
        InRange(CellType.Blast, 12, 20);
        // The three erythroblast stages by size (orthochromatic 7-9, polychromatic 9-12, basophilic 12-16 um), the
        // later ones the more common, as in marrow.
        var erythroblasts = Diameters(CellType.Erythroblast).ToList();
        double StageShare(double min, double max) => erythroblasts.Count(d => d >= min && d < max) / (double)erythroblasts.Count;
        Assert.InRange(StageShare(12, 16), 0.08, 0.22);
        Assert.InRange(StageShare(9, 12), 0.4, 0.6);
        Assert.InRange(StageShare(7, 9), 0.25, 0.45);
    }

    [Fact]
    public void Erythroblast_cytoplasm_turns_from_blue_to_pink_as_it_matures()
    {
        var palette = new StainPalette(3, 0);
        var textures = new SlideTextures(3, 0.1);
        var cells = WhiteCellsOfManyFields(SlideProfile.Marrow, 3).Where(c => c.Type == CellType.Erythroblast).ToList();
        // Dye density of the cytoplasm just inside the membrane, where no nucleus reaches: red absorbed more than blue
        // is a blue cell; blue absorbed more than red a pink one.
        (double B, double R) Cytoplasm(SlideCell cell)
        {
            var left = (int)Math.Floor(cell.X0);
            var top = (int)Math.Floor(cell.Y0);
            var width = (int)Math.Ceiling(cell.X1) - left;
            var height = (int)Math.Ceiling(cell.Y1) - top;
            var density = new float[width * height * 3];
            cell.Paint(density, left, top, width, height, palette, textures);
            double b = 0, r = 0;
            for (var k = 0; k < 16; k++)
            {
                var t = k * Math.PI / 8;
                var x = (int)(cell.Cx + 0.85 * cell.Radius * Math.Cos(t)) - left;
                var y = (int)(cell.Cy + 0.85 * cell.Radius * Math.Sin(t)) - top;
                b += density[(y * width + x) * 3];
                r += density[(y * width + x) * 3 + 2];
            }
            return (b, r);
        }
        var basophilic = cells.Where(c => 2 * c.Radius * 0.1 >= 12).Take(5).ToList();
        var orthochromatic = cells.Where(c => 2 * c.Radius * 0.1 < 9).Take(5).ToList();
        Assert.NotEmpty(basophilic);
        Assert.NotEmpty(orthochromatic);
        Assert.All(basophilic, c => Assert.True(Cytoplasm(c).R > 1.5 * Cytoplasm(c).B, "basophilic erythroblast not blue"));
        Assert.All(orthochromatic, c => Assert.True(Cytoplasm(c).B > Cytoplasm(c).R, "orthochromatic erythroblast not pink"));
    }

    [Fact]
    public void Blood_has_none_of_the_marrow_lineages()
    {
        var cells = WhiteCellsOfManyFields(SlideProfile.Blood, 99);
        Assert.NotEmpty(cells);
        Assert.DoesNotContain(cells, c => MarrowLineages.Contains(c.Type) || c.Type == CellType.PlasmaCell);
    }

    [Fact]
    public void Blood_slide_layout_is_unchanged()
    {
        // Training data and recorded results depend on the blood profile's cells: their types, places and sizes over
        // 36 fields, pinned (marrow lineages draw from streams of their own so these never move).
        var layout = new SlideLayout(2026, SlideProfile.Blood, 0.1, 40 * 640, 30 * 480);
        var text = new StringBuilder();
        foreach (var c in layout.CellsIn(6000, 6000, 6000 + 6 * 640, 6000 + 6 * 480).OrderBy(c => c.Id))
            text.Append(CultureInfo.InvariantCulture, $"{c.Id} {c.Type} {c.Cx:R} {c.Cy:R} {c.Radius:R}\n");
        var digest = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
        Assert.True(digest == BloodLayoutDigest, $"blood layout moved: digest {digest}");
    }

    private const string BloodLayoutDigest = "92A5B35DE3C50C1577B12A5106A21741E8FE12221680806377E10D0CC86989C6";

    [Fact]
    public void Marrow_export_writes_the_new_labels()
    {
        using var fields = new SyntheticFields(7, SlideProfile.Marrow, 1280, 960, fieldsPerSlide: 10);
        var names = new HashSet<string>();
        for (var i = 0; i < 20; i++)
        {
            using var image = fields.Render(i, out var truth);
            var xml = XDocument.Parse(VocAnnotation.ToXml($"SynthImage_{i:D5}.jpg", 1280, 960, truth.Cells, WbcLabelMode.Subtype));
            names.UnionWith(xml.Root!.Elements("object").Select(o => (string)o.Element("name")!));
        }
        Assert.Superset(new HashSet<string> { "erythroblast", "myelocyte", "metamyelocyte", "band_neutrophil", "blast", "neutrophil", "plasma cell" }, names);
    }
}
