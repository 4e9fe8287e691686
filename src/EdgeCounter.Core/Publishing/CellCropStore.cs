using EdgeCounter.Counting;
using EdgeCounter.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OpenCvSharp;

namespace EdgeCounter.Publishing;

/// <summary>
/// The review gallery's pictures: every newly counted cell of a field is kept as a small JPEG crop,
/// <c>cells/&lt;sessionId&gt;/&lt;cellId&gt;.jpg</c> under the state directory, for a technologist to check its label.
/// Bounded: crops are images, so they are written only while the disk affords them (<see cref="StorageMonitor.Affords"/>);
/// past <see cref="CellCropOptions.MaxBytes"/> in all, the oldest other sessions' crops go first, and a session's crops
/// are deleted once it is older than <see cref="CellCropOptions.Retention"/>. Written on the field processor's thread,
/// from the field's image during the call (it is not kept).
/// </summary>
public sealed class CellCropStore : IFieldOutcomeSink
{
    /// <summary>Longest side of a crop, pixels: big enough to tell a lymphocyte from a monocyte, small enough for hundreds.</summary>
    public const int CropSize = 96;

    private const string Writer = "the review gallery's cell crops";
    private readonly string _root;
    private readonly CellCropOptions _options;
    private readonly StorageMonitor _storage;
    private readonly TimeProvider _clock;
    private readonly ILogger _logger;
    private string? _session;
    private long _bytes; // on disk, all sessions; measured at the first crop of each session
    private bool _directoryMade; // the open session's crop directory exists

    public CellCropStore(string stateDirectory, CellCropOptions options, StorageMonitor storage, TimeProvider? clock = null, ILogger<CellCropStore>? logger = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(stateDirectory);
        _root = Path.Combine(stateDirectory, "cells");
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _storage = storage ?? throw new ArgumentNullException(nameof(storage));
        _clock = clock ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>Crops not written because the disk could not afford them or the bound was reached (since start).</summary>
    public long Dropped { get; private set; }

    /// <summary>The crop of a cell, or null when none was kept (or the ids cannot name a file).</summary>
    public string? PathOf(string sessionId, long cellId)
    {
        if (cellId <= 0 || !IsPlainName(sessionId)) return null;
        var path = Path.Combine(_root, sessionId, cellId + ".jpg");
        return File.Exists(path) ? path : null;
    }

    /// <summary>The ids of a session's cells that have a crop, from one listing of its directory (the gallery asks for
    /// hundreds at a time).</summary>
    public IReadOnlySet<long> CroppedCells(string sessionId)
    {
        var directory = IsPlainName(sessionId) ? Path.Combine(_root, sessionId) : null;
        if (directory is null || !Directory.Exists(directory)) return new HashSet<long>();
        return Directory.EnumerateFiles(directory, "*.jpg").Select(f => long.TryParse(Path.GetFileNameWithoutExtension(f), out var id) ? id : 0)
            .Where(id => id > 0).ToHashSet();
    }

    public void Accept(FieldOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        if (!_options.Enabled || outcome.Fate != FieldFate.Counted || outcome.Count?.Tally is not { } tally || outcome.Detection is not { } detection) return;
        if (!IsPlainName(tally.SessionId)) return;
        if (_session != tally.SessionId)
        {
            _session = tally.SessionId;
            _directoryMade = false;
            Sweep(); // once per session: drop what is past its retention, measure what is left
        }
        var image = outcome.Field.Image;
        var directory = Path.Combine(_root, tally.SessionId);
        for (var i = 0; i < detection.Detections.Count; i++)
        {
            var mark = outcome.Marks?[i];
            if (mark is { AlreadyCounted: true }) continue;
            var cellId = mark?.CellId is > 0 ? mark.Value.CellId : tally.FirstCellId + i;
            if (cellId <= 0) continue;
            byte[] jpeg;
            try
            {
                jpeg = Encode(image, detection.Detections[i].Box);
            }
            catch (Exception e) when (e is OpenCVException or ArgumentException)
            {
                _logger.LogDebug(e, "Cell {CellId}: no crop", cellId);
                continue;
            }
            if (_bytes + jpeg.Length > _options.MaxBytes && !MakeRoom(jpeg.Length) || !_storage.Affords(jpeg.Length))
            {
                Dropped++;
                continue;
            }
            try
            {
                if (!_directoryMade) Directory.CreateDirectory(directory);
                _directoryMade = true;
                File.WriteAllBytes(Path.Combine(directory, cellId + ".jpg"), jpeg);
                _bytes += jpeg.Length;
                _storage.Succeeded(Writer);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _directoryMade = false; // made again at the next crop, should it have gone
                Dropped++;
                _storage.Failed(Writer, e, "cells counted meanwhile have no picture in the review gallery (their counts are kept)");
            }
        }
    }

    /// <summary>The cell's box with a margin (its surroundings help to judge it), at most <see cref="CropSize"/> pixels a side.</summary>
    public static byte[] Encode(Mat image, Detection.BoxF box)
    {
        var margin = 0.2f * Math.Max(box.X2 - box.X1, box.Y2 - box.Y1);
        var x1 = (int)Math.Clamp(MathF.Floor(box.X1 - margin), 0, image.Cols - 1);
        var y1 = (int)Math.Clamp(MathF.Floor(box.Y1 - margin), 0, image.Rows - 1);
        var x2 = (int)Math.Clamp(MathF.Ceiling(box.X2 + margin), x1 + 1, image.Cols);
        var y2 = (int)Math.Clamp(MathF.Ceiling(box.Y2 + margin), y1 + 1, image.Rows);
        using var region = new Mat(image, new Rect(x1, y1, x2 - x1, y2 - y1));
        var scale = Math.Min(1.0, (double)CropSize / Math.Max(region.Cols, region.Rows));
        using var small = new Mat();
        if (scale < 1) Cv2.Resize(region, small, new Size(Math.Max(1, (int)(region.Cols * scale)), Math.Max(1, (int)(region.Rows * scale))), interpolation: InterpolationFlags.Area);
        else region.CopyTo(small);
        return small.ImEncode(".jpg", new ImageEncodingParam(ImwriteFlags.JpegQuality, 85));
    }

    /// <summary>Deletes the crops of sessions older than the retention (by their newest crop) and measures the rest.</summary>
    private void Sweep()
    {
        _bytes = 0;
        if (!Directory.Exists(_root)) return;
        var cutoff = _clock.GetUtcNow().UtcDateTime - _options.Retention;
        foreach (var (directory, newest, bytes) in Sessions())
        {
            if (Path.GetFileName(directory) != _session && newest < cutoff)
            {
                TryDelete(directory, "past its retention");
                continue;
            }
            _bytes += bytes;
        }
    }

    /// <summary>Deletes other sessions' crops, oldest first, until <paramref name="bytes"/> more fit the bound.</summary>
    private bool MakeRoom(long bytes)
    {
        foreach (var (directory, _, size) in Sessions().Where(s => Path.GetFileName(s.Directory) != _session).OrderBy(s => s.Newest))
        {
            if (_bytes + bytes <= _options.MaxBytes) break;
            if (TryDelete(directory, $"to keep the crops under {_options.MaxBytes} bytes")) _bytes -= size;
        }
        return _bytes + bytes <= _options.MaxBytes;
    }

    private IEnumerable<(string Directory, DateTime Newest, long Bytes)> Sessions()
    {
        foreach (var directory in Directory.EnumerateDirectories(_root))
        {
            var files = new DirectoryInfo(directory).EnumerateFiles("*.jpg").ToList();
            yield return (directory, files.Count == 0 ? Directory.GetLastWriteTimeUtc(directory) : files.Max(f => f.LastWriteTimeUtc), files.Sum(f => f.Length));
        }
    }

    private bool TryDelete(string directory, string why)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
            _logger.LogInformation("Cell crops of session {SessionId} deleted, {Why}", Path.GetFileName(directory), why);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning("Cell crops under {Directory} could not be deleted: {Error}", directory, e.Message);
            return false;
        }
    }

    private static bool IsPlainName(string sessionId) =>
        !string.IsNullOrWhiteSpace(sessionId) && sessionId.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');
}

/// <summary>Configuration section "Report:CellCrops": the review gallery's pictures.</summary>
public sealed class CellCropOptions
{
    /// <summary>Keep a crop of every counted cell for review.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Bound on all sessions' crops together (a crop is ~2-4 KB: 256 MB keeps some 80 000 cells).</summary>
    public long MaxBytes { get; set; } = 256L * 1024 * 1024;

    /// <summary>A session's crops are deleted this long after its last crop.</summary>
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(30);

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (MaxBytes < 1024 * 1024) errors.Add($"Report:CellCrops:MaxBytes must be at least 1 MiB (is {MaxBytes}).");
        if (Retention < TimeSpan.FromHours(1)) errors.Add($"Report:CellCrops:Retention must be at least an hour (is {Retention}).");
        return errors;
    }
}
