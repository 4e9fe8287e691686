using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeCounter.Storage;

/// <summary>How the state directory takes writes, as shown in P/stats <c>storage.state</c>.</summary>
public enum StorageState
{
    /// <summary>Every write lands; free space is above the reserve.</summary>
    Ok,

    /// <summary>Free space is below the reserve: images (outbox, slide map file) are no longer kept on disk (sent live only); results still are.</summary>
    Low,

    /// <summary>A write was refused for lack of space: what could not be written waits in memory.</summary>
    Full,

    /// <summary>A write failed for another reason (I/O error, read-only remount): what could not be written waits in memory.</summary>
    Failing,
}

/// <summary>
/// The state directory's health as its writers (the outbox, the session file, the slide map) see it: free space,
/// measured at most once per second, against a reserve, and which writers' last write failed. Each writer's trouble
/// is logged once when it starts (Warning) and once when that writer writes again (Information), likewise free space
/// crossing the reserve: one line per episode, not one per field. Thread-safe.
/// </summary>
public sealed class StorageMonitor
{
    public const long DefaultReserveBytes = 4L * 1024 * 1024;
    private static readonly TimeSpan MeasureInterval = TimeSpan.FromSeconds(1);

    private readonly object _gate = new();
    private readonly Func<string, long?> _measureFreeBytes;
    private readonly TimeProvider _clock;
    private readonly ILogger _logger;
    private readonly Dictionary<string, bool> _failingWriters = new(StringComparer.Ordinal); // writer -> failed for lack of space
    private long? _bytesFree;
    private long _measuredAt;
    private bool _measured;
    private bool _belowReserve;

    /// <param name="measureFreeBytes">Free bytes of the filesystem holding a directory (null: unknown); default <see cref="MeasureFreeBytes"/>.</param>
    public StorageMonitor(string directory, long reserveBytes = DefaultReserveBytes, ILogger<StorageMonitor>? logger = null, TimeProvider? clock = null,
        Func<string, long?>? measureFreeBytes = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        ArgumentOutOfRangeException.ThrowIfNegative(reserveBytes);
        Directory = directory;
        ReserveBytes = reserveBytes;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _clock = clock ?? TimeProvider.System;
        _measureFreeBytes = measureFreeBytes ?? MeasureFreeBytes;
    }

    public string Directory { get; }

    public long ReserveBytes { get; }

    /// <summary>Free bytes on the state directory's filesystem (at most a second old); null when it cannot be measured.</summary>
    public long? BytesFree
    {
        get { lock (_gate) { Refresh(); return _bytesFree; } }
    }

    /// <summary>Free space is known and below the reserve: images should not be written.</summary>
    public bool BelowReserve
    {
        get { lock (_gate) { Refresh(); return _belowReserve; } }
    }

    /// <summary>Writing <paramref name="bytes"/> more leaves the reserve free (true when free space is unknown): what
    /// can be done without (images) is written only then, so it never takes the space results need.</summary>
    public bool Affords(long bytes)
    {
        lock (_gate)
        {
            Refresh();
            return _bytesFree is not { } free || (!_belowReserve && free - bytes >= ReserveBytes);
        }
    }

    public StorageState State
    {
        get
        {
            lock (_gate)
            {
                Refresh();
                if (_failingWriters.ContainsValue(false)) return StorageState.Failing;
                if (_failingWriters.Count > 0) return StorageState.Full;
                return _belowReserve ? StorageState.Low : StorageState.Ok;
            }
        }
    }

    /// <summary>A write by <paramref name="writer"/> failed; logged when this writer was not failing already.</summary>
    /// <param name="consequence">What it means for the data, for the log line (e.g. "results wait in memory").</param>
    public void Failed(string writer, Exception error, string consequence)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(writer);
        ArgumentNullException.ThrowIfNull(error);
        lock (_gate)
        {
            var started = !_failingWriters.ContainsKey(writer);
            Refresh(force: started); // the figure the warning gives is the one at the failure
            var outOfSpace = IsOutOfSpace(error) || _belowReserve || _bytesFree == 0;
            _failingWriters[writer] = outOfSpace;
            if (started)
                _logger.LogWarning("State directory {Directory}: {Writer} cannot be written ({Cause}: {Error}; {BytesFree} bytes free); {Consequence}. " +
                    "Counting and live publishing go on; said again when it writes again",
                    Directory, writer, outOfSpace ? "disk full" : "write failed", error.Message, _bytesFree?.ToString() ?? "unknown", consequence);
        }
    }

    /// <summary>A write by <paramref name="writer"/> landed; ends its episode (logged) if it was failing.</summary>
    /// <remarks>While the free space is still under the reserve a success does not end the episode: a nearly full disk
    /// takes a write now and then (SQLite reuses freed pages), and each would otherwise start a new logged episode.</remarks>
    public void Succeeded(string writer)
    {
        lock (_gate)
            if (!_failingWriters.ContainsKey(writer)) return;
        // (Only where the reserve is a small part of the disk: on a disk smaller than twice the reserve, free space is
        // always under it, and a success is all there is to go by.)
        if (MeasureFreeBytes(Directory) is { } free && free < ReserveBytes && TotalBytes(Directory) > 2 * ReserveBytes) return;
        EndEpisode(writer, "is written again");
    }

    /// <summary><paramref name="writer"/> stood aside to keep the reserve (it did not try): ends its failure episode,
    /// logged, since the disk did not accept it and what it keeps is no longer expected there while space is low.</summary>
    public void StoodAside(string writer) => EndEpisode(writer, $"is not written while free space is near the reserve of {ReserveBytes}");

    private void EndEpisode(string writer, string how)
    {
        lock (_gate)
        {
            if (_failingWriters.Remove(writer))
                _logger.LogInformation("State directory {Directory}: {Writer} {How}", Directory, writer, how);
        }
    }

    private static long TotalBytes(string directory)
    {
        try
        {
            return new DriveInfo(directory).TotalSize;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return 0;
        }
    }

    /// <summary>Free bytes available to this process on the filesystem holding <paramref name="directory"/>; null when
    /// the directory cannot be measured (missing, not a local filesystem).</summary>
    public static long? MeasureFreeBytes(string directory)
    {
        try
        {
            return new DriveInfo(directory).AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return null;
        }
    }

    /// <summary>SQLite's "database or disk is full" or the OS's "no space left on device".</summary>
    public static bool IsOutOfSpace(Exception error) => error switch
    {
        SqliteException sqlite => (sqlite.SqliteErrorCode & 0xFF) == SqliteFull,
        IOException io => OperatingSystem.IsWindows() ? io.HResult is DiskFullWindows or HandleDiskFullWindows : io.HResult == NoSpaceLeftUnix,
        _ => false,
    };

    private const int SqliteFull = 13;
    private const int NoSpaceLeftUnix = 28; // ENOSPC: .NET puts the errno in HResult on Unix
    private const int DiskFullWindows = unchecked((int)0x80070070), HandleDiskFullWindows = unchecked((int)0x80070027);

    private void Refresh(bool force = false)
    {
        var now = _clock.GetTimestamp();
        if (_measured && !force && _clock.GetElapsedTime(_measuredAt, now) < MeasureInterval) return;
        _measured = true;
        _measuredAt = now;
        _bytesFree = _measureFreeBytes(Directory);
        // Back above only with a quarter of the reserve to spare, so a disk hovering at the reserve does not flap.
        var below = _bytesFree is { } free && free < (_belowReserve ? ReserveBytes + ReserveBytes / 4 : ReserveBytes);
        if (below == _belowReserve) return;
        _belowReserve = below;
        if (below)
            _logger.LogWarning("State directory {Directory}: {BytesFree} bytes free, below the reserve of {ReserveBytes} (EdgeCounter:StateDiskReserveBytes): " +
                "images are no longer kept in the outbox or the slide map file (sent live only), results still are", Directory, _bytesFree, ReserveBytes);
        else
            _logger.LogInformation("State directory {Directory}: {BytesFree} bytes free, above the reserve again: images are kept again",
                Directory, _bytesFree);
    }
}
