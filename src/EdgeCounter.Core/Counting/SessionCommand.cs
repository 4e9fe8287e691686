using System.Text;
using System.Text.Json;

namespace EdgeCounter.Counting;

public enum SessionAction
{
    /// <summary>Start a new session (new session id, counts from zero), optionally with a sample id and target.</summary>
    Start,

    /// <summary>Stop counting; totals stay as they are.</summary>
    Stop,

    /// <summary>Start over: a new session with the same sample id and target, counts from zero.</summary>
    Reset,
}

/// <summary>A validated command from P/session/set. SampleId and Target are only set for Start (null: keep default).</summary>
public sealed record SessionCommand(SessionAction Action, string? SampleId = null, int? Target = null);

/// <summary>Either a command or the reason the text was refused.</summary>
public sealed record SessionCommandParseResult(SessionCommand? Command, string? Error)
{
    public bool IsValid => Command is not null;
    public static SessionCommandParseResult Ok(SessionCommand command) => new(command, null);
    public static SessionCommandParseResult Fail(string error) => new(null, error);
}

/// <summary>Parses and validates P/session/set payloads such as {"action":"start","sampleId":"S-1","target":200}. Pure.</summary>
public static class SessionCommandParser
{
    public const int MaxPayloadBytes = 4096;
    public const int MaxSampleIdLength = 64;

    public static SessionCommandParseResult Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return Parse(Encoding.UTF8.GetBytes(text));
    }

    public static SessionCommandParseResult Parse(ReadOnlySpan<byte> utf8)
    {
        if (utf8.Length > MaxPayloadBytes)
            return SessionCommandParseResult.Fail($"command is too large; the limit is {MaxPayloadBytes} bytes");
        // System.Text.Json validates UTF-8 only when a string is read, and then throws InvalidOperationException.
        if (!System.Text.Unicode.Utf8.IsValid(utf8))
            return SessionCommandParseResult.Fail("command is not valid UTF-8 text");
        if (utf8.IsEmpty) return SessionCommandParseResult.Fail("command is empty");

        try
        {
            using var document = JsonDocument.Parse(utf8.ToArray(), new JsonDocumentOptions { MaxDepth = 4 });
            return Validate(document.RootElement);
        }
        catch (JsonException ex)
        {
            // Where, in words a person sending it can use (not the parser's own message, which names .NET types).
            var at = ex.BytePositionInLine is { } b ? $" (at character {b + 1}{(ex.LineNumber is > 0 ? $" of line {ex.LineNumber + 1}" : "")})" : "";
            return SessionCommandParseResult.Fail($"command is not valid JSON{at}; send e.g. {{\"action\":\"start\",\"sampleId\":\"S-1\",\"target\":100}}");
        }
    }

    private static SessionCommandParseResult Validate(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
            return SessionCommandParseResult.Fail("command must be a JSON object");

        string? action = null;
        string? sampleId = null;
        int? target = null;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var property in root.EnumerateObject())
        {
            if (!seen.Add(property.Name)) return SessionCommandParseResult.Fail($"property '{property.Name}' appears twice");
            switch (property.Name)
            {
                case "action":
                    if (property.Value.ValueKind != JsonValueKind.String) return SessionCommandParseResult.Fail("'action' must be a string");
                    action = property.Value.GetString();
                    break;
                case "sampleId":
                    if (property.Value.ValueKind != JsonValueKind.String) return SessionCommandParseResult.Fail("'sampleId' must be a string");
                    sampleId = property.Value.GetString()!;
                    if (sampleId.Length > MaxSampleIdLength) return SessionCommandParseResult.Fail($"'sampleId' is longer than {MaxSampleIdLength} characters");
                    if (sampleId.Any(char.IsControl)) return SessionCommandParseResult.Fail("'sampleId' contains control characters");
                    break;
                case "target":
                    if (property.Value.ValueKind != JsonValueKind.Number || !property.Value.TryGetInt32(out var t))
                        return SessionCommandParseResult.Fail("'target' must be a whole number");
                    if (t < 1 || t > CountingOptions.MaxTarget) return SessionCommandParseResult.Fail($"'target' must be 1..{CountingOptions.MaxTarget}");
                    target = t;
                    break;
                default:
                    return SessionCommandParseResult.Fail($"unknown property '{property.Name}'");
            }
        }

        SessionAction parsed;
        switch (action)
        {
            case null: return SessionCommandParseResult.Fail("'action' is missing");
            case "start": parsed = SessionAction.Start; break;
            case "stop": parsed = SessionAction.Stop; break;
            case "reset": parsed = SessionAction.Reset; break;
            default: return SessionCommandParseResult.Fail($"unknown action '{Truncate(action, 32)}' (expected start, stop or reset)");
        }

        if (parsed != SessionAction.Start && (sampleId is not null || target is not null))
            return SessionCommandParseResult.Fail($"'{action}' takes no sampleId or target");
        return SessionCommandParseResult.Ok(new SessionCommand(parsed, sampleId, target));
    }

    internal static string Truncate(string text, int max) => text.Length <= max ? text : text[..max] + "…";
}
