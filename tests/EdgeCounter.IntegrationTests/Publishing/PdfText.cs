using UglyToad.PdfPig;

namespace EdgeCounter.IntegrationTests.Publishing;

/// <summary>A PDF's words in reading order, joined by single spaces (PdfPig), for asserting what is on the page.</summary>
internal static class PdfText
{
    public static string Of(byte[] pdf)
    {
        using var document = PdfDocument.Open(pdf);
        return string.Join(" ", document.GetPages().SelectMany(p => p.GetWords()).Select(w => w.Text));
    }
}
