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

    /// <summary>Review: count one cell (by its cellId) under another label.</summary>
    Reclassify,

    /// <summary>Review: take one cell out of every total (not a cell, or not countable).</summary>
    Reject,

    /// <summary>Sign the result off (reviewer named): it becomes final; later corrections are amendments.</summary>
    Finalize,
}

/// <summary>A validated command from P/session/set. SampleId and Target are only set for Start (null: keep default);
/// CellId and To for reclassify/reject; Reviewer for the review actions (required for finalize).</summary>
public sealed record SessionCommand(SessionAction Action, string? SampleId = null, int? Target = null)
{
    /// <summary>Who a correction is recorded for when the command names no reviewer.</summary>
    public const string UnnamedReviewer = "(not named)";

    public long CellId { get; init; }
    public string? To { get; init; }
    public string? Reviewer { get; init; }
}

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
        long? cellId = null;
        string? to = null, reviewer = null;
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
                case "cellId":
                    if (property.Value.ValueKind != JsonValueKind.Number || !property.Value.TryGetInt64(out var id) || id < 1)
                        return SessionCommandParseResult.Fail("'cellId' must be a whole number from 1 (the cellId of a detection on P/field)");
                    cellId = id;
                    break;
                case "to":
                case "reviewer":
                    if (property.Value.ValueKind != JsonValueKind.String) return SessionCommandParseResult.Fail($"'{property.Name}' must be a string");
                    var text = property.Value.GetString()!.Trim();
                    if (text.Length == 0 || text.Length > MaxSampleIdLength) return SessionCommandParseResult.Fail($"'{property.Name}' must be 1..{MaxSampleIdLength} characters");
                    if (text.Any(char.IsControl)) return SessionCommandParseResult.Fail($"'{property.Name}' contains control characters");
                    if (property.Name == "to") to = text; else reviewer = text;
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
            case "reclassify": parsed = SessionAction.Reclassify; break;
            case "reject": parsed = SessionAction.Reject; break;
            case "finalize": parsed = SessionAction.Finalize; break;
            default: return SessionCommandParseResult.Fail($"unknown action '{Truncate(action, 32)}' (expected start, stop, reset, reclassify, reject or finalize)");
        }

        if (parsed != SessionAction.Start && (sampleId is not null || target is not null))
            return SessionCommandParseResult.Fail($"'{action}' takes no sampleId or target");
        var cellAction = parsed is SessionAction.Reclassify or SessionAction.Reject;
        if (cellAction && cellId is null) return SessionCommandParseResult.Fail($"'{action}' needs 'cellId' (the cellId of a detection on P/field)");
        if (!cellAction && cellId is not null) return SessionCommandParseResult.Fail($"'{action}' takes no cellId");
        if (parsed == SessionAction.Reclassify && to is null) return SessionCommandParseResult.Fail("'reclassify' needs 'to' (the label to count the cell under)");
        if (parsed != SessionAction.Reclassify && to is not null) return SessionCommandParseResult.Fail($"'{action}' takes no 'to'");
        if (parsed == SessionAction.Finalize && reviewer is null) return SessionCommandParseResult.Fail("'finalize' needs 'reviewer' (who signs the result)");
        if (!cellAction && parsed != SessionAction.Finalize && reviewer is not null) return SessionCommandParseResult.Fail($"'{action}' takes no reviewer");
        return SessionCommandParseResult.Ok(new SessionCommand(parsed, sampleId, target) { CellId = cellId ?? 0, To = to, Reviewer = reviewer });
    }

    internal static string Truncate(string text, int max) => text.Length <= max ? text : text[..max] + "…";
}
