using System.Globalization;
using System.Security;
using System.Text;

namespace EdgeCounter.Simulation;

/// <summary>How white cells are named in exported annotations.</summary>
public enum WbcLabelMode
{
    /// <summary>The subtype in lower case: neutrophil, eosinophil, basophil, lymphocyte, monocyte, plasma cell, megakaryocyte,
    /// and the marrow lineages erythroblast, myelocyte, metamyelocyte, band_neutrophil, blast.</summary>
    Subtype,

    /// <summary>"WBC" for every white cell, as in BCCD.</summary>
    Merged,
}

/// <summary>Pascal VOC annotations in the layout of the BCCD set.</summary>
public static class VocAnnotation
{
    public static string Label(CellType type, WbcLabelMode mode) => type switch
    {
        CellType.Erythrocyte => "RBC",
        CellType.Platelet => "Platelets",
        _ when mode == WbcLabelMode.Merged => "WBC",
        CellType.Neutrophil => "neutrophil",
        CellType.Eosinophil => "eosinophil",
        CellType.Basophil => "basophil",
        CellType.Lymphocyte => "lymphocyte",
        CellType.Monocyte => "monocyte",
        CellType.PlasmaCell => "plasma cell",
        CellType.Megakaryocyte => "megakaryocyte",
        CellType.Erythroblast => "erythroblast",
        CellType.Myelocyte => "myelocyte",
        CellType.Metamyelocyte => "metamyelocyte",
        CellType.BandNeutrophil => "band_neutrophil",
        CellType.Blast => "blast",
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    /// <summary>
    /// The annotation XML (deterministic: no dates, no paths). Boxes use VOC's 1-based inclusive pixel indices:
    /// xmin = floor(x) + 1, xmax = ceil(x + width), clamped to the image.
    /// </summary>
    public static string ToXml(string fileName, int width, int height, IEnumerable<CellTruth> cells, WbcLabelMode mode)
    {
        var sb = new StringBuilder();
        sb.Append("<annotation>\n");
        sb.Append("\t<folder>JPEGImages</folder>\n");
        sb.Append("\t<filename>").Append(SecurityElement.Escape(fileName)).Append("</filename>\n");
        sb.Append("\t<source>\n\t\t<database>EdgeCounter synthetic</database>\n\t</source>\n");
        sb.Append("\t<size>\n");
        sb.Append("\t\t<width>").Append(I(width)).Append("</width>\n");
        sb.Append("\t\t<height>").Append(I(height)).Append("</height>\n");
        sb.Append("\t\t<depth>3</depth>\n");
        sb.Append("\t</size>\n");
        sb.Append("\t<segmented>0</segmented>\n");
        foreach (var cell in cells)
        {
            var xmin = Math.Clamp((int)Math.Floor(cell.Box.X) + 1, 1, width);
            var ymin = Math.Clamp((int)Math.Floor(cell.Box.Y) + 1, 1, height);
            var xmax = Math.Clamp((int)Math.Ceiling(cell.Box.X + cell.Box.Width), xmin, width);
            var ymax = Math.Clamp((int)Math.Ceiling(cell.Box.Y + cell.Box.Height), ymin, height);
            sb.Append("\t<object>\n");
            sb.Append("\t\t<name>").Append(SecurityElement.Escape(Label(cell.Type, mode))).Append("</name>\n");
            sb.Append("\t\t<pose>Unspecified</pose>\n");
            sb.Append("\t\t<truncated>").Append(cell.Truncated ? '1' : '0').Append("</truncated>\n");
            sb.Append("\t\t<difficult>0</difficult>\n");
            sb.Append("\t\t<bndbox>\n");
            sb.Append("\t\t\t<xmin>").Append(I(xmin)).Append("</xmin>\n");
            sb.Append("\t\t\t<ymin>").Append(I(ymin)).Append("</ymin>\n");
            sb.Append("\t\t\t<xmax>").Append(I(xmax)).Append("</xmax>\n");
            sb.Append("\t\t\t<ymax>").Append(I(ymax)).Append("</ymax>\n");
            sb.Append("\t\t</bndbox>\n");
            sb.Append("\t</object>\n");
        }
        sb.Append("</annotation>\n");
        return sb.ToString();
    }

    private static string I(int v) => v.ToString(CultureInfo.InvariantCulture);
}
