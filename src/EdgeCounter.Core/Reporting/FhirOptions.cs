namespace EdgeCounter.Reporting;

/// <summary>Configuration section "Report:Fhir": each issued report POSTed as a FHIR R4 transaction Bundle to a FHIR
/// server's base URL (docs/lis.md). Off while <see cref="Url"/> is empty; P/report/fhir is published either way.</summary>
public sealed class FhirOptions
{
    /// <summary>The FHIR server's base URL (the transaction is POSTed to it); empty: no FHIR export.</summary>
    public string Url { get; set; } = "";

    /// <summary>Sent as <c>Authorization: Bearer</c> when set (a token from the hospital's identity service).</summary>
    public string BearerToken { get; set; } = "";

    /// <summary>How long a POST may take before it is tried again later.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Wait before the next try after no answer or a server error (5xx, 408, 429).</summary>
    public TimeSpan RetryInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Wait after the server refused the Bundle itself (another 4xx): a person has to act there.</summary>
    public TimeSpan RejectedRetryInterval { get; set; } = TimeSpan.FromMinutes(10);

    public bool Enabled => !string.IsNullOrWhiteSpace(Url);

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (!Enabled) return errors;
        if (!Uri.TryCreate(Url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            errors.Add($"Report:Fhir:Url must be an absolute http(s) URL (is '{Url}')");
        if (Timeout <= TimeSpan.Zero) errors.Add("Report:Fhir:Timeout must be positive");
        if (RetryInterval <= TimeSpan.Zero) errors.Add("Report:Fhir:RetryInterval must be positive");
        if (RejectedRetryInterval < RetryInterval) errors.Add("Report:Fhir:RejectedRetryInterval must be at least Report:Fhir:RetryInterval");
        return errors;
    }
}
