using System.Globalization;
using System.Text;

namespace EdgeCounter.Reporting;

/// <summary>The message header's variable parts: who sends to whom, the control id (MSH-10) and when it was made
/// (MSH-7). Given by the caller so the formatter stays pure and a test can fix them.</summary>
public sealed record Hl7MessageHeader(
    string SendingApplication, string SendingFacility, string ReceivingApplication, string ReceivingFacility,
    string ControlId, DateTimeOffset CreatedAt);

/// <summary>
/// The report as an HL7 v2.5.1 ORU^R01 message (docs/lis.md): MSH, PID, OBR, NTE, then one OBX per result; segments
/// end with a carriage return. Pure.
/// <para>No patient data: the service never knows the patient. PID carries only the sample id (as an accession
/// number, PID-3) and no name; the LIS links the result to its patient through the sample id, which is also OBR-2
/// (placer) and OBR-3 (filler order number), with the session id in OBR-20.</para>
/// </summary>
public static class Hl7OruMessage
{
    public const string MessageType = "ORU^R01^ORU_R01";
    public const string Version = "2.5.1";

    /// <summary>Coding system of the codes that are this service's own (HL7 table 0396: local).</summary>
    public const string LocalCodingSystem = "L";

    /// <summary>LOINC codes of the automated differential (per 100 leukocytes, blood) for the labels that have one.</summary>
    public static readonly IReadOnlyDictionary<string, (string Code, string Name)> Loinc = new Dictionary<string, (string, string)>(StringComparer.Ordinal)
    {
        ["neutrophil"] = ("770-8", "Neutrophils/100 leukocytes in Blood by Automated count"),
        ["lymphocyte"] = ("736-9", "Lymphocytes/100 leukocytes in Blood by Automated count"),
        ["monocyte"] = ("5905-5", "Monocytes/100 leukocytes in Blood by Automated count"),
        ["eosinophil"] = ("713-8", "Eosinophils/100 leukocytes in Blood by Automated count"),
        ["basophil"] = ("706-2", "Basophils/100 leukocytes in Blood by Automated count"),
    };

    private const string BloodPanel = "57023-4^Auto Differential panel - Blood^LN";
    private const string MarrowPanel = "EC-MARROW-DIFF^Bone marrow differential^" + LocalCodingSystem;

    public static string Format(SessionReport report, Hl7MessageHeader header)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(header);
        // An amendment after sign-off corrects what was sent before.
        var status = report.Amendments.Count > 0 ? "C" : "F";
        var marrow = report.Marrow is not null;
        var observedAt = Time(report.EndedAt ?? report.FinalizedAt ?? report.IssuedAt);
        var message = new StringBuilder();
        void Segment(params string[] fields) => message.Append(string.Join('|', fields)).Append('\r');

        Segment("MSH", @"^~\&", E(header.SendingApplication), E(header.SendingFacility), E(header.ReceivingApplication), E(header.ReceivingFacility),
            Time(header.CreatedAt), "", MessageType, E(header.ControlId), "P", Version, "", "", "", "", "", "UNICODE UTF-8");
        // PID-3: the sample id as an accession number (HL7 table 0203 ACSN); PID-5 (name) deliberately empty.
        Segment("PID", "1", "", $"{E(report.SampleId)}^^^{E(header.SendingApplication)}^ACSN");
        Segment("OBR", "1", E(report.SampleId), $"{E(report.SampleId)}^{E(header.SendingApplication)}", marrow ? MarrowPanel : BloodPanel,
            "", "", Time(report.StartedAt), Time(report.EndedAt), "", "", "", "", "", "", "", "", "", "", "", E(report.SessionId), "",
            Time(report.IssuedAt), "", "", status);
        Segment("NTE", "1", "L", E(report.Precision));

        var setId = 0;
        void Observation(string type, string code, string value, string units = "", string range = "", string flag = "") =>
            Segment("OBX", (++setId).ToString(CultureInfo.InvariantCulture), type, code, "", value, units, range, flag, "", "", status,
                "", "", observedAt);

        foreach (var (label, line) in report.Differential)
            Observation("NM", PercentCode(label, marrow), N(line.Percent), "%^percent^UCUM",
                line.ReferenceRange is [var low, var high] ? $"{N(low)}-{N(high)}" : "",
                line.Flag switch { "low" => "L", "high" => "H", _ => "" });
        foreach (var (label, count) in report.Totals)
            Observation("NM", $"EC-COUNT-{E(label)}^Cells counted as {E(label)}^{LocalCodingSystem}", N(count), "{cells}^cells^UCUM");
        Observation("NM", marrow ? $"EC-NUCLEATED-COUNTED^Nucleated cells counted^{LocalCodingSystem}" : $"EC-WBC-COUNTED^White cells counted^{LocalCodingSystem}",
            N(report.WhiteCells), "{cells}^cells^UCUM");
        if (report.Marrow is { } summary)
        {
            // Not measured (the model cannot see it): no OBX rather than a 0 the LIS would take as a result.
            foreach (var (category, percent) in summary.Percent)
                if (percent is { } p) Observation("NM", $"EC-MARROW-{E(category)}^{E(category)}/100 nucleated cells^{LocalCodingSystem}", N(p), "%^percent^UCUM");
            if (summary.MyeloidErythroidRatio is { } ratio) Observation("NM", $"EC-ME-RATIO^Myeloid:erythroid ratio^{LocalCodingSystem}", N(ratio));
        }
        if (report.Reviewer is { } reviewer) Observation("ST", $"EC-REVIEWER^Reviewed and signed by^{LocalCodingSystem}", E(reviewer));
        Observation("ST", $"EC-MODEL^Counting model^{LocalCodingSystem}", E($"{report.ModelName} {report.ModelVersion}"));
        return message.ToString();
    }

    /// <summary>A text value with HL7's delimiters escaped (field |, component ^, repetition ~, subcomponent &amp;,
    /// escape \) and line breaks as hexadecimal escapes, so no value can end a field or a segment.</summary>
    public static string Escape(string? value)
    {
        if (string.IsNullOrEmpty(value)) return "";
        var escaped = new StringBuilder(value.Length);
        foreach (var c in value)
            escaped.Append(c switch
            {
                '\\' => @"\E\",
                '|' => @"\F\",
                '^' => @"\S\",
                '&' => @"\T\",
                '~' => @"\R\",
                '\r' => @"\X0D\",
                '\n' => @"\X0A\",
                _ => c.ToString(),
            });
        return escaped.ToString();
    }

    private static string E(string? value) => Escape(value);

    /// <summary>LOINC for the blood differential's five classic labels; a local code for the others (e.g. unidentified) and for marrow.</summary>
    private static string PercentCode(string label, bool marrow) => !marrow && Loinc.TryGetValue(label, out var loinc)
        ? $"{loinc.Code}^{loinc.Name}^LN"
        : $"EC-DIFF-{E(label)}^{E(label)}/100 {(marrow ? "nucleated cells" : "leukocytes")}^{LocalCodingSystem}";

    private static string N(double value) => value.ToString("0.##", CultureInfo.InvariantCulture);

    /// <summary>HL7 DTM in UTC with its offset, to the second.</summary>
    private static string Time(DateTimeOffset? t) => t?.UtcDateTime.ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture) + (t is null ? "" : "+0000");
}
