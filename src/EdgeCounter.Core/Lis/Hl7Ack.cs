namespace EdgeCounter.Lis;

/// <summary>What the LIS answered, read from the ACK's MSA segment (and ERR for the error text).</summary>
/// <param name="Code">MSA-1: AA/CA accepted, AE/CE error, AR/CR rejected.</param>
/// <param name="ControlId">MSA-2: the control id (MSH-10) of the message it answers.</param>
/// <param name="Text">MSA-3, else ERR-8 (user message) or ERR-3's text; null when none.</param>
public sealed record Hl7Ack(string Code, string ControlId, string? Text)
{
    /// <summary>Original (AA) or enhanced (CA) mode accept.</summary>
    public bool Accepted => Code is "AA" or "CA";

    /// <summary>The LIS refused the message itself (AR/CR), as opposed to an error processing it (AE/CE).</summary>
    public bool Rejected => Code is "AR" or "CR";

    /// <summary>Reads an ACK; null when it has no MSA segment with a code (not an ACK).</summary>
    public static Hl7Ack? Parse(string message)
    {
        ArgumentNullException.ThrowIfNull(message);
        string[]? msa = null, err = null;
        foreach (var segment in message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries))
        {
            var fields = segment.Split('|');
            if (fields[0] == "MSA") msa ??= fields;
            else if (fields[0] == "ERR") err ??= fields;
        }
        if (msa is null || Field(msa, 1) is not { Length: > 0 } code) return null;
        var text = Field(msa, 3) ?? (err is null ? null : Field(err, 8) ?? Field(err, 3)?.Split('^').ElementAtOrDefault(1) ?? Field(err, 1));
        return new Hl7Ack(code.Trim(), Field(msa, 2) ?? "", string.IsNullOrWhiteSpace(text) ? null : text);
    }

    private static string? Field(string[] fields, int index) => index < fields.Length && fields[index].Length > 0 ? fields[index] : null;
}
