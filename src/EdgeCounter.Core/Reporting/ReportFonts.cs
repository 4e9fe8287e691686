using PdfSharp.Fonts;

namespace EdgeCounter.Reporting;

/// <summary>Thrown when no font file the report's PDF can embed is installed.</summary>
public sealed class ReportFontMissingException(string message) : Exception(message);

/// <summary>
/// The two faces (regular, bold) the report's PDF is set in, read from font files the system has: PDFsharp's Core build
/// finds no fonts of its own on Linux. DejaVu Sans from Debian's <c>fonts-dejavu-core</c>; on a Windows kiosk Arial or
/// Segoe UI from the Windows font folder. Every family a caller asks for resolves to these, so the layout names one.
/// </summary>
public sealed class ReportFonts : IFontResolver
{
    /// <summary>The family name the PDF writer draws with.</summary>
    public const string Family = "EdgeCounter Report";

    private const string RegularFace = "report-regular";
    private const string BoldFace = "report-bold";

    /// <summary>Where to look, in order: (regular, bold) pairs.</summary>
    private static IEnumerable<(string Regular, string Bold)> Candidates()
    {
        foreach (var dir in new[] { "/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/local/share/fonts" })
            yield return (Path.Combine(dir, "DejaVuSans.ttf"), Path.Combine(dir, "DejaVuSans-Bold.ttf"));
        if (OperatingSystem.IsWindows())
        {
            var fonts = Environment.GetFolderPath(Environment.SpecialFolder.Fonts);
            if (string.IsNullOrEmpty(fonts)) fonts = @"C:\Windows\Fonts";
            yield return (Path.Combine(fonts, "arial.ttf"), Path.Combine(fonts, "arialbd.ttf"));
            yield return (Path.Combine(fonts, "segoeui.ttf"), Path.Combine(fonts, "segoeuib.ttf"));
        }
    }

    private static readonly Lock Gate = new();
    private static ReportFonts? _installed;

    private readonly byte[] _regular;
    private readonly byte[] _bold;

    private ReportFonts(byte[] regular, byte[] bold)
    {
        _regular = regular;
        _bold = bold;
    }

    /// <summary>The regular face's file, for the log and the docs.</summary>
    public string RegularPath { get; private init; } = "";

    /// <summary>Sets PDFsharp's resolver once per process (PDFsharp wants the same instance every time) and returns it.
    /// Throws <see cref="ReportFontMissingException"/>, naming the package to install, when no font file is found; a
    /// later call looks again, so installing the package fixes a running service.</summary>
    public static ReportFonts Install()
    {
        lock (Gate)
        {
            if (_installed is not null) return _installed;
            var (regular, bold) = Locate(Candidates());
            _installed = new ReportFonts(File.ReadAllBytes(regular), File.ReadAllBytes(bold)) { RegularPath = regular };
            GlobalFontSettings.FontResolver = _installed;
            return _installed;
        }
    }

    /// <summary>The first pair whose two files exist; throws, saying what to install, when none does.</summary>
    internal static (string Regular, string Bold) Locate(IEnumerable<(string Regular, string Bold)> candidates)
    {
        var list = candidates.ToList();
        foreach (var pair in list)
            if (File.Exists(pair.Regular) && File.Exists(pair.Bold)) return pair;
        throw new ReportFontMissingException("The report's PDF needs the DejaVu Sans font: install it with " +
            "'apt-get install fonts-dejavu-core' (looked for " + string.Join(", ", list.Select(c => c.Regular)) + ")");
    }

    public FontResolverInfo ResolveTypeface(string familyName, bool isBold, bool isItalic) =>
        new(isBold ? BoldFace : RegularFace, mustSimulateBold: false, mustSimulateItalic: isItalic);

    public byte[] GetFont(string faceName) => faceName == BoldFace ? _bold : _regular;
}
