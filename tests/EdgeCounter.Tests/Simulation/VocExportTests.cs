using System.Xml.Linq;
using EdgeCounter.Simulation;
using OpenCvSharp;

namespace EdgeCounter.Tests.Simulation;

public class VocExportTests
{
    private static readonly HashSet<string> SubtypeLabels = ["RBC", "Platelets", "neutrophil", "eosinophil", "basophil", "lymphocyte", "monocyte", "plasma cell", "megakaryocyte",
        "erythroblast", "myelocyte", "metamyelocyte", "band_neutrophil", "blast"];

    [Theory]
    [InlineData(WbcLabelMode.Subtype)]
    [InlineData(WbcLabelMode.Merged)]
    public void Annotations_parse_like_bccd_and_match_the_truth(WbcLabelMode mode)
    {
        using var fields = new SyntheticFields(21, SlideProfile.Marrow, 640, 480, fieldsPerSlide: 3);
        var labels = new HashSet<string>();
        for (var i = 0; i < 6; i++)
        {
            using var image = fields.Render(i, out var truth);
            Cv2.ImEncode(".jpg", image, out var jpeg, new ImageEncodingParam(ImwriteFlags.JpegQuality, truth.JpegQuality));
            using var decoded = Cv2.ImDecode(jpeg, ImreadModes.Color);
            Assert.Equal(new Size(640, 480), decoded.Size());

            var xml = XDocument.Parse(VocAnnotation.ToXml($"SynthImage_{i:D5}.jpg", 640, 480, truth.Cells, mode));
            var root = xml.Root!;
            Assert.Equal("annotation", root.Name.LocalName);
            Assert.Equal($"SynthImage_{i:D5}.jpg", (string)root.Element("filename")!);
            Assert.Equal(640, (int)root.Element("size")!.Element("width")!);
            Assert.Equal(480, (int)root.Element("size")!.Element("height")!);
            Assert.Equal(3, (int)root.Element("size")!.Element("depth")!);
            var objects = root.Elements("object").ToList();
            Assert.Equal(truth.Cells.Count, objects.Count);
            foreach (var (o, cell) in objects.Zip(truth.Cells))
            {
                var name = (string)o.Element("name")!;
                labels.Add(name);
                Assert.Equal("Unspecified", (string)o.Element("pose")!);
                Assert.Equal(cell.Truncated ? 1 : 0, (int)o.Element("truncated")!);
                Assert.Equal(0, (int)o.Element("difficult")!);
                var b = o.Element("bndbox")!;
                int xmin = (int)b.Element("xmin")!, ymin = (int)b.Element("ymin")!, xmax = (int)b.Element("xmax")!, ymax = (int)b.Element("ymax")!;
                Assert.InRange(xmin, 1, xmax);
                Assert.InRange(ymin, 1, ymax);
                Assert.InRange(xmax, xmin, 640);
                Assert.InRange(ymax, ymin, 480);
                Assert.InRange(xmin - 1 - cell.Box.X, -1, 0.001);
                Assert.InRange(xmax - (cell.Box.X + cell.Box.Width), -0.001, 1);
                if (mode == WbcLabelMode.Merged)
                    Assert.Contains(name, new[] { "RBC", "Platelets", "WBC" });
                else
                    Assert.Contains(name, SubtypeLabels);
                if (cell.Type is CellType.Erythrocyte) Assert.Equal("RBC", name);
            }
        }
        Assert.Contains("RBC", labels);
        Assert.Contains(mode == WbcLabelMode.Merged ? "WBC" : "neutrophil", labels);
    }

    [Fact]
    public void White_cell_labels_follow_the_mode()
    {
        Assert.Equal("plasma cell", VocAnnotation.Label(CellType.PlasmaCell, WbcLabelMode.Subtype));
        Assert.Equal("WBC", VocAnnotation.Label(CellType.Megakaryocyte, WbcLabelMode.Merged));
        Assert.Equal("Platelets", VocAnnotation.Label(CellType.Platelet, WbcLabelMode.Merged));
        Assert.Equal("RBC", VocAnnotation.Label(CellType.Erythrocyte, WbcLabelMode.Subtype));
        Assert.Equal("erythroblast", VocAnnotation.Label(CellType.Erythroblast, WbcLabelMode.Subtype));
        Assert.Equal("myelocyte", VocAnnotation.Label(CellType.Myelocyte, WbcLabelMode.Subtype));
        Assert.Equal("metamyelocyte", VocAnnotation.Label(CellType.Metamyelocyte, WbcLabelMode.Subtype));
        Assert.Equal("band_neutrophil", VocAnnotation.Label(CellType.BandNeutrophil, WbcLabelMode.Subtype));
        Assert.Equal("neutrophil", VocAnnotation.Label(CellType.Neutrophil, WbcLabelMode.Subtype));
        Assert.Equal("blast", VocAnnotation.Label(CellType.Blast, WbcLabelMode.Subtype));
        // Nucleated cells all: one WBC class for a BCCD-style detector.
        foreach (var type in new[] { CellType.Erythroblast, CellType.Myelocyte, CellType.Metamyelocyte, CellType.BandNeutrophil, CellType.Blast })
            Assert.Equal("WBC", VocAnnotation.Label(type, WbcLabelMode.Merged));
    }
}
