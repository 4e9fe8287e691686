namespace EdgeCounter.Reporting;

/// <summary>Configuration section "Report": what the signed result is checked against, and where it is delivered.</summary>
public sealed class ReportOptions
{
    public const string SectionName = "Report";

    /// <summary>Per differential label, the lab's reference interval in percent of white cells, [low, high]
    /// (e.g. "lymphocyte": [20, 40]); a result outside it is flagged <c>low</c> or <c>high</c>. None by default: the
    /// lab sets its own (they depend on age, method and population).</summary>
    public Dictionary<string, double[]> ReferenceRanges { get; set; } = new(StringComparer.Ordinal);

    /// <summary>The review gallery's crop of every counted cell (Report:CellCrops).</summary>
    public Publishing.CellCropOptions CellCrops { get; set; } = new();

    /// <summary>HL7 v2 ORU^R01 delivery to a lab information system over MLLP; off while its Host is empty.</summary>
    public Hl7Options Hl7 { get; set; } = new();

    /// <summary>The report POSTed to a FHIR server as an R4 transaction Bundle; off while its Url is empty.</summary>
    public FhirOptions Fhir { get; set; } = new();

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>(Hl7.Validate());
        errors.AddRange(Fhir.Validate());
        foreach (var (label, range) in ReferenceRanges)
            if (range is not [var low, var high] || low < 0 || high > 100 || low > high || double.IsNaN(low) || double.IsNaN(high))
                errors.Add($"Report:ReferenceRanges:{label} must be two percentages [low, high] with 0 <= low <= high <= 100.");
        errors.AddRange(CellCrops.Validate());
        return errors;
    }
}
