namespace EdgeCounter.Storage;

/// <summary>Replaces a file whole or not at all: written to a temp file beside it, then renamed over it, so that a crash
/// mid-write leaves the old file. The one way the state directory's files are replaced.</summary>
public static class AtomicFile
{
    /// <param name="flushToDisk">Flush the temp file to the disk before the rename (what a power cut must not lose).</param>
    /// <exception cref="IOException">The disk refused (full, failing); the old file is as it was and no temp file is left.</exception>
    /// <exception cref="UnauthorizedAccessException">Not writable; likewise.</exception>
    public static void Write(string path, ReadOnlySpan<byte> bytes, bool flushToDisk)
    {
        var temp = path + ".tmp";
        try
        {
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                stream.Write(bytes);
                if (flushToDisk) stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A half-written temp file would only take space from the next attempt.
            try { File.Delete(temp); } catch (Exception cleanup) when (cleanup is IOException or UnauthorizedAccessException) { }
            throw;
        }
    }
}
