using EdgeCounter.Counting;
using EdgeCounter.Lis;
using EdgeCounter.Reporting;

namespace EdgeCounter.Tests.Reporting;

/// <summary>The ORU^R01 text against a reviewed golden file (tests/fixtures/hl7/), the header's variable parts fixed.</summary>
public class Hl7OruMessageTests
{
    private static readonly DateTimeOffset Start = new(2026, 3, 4, 9, 15, 0, TimeSpan.Zero);

    private static readonly Hl7MessageHeader Header = new("EdgeCounter", "scope-1", "LIS", "HAEM LAB", "CTRL0001", new DateTimeOffset(2026, 3, 4, 9, 31, 5, TimeSpan.Zero));

    internal static SessionReport Report(IReadOnlyList<CellCorrection>? amendments = null) => new(
        "5f2c9e1a", "S-1|B^2", SessionState.Final, Start, Start.AddMinutes(12), Start.AddMinutes(15), "Dr B & Co", 14, 20,
        new Dictionary<string, long> { ["neutrophil"] = 11, ["lymphocyte"] = 3, ["monocyte"] = 2, ["eosinophil"] = 1, ["basophil"] = 1, ["unidentified"] = 2, ["RBC"] = 310 },
        new Dictionary<string, long> { ["WBC"] = 20 },
        new Dictionary<string, DifferentialLine>
        {
            ["neutrophil"] = new(11, 55, [33.4, 74.7], [40, 75], null),
            ["lymphocyte"] = new(3, 15, [5.2, 36], [20, 40], "low"),
            ["monocyte"] = new(2, 10, [2.8, 30.1], null, null),
            ["eosinophil"] = new(1, 5, [0.9, 23.6], [1, 4], "high"),
            ["basophil"] = new(1, 5, [0.9, 23.6], null, null),
            ["unidentified"] = new(2, 10, [2.8, 30.1], null, null),
        },
        "20 white cells counted: a percentage near 50 % is known to about ±21 points (95 %).", 1, amendments ?? [], "edgecounter-cellnet", "1.2.0",
        Start.AddMinutes(16));

    private static string Golden(string name) =>
        File.ReadAllText(Path.Combine(RepositoryRoot(), "tests", "fixtures", "hl7", name)).ReplaceLineEndings("\r");

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "EdgeCounter.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("EdgeCounter.sln not found above the test binaries");
    }

    [Fact]
    public void A_final_report_formats_as_the_golden_ORU_R01()
    {
        Assert.Equal(Golden("oru-r01-final.hl7"), Hl7OruMessage.Format(Report(), Header));
    }

    [Fact]
    public void An_amended_report_is_sent_as_corrected_results()
    {
        var amendment = new CellCorrection(2, 7, CellCorrection.Reclassify, "lymphocyte", "neutrophil", "Dr B", Start.AddMinutes(20), Amendment: true);
        var segments = Hl7OruMessage.Format(Report([amendment]), Header).Split('\r', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("C", segments.Single(s => s.StartsWith("OBR|")).Split('|')[25]);
        Assert.All(segments.Where(s => s.StartsWith("OBX|")), obx => Assert.Equal("C", obx.Split('|')[11]));
    }

    [Fact]
    public void Fields_sit_where_HL7_puts_them_and_no_patient_name_is_sent()
    {
        var segments = Hl7OruMessage.Format(Report(), Header).Split('\r', StringSplitOptions.RemoveEmptyEntries).Select(s => s.Split('|')).ToList();
        var msh = segments.Single(s => s[0] == "MSH");
        Assert.Equal(("ORU^R01^ORU_R01", "CTRL0001", "P", "2.5.1"), (msh[8], msh[9], msh[10], msh[11])); // MSH-9..12 (MSH-1 is the separator)
        var pid = segments.Single(s => s[0] == "PID");
        Assert.True(pid.Length <= 5 || pid[5] == "", "PID-5 (patient name) must stay empty");
        var obr = segments.Single(s => s[0] == "OBR");
        Assert.Equal((@"S-1\F\B\S\2", @"S-1\F\B\S\2^EdgeCounter", "5f2c9e1a"), (obr[2], obr[3], obr[20]));
        var neutrophils = segments.Single(s => s[0] == "OBX" && s[3].StartsWith("770-8^"));
        Assert.Equal(("NM", "55", "%^percent^UCUM", "40-75", "", "F"), (neutrophils[2], neutrophils[5], neutrophils[6], neutrophils[7], neutrophils[8], neutrophils[11]));
        Assert.Equal("L", segments.Single(s => s[0] == "OBX" && s[3].StartsWith("736-9^"))[8]);
    }

    [Theory]
    [InlineData("a|b^c~d\\e&f", @"a\F\b\S\c\R\d\E\e\T\f")]
    [InlineData("line\r\nbreak", @"line\X0D\\X0A\break")]
    [InlineData("plain", "plain")]
    public void Text_values_escape_the_delimiters(string value, string escaped) => Assert.Equal(escaped, Hl7OruMessage.Escape(value));

    [Theory]
    [InlineData("MSH|^~\\&|LIS|LIS|EC|EC|20260101000000||ACK^R01|A1|P|2.5.1\rMSA|AA|C1\r", "AA", "C1", null)]
    [InlineData("MSH|^~\\&|LIS\rMSA|AE|C2|Unknown test code\r", "AE", "C2", "Unknown test code")]
    [InlineData("MSH|^~\\&|LIS\rMSA|AR|C3\rERR|||207^Application internal error^HL70357|E||||Sample not found\r", "AR", "C3", "Sample not found")]
    [InlineData("MSH|^~\\&|LIS\rMSA|AR|C4\rERR|||207^Application internal error^HL70357|E\r", "AR", "C4", "Application internal error")]
    public void An_ACK_is_read_from_MSA_and_ERR(string text, string code, string controlId, string? error)
    {
        var ack = Hl7Ack.Parse(text);
        Assert.NotNull(ack);
        Assert.Equal((code, controlId, error), (ack.Code, ack.ControlId, ack.Text));
    }

    [Fact]
    public void Settings_are_checked_only_when_a_host_is_set()
    {
        Assert.Empty(new Hl7Options { Port = 0 }.Validate());
        var problems = new ReportOptions { Hl7 = { Host = "lis", Port = 0, AckTimeout = TimeSpan.Zero, SendingApplication = "A|B" } }.Validate();
        Assert.Contains(problems, p => p.StartsWith("Report:Hl7:Port"));
        Assert.Contains(problems, p => p.StartsWith("Report:Hl7:AckTimeout"));
        Assert.Contains(problems, p => p.StartsWith("Report:Hl7:SendingApplication"));
    }
}
