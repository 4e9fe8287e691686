using EdgeCounter.Storage;

namespace EdgeCounter.Publishing;

/// <summary>
/// The slide map kept with its session: the session's latest map as a JPEG in the state directory
/// (<c>slide-map-SESSION.jpg</c>), so it outlives a restart (the embedded broker forgets retained messages) and the lab
/// can take it with the session's result. Written atomically (temp file, rename); writing a session's map removes the
/// maps of earlier sessions, so the disk holds one. A failed write (disk full, read-only) is the caller's to log: the
/// live map on MQTT does not depend on it.
/// </summary>
public sealed class SlideMapStore
{
    private const string Prefix = "slide-map-";
    private readonly string _directory;
    private string? _savedSession; // the session whose map was last written: earlier maps are gone already

    public SlideMapStore(string stateDirectory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(stateDirectory);
        _directory = stateDirectory;
    }

    public string PathFor(string sessionId)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(sessionId);
        if (sessionId.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || sessionId.Contains("..", StringComparison.Ordinal))
            throw new ArgumentException($"session id '{sessionId}' cannot name a file", nameof(sessionId));
        return Path.Combine(_directory, Prefix + sessionId + ".jpg");
    }

    /// <summary>Replaces the session's map; removes the maps of other sessions. Throws IOException/UnauthorizedAccessException when the disk refuses.</summary>
    public void Save(string sessionId, byte[] jpeg)
    {
        ArgumentNullException.ThrowIfNull(jpeg);
        var path = PathFor(sessionId);
        var newSession = _savedSession != sessionId;
        Directory.CreateDirectory(_directory);
        AtomicFile.Write(path, jpeg, flushToDisk: false);
        // Once per session, not once per field: later saves of the same session find no other map.
        if (!newSession) return;
        foreach (var other in Directory.EnumerateFiles(_directory, Prefix + "*.jpg"))
            if (!string.Equals(other, path, StringComparison.Ordinal))
                File.Delete(other);
        _savedSession = sessionId;
    }

    /// <summary>The session's saved map, or null when none was saved.</summary>
    public byte[]? Load(string sessionId)
    {
        var path = PathFor(sessionId);
        return File.Exists(path) ? File.ReadAllBytes(path) : null;
    }
}
