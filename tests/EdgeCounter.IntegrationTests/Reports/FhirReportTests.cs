// The FHIR model's elements are all optional (nullable); the assertions themselves say which must be there.
#pragma warning disable CS8600, CS8602, CS8604
using EdgeCounter.Counting;
using EdgeCounter.Reporting;
using Firely.Fhir.Validation;
using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;
using Hl7.Fhir.Specification.Source;
using Hl7.Fhir.Specification.Terminology;
using Xunit.Abstractions;

namespace EdgeCounter.IntegrationTests.Reports;

/// <summary>The FHIR R4 report checked by Firely's validator against the R4 specification (its StructureDefinitions,
/// shipped in Hl7.Fhir.Specification.R4), not by looking at a few fields.</summary>
public class FhirReportTests(ITestOutputHelper output)
{
    private static readonly Lazy<Validator> Validator = new(() =>
    {
        var source = new CachedResolver(ZipSource.CreateValidationSource());
        return new Validator(source.AsAsync(), new LocalTerminologyService(source.AsAsync()));
    });

    public static SessionReport SignedReport(bool amended = false, MarrowSummary? marrow = null)
    {
        var at = new DateTimeOffset(2026, 12, 3, 9, 0, 0, TimeSpan.Zero);
        var differential = new Dictionary<string, DifferentialLine>
        {
            ["neutrophil"] = new(55, 55, [45.25, 64.38], [40, 75], null),
            ["eosinophil"] = new(3, 3, [1.03, 8.45], null, null),
            ["basophil"] = new(0, 0, [0, 3.7], null, null),
            ["lymphocyte"] = new(35, 35, [26.36, 44.75], [20, 40], null),
            ["monocyte"] = new(5, 5, [2.15, 11.18], [2, 4], "high"),
            ["unidentified"] = new(2, 2, [0.55, 7.0], null, null),
        };
        var totals = differential.ToDictionary(d => d.Key, d => d.Value.Count);
        totals["RBC"] = 1800;
        totals["Platelets"] = 90;
        CellCorrection[] amendments = amended ? [new CellCorrection(2, 17, CellCorrection.Reclassify, "neutrophil", "lymphocyte", "Dr B", at.AddHours(2), true)] : [];
        return new SessionReport("20261203T090000Z-1a2b3c4d", "S-2026-0412", SessionState.Final, at, at.AddMinutes(12), at.AddMinutes(20), "Dr B",
            48, 100, totals, new Dictionary<string, long> { ["WBC"] = 100 }, differential, SessionReport.PrecisionNote(100), amended ? 2 : 1,
            amendments, "edgecounter-cellnet", "1.2.0", at.AddMinutes(20)) { Marrow = marrow };
    }

    private List<string> Problems(Resource resource)
    {
        var outcome = Validator.Value.Validate(resource);
        foreach (var issue in outcome.Issue.Where(i => i.Severity is OperationOutcome.IssueSeverity.Warning))
            output.WriteLine($"{resource.TypeName} warning: {issue.Details?.Text} at {string.Join(",", issue.Expression)}");
        return Errors(outcome, resource);
    }

    /// <summary>The validator's errors for a resource (warnings left out): empty when it is valid R4.</summary>
    internal static List<string> Errors(Resource resource) => Errors(Validator.Value.Validate(resource), resource);

    private static List<string> Errors(OperationOutcome outcome, Resource resource) =>
        outcome.Issue.Where(i => i.Severity is OperationOutcome.IssueSeverity.Error or OperationOutcome.IssueSeverity.Fatal)
            .Select(i => $"{resource.TypeName}: {i.Details?.Text} at {string.Join(",", i.Expression)}").ToList();

    [Fact]
    public void The_report_is_a_valid_R4_transaction_with_a_loinc_coded_observation_per_differential_label()
    {
        var bundle = FhirReport.Create(SignedReport());
        // Through JSON and back, as a LIS would receive it.
        bundle = new FhirJsonDeserializer().Deserialize<Bundle>(bundle.ToJson());
        Assert.Equal(Bundle.BundleType.Transaction, bundle.Type);
        var problems = Problems(bundle).Concat(bundle.Entry.SelectMany(e => Problems(e.Resource!))).ToList();
        Assert.True(problems.Count == 0, string.Join("\n", problems));

        var report = Assert.IsType<DiagnosticReport>(bundle.Entry[0].Resource);
        Assert.Equal(DiagnosticReport.DiagnosticReportStatus.Final, report.Status);
        Assert.Contains(report.Identifier, i => i.Value == "S-2026-0412" && i.Type.Coding[0].Code == "ACSN");
        Assert.Equal(bundle.Entry.Count - 1, report.Result.Count);
        Assert.All(report.Result, r => Assert.Contains(bundle.Entry, e => e.FullUrl == r.Reference));
        Assert.Equal("Dr B", report.ResultsInterpreter.Single().Display);

        var observations = bundle.Entry.Select(e => e.Resource).OfType<Observation>().ToList();
        foreach (var (label, code) in new[] { ("neutrophil", "770-8"), ("lymphocyte", "736-9"), ("monocyte", "5905-5"), ("eosinophil", "713-8"), ("basophil", "706-2") })
        {
            var o = observations.Single(o => o.Code.Coding.Any(c => c.System == "http://loinc.org" && c.Code == code));
            Assert.Equal(label, o.Code.Text);
        }
        var monocytes = observations.Single(o => o.Code.Text == "monocyte");
        Assert.Equal(5m, ((Quantity)monocytes.Value).Value);
        Assert.Equal("%", ((Quantity)monocytes.Value).Code);
        Assert.Equal("H", monocytes.Interpretation.Single().Coding[0].Code);
        Assert.Equal(4m, monocytes.ReferenceRange.Single().High.Value);
        Assert.Contains("2.15-11.18", monocytes.Note.Single().Text);
        // No LOINC code is made up: unidentified cells carry the local code system.
        Assert.Equal(FhirReport.LocalCodeSystem, observations.Single(o => o.Code.Text == "unidentified").Code.Coding[0].System);
        Assert.DoesNotContain(bundle.Entry, e => e.Resource is Patient);
        // An amendment replaces the result: every entry is a conditional update on its identifier.
        Assert.All(bundle.Entry, e => Assert.Equal(Bundle.HTTPVerb.PUT, e.Request.Method));
    }

    [Fact]
    public void An_amended_report_says_so_and_a_marrow_report_carries_its_ratio_and_plasma_cells_validly()
    {
        var marrow = new MarrowSummary(500, new Dictionary<string, double?> { ["granulocyte"] = 60, ["plasma_cell"] = 6 }, 3.0, 6.0, [4.2, 8.5], ["megakaryocyte"]);
        var bundle = FhirReport.Create(SignedReport(amended: true, marrow: marrow));
        var problems = bundle.Entry.SelectMany(e => Problems(e.Resource)).ToList();
        Assert.True(problems.Count == 0, string.Join("\n", problems));
        Assert.Equal(DiagnosticReport.DiagnosticReportStatus.Amended, ((DiagnosticReport)bundle.Entry[0].Resource).Status);
        var observations = bundle.Entry.Select(e => e.Resource).OfType<Observation>().ToList();
        Assert.All(observations, o => Assert.Equal(ObservationStatus.Amended, o.Status));
        Assert.Equal(3.0m, ((Quantity)observations.Single(o => o.Code.Coding[0].Code == "myeloid-erythroid-ratio").Value).Value);
        Assert.Equal(6.0m, ((Quantity)observations.Single(o => o.Code.Coding[0].Code == "plasma-cell-percent").Value).Value);
        // Over nucleated cells, the blood differential's LOINC codes (/100 leukocytes in blood) do not apply.
        Assert.DoesNotContain(observations, o => o.Code.Coding.Any(c => c.System == "http://loinc.org"));
    }

    [Fact]
    public void The_validator_refuses_an_observation_without_its_required_status_and_code()
    {
        Assert.NotEmpty(Problems(new Observation()));
    }
}
