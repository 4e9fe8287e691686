using System.Security.Cryptography;
using System.Text;
using EdgeCounter.Counting;
using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;

namespace EdgeCounter.Reporting;

/// <summary>
/// The signed report as FHIR R4 for a lab's information system: a transaction Bundle of one DiagnosticReport and an
/// Observation per result (each differential label's percent, with its count and 95 % interval; the cells counted;
/// in marrow mode the M:E ratio and the plasma-cell percentage). Every entry is a conditional update on its identifier
/// (the session id), so an amendment replaces the result on the server instead of adding a second one. No Patient:
/// the sample id (the DiagnosticReport's accession identifier) is the only link to one, and the LIS makes it. Pure.
/// </summary>
public static class FhirReport
{
    /// <summary>Identifier system of EdgeCounter's sessions and results.</summary>
    public const string SessionSystem = "urn:edgecounter:session";

    /// <summary>Code system of the results LOINC has no code for (unidentified cells, cells counted, marrow figures).</summary>
    public const string LocalCodeSystem = "urn:edgecounter:result";

    private const string Loinc = "http://loinc.org";
    private const string Ucum = "http://unitsofmeasure.org";

    /// <summary>LOINC codes of the automated white-cell differential in percent (/100 leukocytes in blood).</summary>
    public static IReadOnlyDictionary<string, (string Code, string Display)> LoincPercent { get; } = new Dictionary<string, (string, string)>(StringComparer.Ordinal)
    {
        ["neutrophil"] = ("770-8", "Neutrophils/100 leukocytes in Blood by Automated count"),
        ["lymphocyte"] = ("736-9", "Lymphocytes/100 leukocytes in Blood by Automated count"),
        ["monocyte"] = ("5905-5", "Monocytes/100 leukocytes in Blood by Automated count"),
        ["eosinophil"] = ("713-8", "Eosinophils/100 leukocytes in Blood by Automated count"),
        ["basophil"] = ("706-2", "Basophils/100 leukocytes in Blood by Automated count"),
    };

    public static Bundle Create(SessionReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var amended = report.Amendments.Count > 0;
        var marrow = report.Marrow is not null;
        var bundle = new Bundle { Type = Bundle.BundleType.Transaction, Timestamp = report.IssuedAt };
        var observations = new List<(string Key, Observation Observation)>();

        foreach (var (label, line) in report.Differential)
        {
            var observation = NewObservation(report, amended, label,
                !marrow && LoincPercent.TryGetValue(label, out var loinc)
                    ? Coded(Loinc, loinc.Code, loinc.Display, label)
                    : Coded(LocalCodeSystem, $"{label}-percent", $"{Capitalised(label)}/100 {(marrow ? "nucleated cells" : "leukocytes")}", label));
            observation.Value = Percent(line.Percent);
            observation.Component.Add(new Observation.ComponentComponent
            {
                Code = Coded(LocalCodeSystem, "cells-counted", "Cells of this kind counted", "count"),
                Value = new Quantity { Value = line.Count, Unit = "cells", System = Ucum, Code = "{cells}" },
            });
            observation.Note.Add(new Annotation { Text = $"95 % confidence interval {line.Ci95[0]:0.##}-{line.Ci95[1]:0.##} % (Wilson score)" });
            if (line.ReferenceRange is [var low, var high])
                observation.ReferenceRange.Add(new Observation.ReferenceRangeComponent { Low = Percent(low), High = Percent(high) });
            if (line.Flag is { } flag)
                observation.Interpretation.Add(Coded("http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                    flag == "low" ? "L" : "H", flag == "low" ? "Low" : "High", flag));
            observations.Add((label, observation));
        }

        var counted = NewObservation(report, amended, "cells-counted",
            Coded(LocalCodeSystem, marrow ? "nucleated-cells-counted" : "white-cells-counted", marrow ? "Nucleated cells counted" : "White cells counted",
                marrow ? "nucleated cells counted" : "white cells counted"));
        counted.Value = new Quantity { Value = report.WhiteCells, Unit = "cells", System = Ucum, Code = "{cells}" };
        counted.Note.Add(new Annotation { Text = report.Precision });
        observations.Add(("cells-counted", counted));

        if (report.Marrow is { } m)
        {
            if (m.MyeloidErythroidRatio is { } ratio)
            {
                var me = NewObservation(report, amended, "me-ratio", Coded(LocalCodeSystem, "myeloid-erythroid-ratio", "Myeloid:erythroid ratio in Bone marrow", "M:E ratio"));
                me.Value = new Quantity { Value = (decimal)ratio, Unit = "ratio", System = Ucum, Code = "{ratio}" };
                observations.Add(("me-ratio", me));
            }
            if (m.PlasmaCellPercent is { } plasma)
            {
                var pc = NewObservation(report, amended, "plasma-cell-percent",
                    Coded(LocalCodeSystem, "plasma-cell-percent", "Plasma cells/100 nucleated cells in Bone marrow", "plasma cells"));
                pc.Value = Percent(plasma);
                if (m.PlasmaCellPercentCi95 is [var low, var high])
                    pc.Note.Add(new Annotation { Text = $"95 % confidence interval {low:0.##}-{high:0.##} % (Wilson score)" });
                observations.Add(("plasma-cell-percent", pc));
            }
        }

        var diagnostic = new DiagnosticReport
        {
            Identifier = [new Identifier(SessionSystem, report.SessionId)],
            Status = amended ? DiagnosticReport.DiagnosticReportStatus.Amended : DiagnosticReport.DiagnosticReportStatus.Final,
            Category = [Coded("http://terminology.hl7.org/CodeSystem/v2-0074", "HM", "Hematology", "haematology")],
            Code = marrow
                ? Coded(LocalCodeSystem, "marrow-differential", "Bone marrow differential (automated image analysis)", "marrow differential")
                : Coded(Loinc, "57023-4", "Auto Differential panel - Blood", "white-cell differential"),
            Effective = new Period { StartElement = new FhirDateTime(report.StartedAt), EndElement = report.EndedAt is { } end ? new FhirDateTime(end) : null },
            Issued = report.IssuedAt,
            Conclusion = $"{report.Precision} Counted by {report.ModelName} {report.ModelVersion}; reviewed and signed by {report.Reviewer ?? "nobody"}" +
                         (amended ? $"; {report.Amendments.Count} amendment(s) after sign-off." : "."),
        };
        // FHIR has no empty strings: a session started without a sample id has no accession identifier.
        if (!string.IsNullOrWhiteSpace(report.SampleId))
            diagnostic.Identifier.Add(new Identifier { Type = Coded("http://terminology.hl7.org/CodeSystem/v2-0203", "ACSN", "Accession ID", "sample id"), Value = report.SampleId });
        if (report.Reviewer is { } reviewer) diagnostic.ResultsInterpreter.Add(new ResourceReference { Display = reviewer });
        foreach (var (key, observation) in observations)
        {
            var url = FullUrl(report, key);
            diagnostic.Result.Add(new ResourceReference(url));
            bundle.Entry.Add(Entry(url, observation, $"{report.SessionId}/{key}"));
        }
        bundle.Entry.Insert(0, Entry(FullUrl(report, "report"), diagnostic, report.SessionId));
        return bundle;
    }

    public static string ToJson(SessionReport report) => Create(report).ToJson();

    private static Observation NewObservation(SessionReport report, bool amended, string key, CodeableConcept code) => new()
    {
        Identifier = [new Identifier(SessionSystem, $"{report.SessionId}/{key}")],
        Status = amended ? ObservationStatus.Amended : ObservationStatus.Final,
        Category = [Coded("http://terminology.hl7.org/CodeSystem/observation-category", "laboratory", "Laboratory", "laboratory")],
        Code = code,
        Effective = new FhirDateTime(report.EndedAt ?? report.IssuedAt),
        Issued = report.IssuedAt,
    };

    /// <summary>A conditional update on the resource's identifier: created the first time, replaced by an amendment.</summary>
    private static Bundle.EntryComponent Entry(string fullUrl, Resource resource, string identifier) => new()
    {
        FullUrl = fullUrl,
        Resource = resource,
        Request = new Bundle.RequestComponent
        {
            Method = Bundle.HTTPVerb.PUT,
            Url = $"{resource.TypeName}?identifier={Uri.EscapeDataString(SessionSystem)}|{Uri.EscapeDataString(identifier)}",
        },
    };

    /// <summary>A stable urn:uuid per session and result, so one report always carries the same references.</summary>
    private static string FullUrl(SessionReport report, string key)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"{report.SessionId}/{key}"));
        hash[6] = (byte)((hash[6] & 0x0F) | 0x50); // version 5-style (name-based)
        hash[8] = (byte)((hash[8] & 0x3F) | 0x80); // RFC 4122 variant
        return "urn:uuid:" + new Guid(hash.AsSpan(0, 16), bigEndian: true).ToString();
    }

    private static Quantity Percent(double value) => new() { Value = (decimal)Math.Round(value, 2), Unit = "%", System = Ucum, Code = "%" };

    private static CodeableConcept Coded(string system, string code, string display, string text) => new(system, code, display, text);

    private static string Capitalised(string label) => label.Length == 0 ? label : char.ToUpperInvariant(label[0]) + label[1..].Replace('_', ' ');
}
