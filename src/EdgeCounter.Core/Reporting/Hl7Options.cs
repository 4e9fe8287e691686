namespace EdgeCounter.Reporting;

/// <summary>Configuration section "Report:Hl7": delivery of each issued report to a lab information system as an HL7
/// v2.5.1 ORU^R01 message over MLLP (docs/lis.md). Off while <see cref="Host"/> is empty.</summary>
public sealed class Hl7Options
{
    /// <summary>The LIS's MLLP listener (name or address); empty: no HL7 export.</summary>
    public string Host { get; set; } = "";

    /// <summary>The LIS's MLLP port.</summary>
    public int Port { get; set; } = 2575;

    /// <summary>MSH-3: who sends.</summary>
    public string SendingApplication { get; set; } = "EdgeCounter";

    /// <summary>MSH-4; empty: the device id.</summary>
    public string SendingFacility { get; set; } = "";

    /// <summary>MSH-5 and MSH-6: who receives, as the LIS expects to be named.</summary>
    public string ReceivingApplication { get; set; } = "LIS";
    public string ReceivingFacility { get; set; } = "";

    /// <summary>How long a connection, and then the ACK, may take before the message is tried again later.</summary>
    public TimeSpan AckTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Wait before the next try after no answer, a refused connection or an AE (application error) ACK.</summary>
    public TimeSpan RetryInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Wait after an AR (application reject) ACK: the LIS refused the message itself, so a person has to
    /// act there; trying often would only fill its error log.</summary>
    public TimeSpan RejectedRetryInterval { get; set; } = TimeSpan.FromMinutes(10);

    public bool Enabled => !string.IsNullOrWhiteSpace(Host);

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (!Enabled) return errors;
        if (Port is < 1 or > 65535) errors.Add($"Report:Hl7:Port must be 1..65535 (is {Port})");
        if (AckTimeout <= TimeSpan.Zero) errors.Add("Report:Hl7:AckTimeout must be positive");
        if (RetryInterval <= TimeSpan.Zero) errors.Add("Report:Hl7:RetryInterval must be positive");
        if (RejectedRetryInterval < RetryInterval) errors.Add("Report:Hl7:RejectedRetryInterval must be at least Report:Hl7:RetryInterval");
        foreach (var (key, value) in new[] { ("SendingApplication", SendingApplication), ("SendingFacility", SendingFacility),
                     ("ReceivingApplication", ReceivingApplication), ("ReceivingFacility", ReceivingFacility) })
            if (value.IndexOfAny(['|', '^', '~', '\\', '&', '\r', '\n']) >= 0)
                errors.Add($"Report:Hl7:{key} must not contain HL7 delimiters (| ^ ~ \\ &) or line breaks (is '{value}')");
        return errors;
    }
}
