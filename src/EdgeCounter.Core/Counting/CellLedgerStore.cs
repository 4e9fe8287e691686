using System.Text;
using System.Text.Json;
using EdgeCounter.Detection;
using EdgeCounter.Storage;

namespace EdgeCounter.Counting;

/// <summary>
/// Keeps each session's cells on disk, one JSON line per counted field, appended (a session of thousands of cells is
/// not rewritten at every field). Written before the session file that counts the field, so that a power cut between
/// the two leaves a line for a field the session file does not have: <see cref="Load"/> ignores it.
/// </summary>
public sealed class CellLedgerStore
{
    private readonly string _directory;

    public CellLedgerStore(string stateDirectory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(stateDirectory);
        _directory = Path.Combine(stateDirectory, "cells");
        Directory.CreateDirectory(_directory);
    }

    public string PathOf(string sessionId) => Path.Combine(_directory, $"{sessionId}.jsonl");

    /// <summary>Appends one field; throws IOException/UnauthorizedAccessException when the disk refuses.</summary>
    public void Append(string sessionId, LedgerField field)
    {
        var line = new LineDto(field.FieldId, field.FirstCellId,
            [.. field.Cells.Select(c => new CellDto(c.Label, MathF.Round(c.Score, 3), [MathF.Round(c.Box.X1, 1), MathF.Round(c.Box.Y1, 1), MathF.Round(c.Box.X2, 1), MathF.Round(c.Box.Y2, 1)]))],
            field.MovedOut.Count == 0 ? null : [.. field.MovedOut.Select(m => new[] { m.From, m.NewCell })]);
        var bytes = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(line, Json) + "\n");
        Directory.CreateDirectory(_directory); // the state directory may have been replaced (an emptied disk)
        using var stream = new FileStream(PathOf(sessionId), FileMode.Append, FileAccess.Write, FileShare.Read);
        stream.Write(bytes);
        stream.Flush(flushToDisk: true);
    }

    /// <summary>The session's cells for fields 1..<paramref name="fields"/>; an unreadable line ends the replay there (cells
    /// after it cannot be reviewed, the counts are unaffected). Also rewrites the file without lines past those fields.</summary>
    public CellLedger Load(string sessionId, long fields)
    {
        var path = PathOf(sessionId);
        if (!File.Exists(path)) return new CellLedger();
        var kept = new List<LedgerField>();
        var keptLines = new StringBuilder();
        var dropped = false;
        foreach (var text in File.ReadLines(path))
        {
            LineDto? line;
            try { line = JsonSerializer.Deserialize<LineDto>(text, Json); }
            catch (JsonException) { line = null; }
            if (line is null || line.F != kept.Count + 1 || line.F > fields)
            {
                dropped = true; // this line and every one after it
                break;
            }
            kept.Add(new LedgerField(line.F, line.C,
                [.. (line.Cells ?? []).Select(c => new Detection.Detection(c.L, c.L, c.S, c.B is [var x1, var y1, var x2, var y2] ? new BoxF(x1, y1, x2, y2) : default))],
                [.. (line.M ?? []).Select(m => new CellMove(m[0], (int)m[1]))]));
            keptLines.Append(text).Append('\n');
        }
        if (dropped) AtomicFile.Write(path, Encoding.UTF8.GetBytes(keptLines.ToString()), flushToDisk: true);
        return CellLedger.Replay(kept);
    }

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private sealed record LineDto(long F, long C, CellDto[]? Cells, long[][]? M);

    private sealed record CellDto(string L, float S, float[] B);
}
