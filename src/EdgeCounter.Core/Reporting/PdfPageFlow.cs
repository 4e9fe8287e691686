using PdfSharp.Drawing;
using PdfSharp.Pdf;

namespace EdgeCounter.Reporting;

/// <summary>Lays text down A4 pages top to bottom: a cursor that opens a new page when the next block would not fit
/// above the footer, and wraps long text at word boundaries. Knows nothing of reports.</summary>
internal sealed class PdfPageFlow : IDisposable
{
    public const double Margin = 50;
    private const double FooterHeight = 40;

    private readonly PdfDocument _document;
    private XGraphics? _gfx;

    public PdfPageFlow(PdfDocument document)
    {
        _document = document;
        NewPage();
    }

    public XGraphics Graphics => _gfx!;
    public double Y { get; set; }
    public double Left => Margin;
    public double Width => Page.Width.Point - 2 * Margin;
    public PdfPage Page { get; private set; } = null!;
    private double Bottom => Page.Height.Point - Margin - FooterHeight;

    /// <summary>Starts a new page unless <paramref name="height"/> points still fit on this one; true when it did.</summary>
    public bool Reserve(double height)
    {
        if (Y + height <= Bottom) return false;
        NewPage();
        return true;
    }

    public void NewPage()
    {
        _gfx?.Dispose();
        Page = _document.AddPage();
        Page.Size = PdfSharp.PageSize.A4;
        _gfx = XGraphics.FromPdfPage(Page);
        Y = Margin;
    }

    /// <summary>One line of text at <paramref name="x"/> on the current line (its top at <see cref="Y"/>); does not move down.</summary>
    public void Text(string text, XFont font, double x, XBrush? brush = null, double? rightAlignedWidth = null)
    {
        var left = rightAlignedWidth is { } w ? x + w - Graphics.MeasureString(text, font).Width : x;
        Graphics.DrawString(text, font, brush ?? XBrushes.Black, left, Y + font.GetHeight() * 0.8);
    }

    /// <summary>Text wrapped to <see cref="Width"/> (less <paramref name="indent"/>), moving down past it.</summary>
    public void Paragraph(string text, XFont font, double indent = 0, XBrush? brush = null)
    {
        var lineHeight = font.GetHeight() * 1.2;
        foreach (var line in Wrap(text, font, Width - indent))
        {
            Reserve(lineHeight);
            Text(line, font, Left + indent, brush);
            Y += lineHeight;
        }
    }

    /// <summary>A thin rule across the text width at the cursor.</summary>
    public void Rule(double thickness = 0.5, XColor? color = null) =>
        Graphics.DrawLine(new XPen(color ?? XColors.Gray, thickness), Left, Y, Left + Width, Y);

    public IEnumerable<string> Wrap(string text, XFont font, double width)
    {
        var line = "";
        foreach (var word in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = line.Length == 0 ? word : line + " " + word;
            if (line.Length > 0 && Graphics.MeasureString(candidate, font).Width > width)
            {
                yield return line;
                line = word;
            }
            else line = candidate;
        }
        if (line.Length > 0) yield return line;
    }

    public void Dispose()
    {
        _gfx?.Dispose();
        _gfx = null;
    }
}
