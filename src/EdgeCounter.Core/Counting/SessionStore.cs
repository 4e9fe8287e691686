using System.Text.Json;
using System.Text.Json.Serialization;
using EdgeCounter.Storage;

namespace EdgeCounter.Counting;

/// <summary>Keeps the current session on disk so that a restart continues it with exact totals.
/// Writes atomically: temp file, flush to disk, rename over the old file.</summary>
public sealed class SessionStore
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    public SessionStore(string stateDirectory, string fileName = "counting-session.json")
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(stateDirectory);
        ArgumentException.ThrowIfNullOrWhiteSpace(fileName);
        Directory.CreateDirectory(stateDirectory);
        FilePath = Path.Combine(stateDirectory, fileName);
    }

    public string FilePath { get; }

    /// <summary>The saved session, or null when none was saved. Throws InvalidDataException on a corrupt file.</summary>
    public SessionRecord? Load()
    {
        if (!File.Exists(FilePath)) return null;
        try
        {
            var bytes = File.ReadAllBytes(FilePath);
            return JsonSerializer.Deserialize<SessionRecord>(bytes, Json) ?? throw new InvalidDataException($"{FilePath} holds no session.");
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{FilePath} is not a valid session file: {ex.Message}", ex);
        }
    }

    /// <summary>Replaces the saved session; throws IOException/UnauthorizedAccessException when the disk refuses
    /// (full, read-only), leaving the previous file as it was.</summary>
    public void Save(SessionRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        AtomicFile.Write(FilePath, JsonSerializer.SerializeToUtf8Bytes(record, Json), flushToDisk: true);
    }
}
