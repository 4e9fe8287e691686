using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using EdgeCounter.Storage;

namespace EdgeCounter.Publishing;

/// <summary>How a message may be dropped when the outbox is full: images go first, then results.</summary>
public enum OutboxKind
{
    /// <summary>A field result or a state update: dropped only when no image is left to drop.</summary>
    Result = 0,

    /// <summary>An annotated image: the first to go when the outbox is full.</summary>
    Image = 1,
}

/// <summary>A message waiting for the broker's acknowledgement.</summary>
/// <param name="CoalesceKey">Messages with the same key replace each other (retained "latest" values); null: every one is kept.</param>
public sealed record OutboxMessage(string Topic, byte[] Payload, bool Retain, OutboxKind Kind, string? CoalesceKey = null, int QoS = 1);

/// <summary>A stored message with its position in the send order.</summary>
public sealed record OutboxEntry(long Sequence, OutboxMessage Message);

/// <summary>Durable local queue of messages (SQLite in the state directory). A message stays until the broker
/// acknowledged it; bounded by count and bytes; when full, the oldest images are dropped before any result,
/// and every drop is counted and logged.
/// <para>Storage faults never reach the caller: while the disk refuses writes (full, I/O errors) or free space is
/// below the reserve (images only), messages wait in a bounded in-memory queue, are still handed to the sender, and
/// are written to disk once it takes writes again (retried at most once a second, at the next enqueue or
/// <see cref="PersistPending"/>). One sequence numbers both, so the send order holds across disk and memory and a
/// message keeps its number when it moves to disk. What only memory holds is lost if the process dies.</para>
/// Thread-safe.</summary>
public sealed class Outbox : IDisposable
{
    public const long DefaultMemoryMaxBytes = 32L * 1024 * 1024;
    private readonly string _writer;
    private const int PersistBatch = 64;
    private static readonly TimeSpan RetryInterval = TimeSpan.FromSeconds(1);

    private readonly object _gate = new();
    private readonly string _path;
    private readonly ILogger _logger;
    private readonly TimeProvider _clock;
    private SqliteConnection? _connection; // null while the database cannot be opened (e.g. the disk was full at start)
    private int _diskCount;
    private long _diskBytes;
    private readonly SortedDictionary<long, OutboxMessage> _inMemory = new();
    private long _memoryBytes;
    // Acknowledged by the broker but the disk refused the DELETE: hidden from Peek and the totals, deleted at the next write.
    private readonly Dictionary<long, long> _sentNotDeleted = new();
    private long _lastSequence;
    private bool _writesFailing;
    private bool _disposed;
    private long _lastAttempt;
    private long _droppedImages;
    private long _droppedResults;
    private long _droppedFromMemory;

    /// <param name="storage">The state directory's monitor (free space, reserve, episodes); default: one for this file's directory.</param>
    /// <param name="memoryMaxBytes">Bound of the in-memory queue used while the disk refuses writes (messages: <paramref name="maxMessages"/>).</param>
    /// <param name="writer">How the storage monitor names this queue in its reports (the HL7 queue is an outbox too).</param>
    public Outbox(string path, int maxMessages, long maxBytes, ILogger<Outbox>? logger = null, StorageMonitor? storage = null,
        long memoryMaxBytes = DefaultMemoryMaxBytes, TimeProvider? clock = null, string writer = "the MQTT outbox")
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(writer);
        _writer = writer;
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxMessages, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBytes, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(memoryMaxBytes, 1);
        MaxMessages = maxMessages;
        MaxBytes = maxBytes;
        MemoryMaxBytes = memoryMaxBytes;
        _path = path;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _clock = clock ?? TimeProvider.System;
        Storage = storage ?? new StorageMonitor(Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".");
        _lastAttempt = _clock.GetTimestamp();
        lock (_gate)
        {
            _connection = OpenOrKeepInMemory();
            if (_diskCount > 0) _logger.LogInformation("Outbox {Path} holds {Count} messages ({Bytes} bytes) from before", path, _diskCount, _diskBytes);
        }
    }

    private const int Corrupt = 11, NotADatabase = 26; // SQLITE_CORRUPT, SQLITE_NOTADB

    public int MaxMessages { get; }
    public long MaxBytes { get; }
    public long MemoryMaxBytes { get; }

    /// <summary>The state directory's monitor this outbox reports to.</summary>
    public StorageMonitor Storage { get; }

    /// <summary>Messages waiting for the broker, on disk and in memory.</summary>
    public int Count { get { lock (_gate) return _diskCount - _sentNotDeleted.Count + _inMemory.Count; } }
    public long Bytes { get { lock (_gate) return _diskBytes - _sentNotDeleted.Values.Sum() + _memoryBytes; } }

    /// <summary>Messages held only in memory because the disk refused them (or, below the reserve, images).</summary>
    public int PendingInMemory { get { lock (_gate) return _inMemory.Count; } }

    public long DroppedImages => Interlocked.Read(ref _droppedImages);
    public long DroppedResults => Interlocked.Read(ref _droppedResults);

    /// <summary>Of the drops, those from the in-memory queue: lost because the disk did not take them.</summary>
    public long DroppedFromMemory => Interlocked.Read(ref _droppedFromMemory);

    /// <summary>Stores a message (replacing any with the same coalesce key) and makes room if the bounds are passed;
    /// in memory when the disk refuses it. Returns its sequence number.</summary>
    public long Enqueue(OutboxMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (message.Payload.LongLength > MaxBytes || message.Payload.LongLength > MemoryMaxBytes)
            throw new ArgumentException($"A {message.Payload.LongLength}-byte message can never fit an outbox of {Math.Min(MaxBytes, MemoryMaxBytes)} bytes.", nameof(message));
        lock (_gate)
        {
            var sequence = ++_lastSequence;
            var belowReserve = Storage.BelowReserve;
            if (message.Kind == OutboxKind.Image && belowReserve)
            {
                // Shed images first: the space left is for results. The image still goes out live from memory.
                if (message.CoalesceKey is not null && _connection is not null && !_writesFailing)
                    TryWrite((transaction, changes) => DeleteCoalesced(message.CoalesceKey, transaction, changes));
                KeepInMemory(sequence, message);
            }
            else if (!(PersistPendingLocked(belowReserve) && TryWrite((transaction, changes) => Insert(sequence, message, transaction, changes))))
            {
                KeepInMemory(sequence, message);
            }
            return sequence;
        }
    }

    /// <summary>Writes what waits in memory to disk, when the disk may take it (a failing disk is retried at most
    /// once a second). Returns true when nothing that may go to disk is left in memory.</summary>
    public bool PersistPending()
    {
        lock (_gate) return PersistPendingLocked(Storage.BelowReserve);
    }

    /// <summary>The oldest messages, in send order (disk and memory together).</summary>
    public IReadOnlyList<OutboxEntry> Peek(int max)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        lock (_gate)
        {
            var onDisk = new List<OutboxEntry>();
            if (_connection is not null && _diskCount > _sentNotDeleted.Count)
            {
                try
                {
                    using var command = Command("SELECT seq, topic, payload, retain, qos, kind, coalesce_key FROM outbox ORDER BY seq LIMIT $max;");
                    command.Parameters.AddWithValue("$max", max + _sentNotDeleted.Count);
                    using var reader = command.ExecuteReader();
                    while (reader.Read())
                    {
                        var sequence = reader.GetInt64(0);
                        if (_sentNotDeleted.ContainsKey(sequence)) continue;
                        onDisk.Add(new OutboxEntry(sequence, new OutboxMessage(
                            reader.GetString(1), (byte[])reader[2], reader.GetInt32(3) != 0, (OutboxKind)reader.GetInt32(5),
                            reader.IsDBNull(6) ? null : reader.GetString(6), reader.GetInt32(4))));
                    }
                }
                catch (SqliteException e)
                {
                    // An unreadable disk: what memory holds still goes out live, ahead of the disk's older messages
                    // (live results over order), which follow once it reads again.
                    Storage.Failed(_writer, e, "messages wait in memory (bounded) and are still sent live");
                }
            }
            return onDisk.Concat(_inMemory.Take(max).Select(m => new OutboxEntry(m.Key, m.Value)))
                .OrderBy(e => e.Sequence).Take(max).ToList();
        }
    }

    /// <summary>Removes an acknowledged message (no-op if a newer coalesced message already replaced it).</summary>
    public void Remove(long sequence)
    {
        lock (_gate)
        {
            if (_inMemory.Remove(sequence, out var kept))
            {
                _memoryBytes -= kept.Payload.LongLength;
                return;
            }
            if (_connection is null) return;
            if (RetryWaiting() || !TryWrite((transaction, changes) => DeleteSequence(sequence, transaction, changes)))
                HideUntilDeleted(sequence);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            PersistPendingLocked(Storage.BelowReserve, force: true);
            if (_inMemory.Count > 0)
                _logger.LogWarning("Outbox closes with {Count} unsent messages ({Bytes} bytes) that only memory held (not written to disk): they are lost",
                    _inMemory.Count, _memoryBytes);
            _connection?.Dispose();
            _connection = null;
        }
    }

    /// <summary>Tests: caps the database at its current size (or lifts the cap), so SQLite itself answers
    /// SQLITE_FULL to anything that needs a new page: a full disk without one.</summary>
    internal void CapDatabaseAtCurrentSize(bool cap)
    {
        lock (_gate)
        {
            // SQLite never lowers the cap below the database's size: 1 means "as it is now".
            using var command = Command($"PRAGMA max_page_count = {(cap ? 1 : 1_073_741_823)};");
            command.ExecuteNonQuery();
        }
    }

    private bool RetryWaiting() => _writesFailing && _clock.GetElapsedTime(_lastAttempt) < RetryInterval;

    /// <summary>Opens the database (moving an unreadable one aside); null when the disk refuses, and the outbox works from memory.</summary>
    private SqliteConnection? OpenOrKeepInMemory()
    {
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(_path))!);
            try
            {
                return Open();
            }
            catch (SqliteException e) when (e.SqliteErrorCode is NotADatabase or Corrupt)
            {
                // Like a corrupt session file: keep the bad file aside for whoever investigates, start an empty outbox.
                var aside = Quarantine(_path);
                _logger.LogError("Outbox {Path} is unreadable ({Error}); moved to {Aside}. Messages it held that the broker had not acknowledged are lost; " +
                    "a new outbox is started", _path, e.Message, aside);
                return Open();
            }
        }
        catch (Exception e) when (e is SqliteException or IOException or UnauthorizedAccessException)
        {
            _writesFailing = true;
            _lastAttempt = _clock.GetTimestamp();
            Storage.Failed(_writer, e, "it cannot be opened; messages wait in memory (bounded) and are still sent live");
            return null;
        }
    }

    /// <summary>Opens (or creates) the database, checks its integrity and reads its totals and last sequence number;
    /// throws SqliteException (SQLITE_CORRUPT) when the check fails.</summary>
    private SqliteConnection Open()
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = _path, Pooling = false }.ToString());
        try
        {
            connection.Open();
            void Run(string sql)
            {
                using var command = connection.CreateCommand();
                command.CommandText = sql;
                command.ExecuteNonQuery();
            }
            using (var check = connection.CreateCommand())
            {
                // quick_check reads every page: a torn or overwritten file is found now, not at the first send.
                check.CommandText = "PRAGMA quick_check;";
                var verdict = check.ExecuteScalar() as string;
                if (!string.Equals(verdict, "ok", StringComparison.Ordinal))
                    throw new SqliteException($"integrity check failed: {verdict}", Corrupt);
            }
            Run("PRAGMA journal_mode=WAL;");
            // FULL: a result acknowledged to the pipeline survives a power cut.
            Run("PRAGMA synchronous=FULL;");
            Run("""
                CREATE TABLE IF NOT EXISTS outbox (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    topic TEXT NOT NULL,
                    payload BLOB NOT NULL,
                    retain INTEGER NOT NULL,
                    qos INTEGER NOT NULL,
                    kind INTEGER NOT NULL,
                    coalesce_key TEXT NULL);
                CREATE INDEX IF NOT EXISTS outbox_coalesce ON outbox(coalesce_key) WHERE coalesce_key IS NOT NULL;
                """);
            using var totals = connection.CreateCommand();
            totals.CommandText = """
                SELECT COUNT(*), COALESCE(SUM(length(payload)), 0),
                       MAX(COALESCE(MAX(seq), 0), COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0))
                FROM outbox;
                """;
            using var reader = totals.ExecuteReader();
            reader.Read();
            _diskCount = reader.GetInt32(0);
            _diskBytes = reader.GetInt64(1);
            var lastOnDisk = reader.GetInt64(2);
            // Opened late (the disk refused at start): what memory holds is newer than anything on disk, so it is
            // numbered after it. A message being sent meanwhile may then be sent twice (at least once, as documented).
            if (_inMemory.Count > 0 && _inMemory.Keys.First() <= lastOnDisk)
            {
                var renumbered = _inMemory.Values.ToList();
                _inMemory.Clear();
                foreach (var message in renumbered) _inMemory[++lastOnDisk] = message;
            }
            _lastSequence = Math.Max(_lastSequence, lastOnDisk);
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>Moves the database and its WAL/shared-memory files aside as *.corrupt; returns the new name of the database.</summary>
    private static string Quarantine(string path)
    {
        var aside = path + ".corrupt";
        foreach (var suffix in new[] { "", "-wal", "-shm" })
            if (File.Exists(path + suffix)) File.Move(path + suffix, aside + suffix, overwrite: true);
        return aside;
    }

    /// <summary>Writes memory's messages (not images while below the reserve) and pending deletes to disk, oldest
    /// first, in batches; stops at the first refusal. A failing disk is tried at most once a second unless forced.</summary>
    private bool PersistPendingLocked(bool belowReserve, bool force = false)
    {
        bool Persistable(OutboxMessage m) => !(belowReserve && m.Kind == OutboxKind.Image);
        if (_connection is null || _writesFailing)
        {
            if (!force && RetryWaiting()) return false;
            _lastAttempt = _clock.GetTimestamp();
            if (_connection is null && (_connection = OpenOrKeepInMemory()) is null) return false;
        }
        while (true)
        {
            var batch = _inMemory.Where(m => Persistable(m.Value)).Take(PersistBatch).ToList();
            // Nothing left to write: the deletes still waiting, or, after a refusal, a probe write that shows whether
            // the disk takes writes again (all that was refused may have gone out live meanwhile, and no new field come).
            if (batch.Count == 0) return (_sentNotDeleted.Count == 0 && !_writesFailing) || TryWrite((transaction, _) => ProbeWrite(transaction));
            if (!TryWrite((transaction, changes) =>
                {
                    foreach (var (sequence, message) in batch) Insert(sequence, message, transaction, changes);
                }))
                return false;
        }
    }

    /// <summary>Runs one transaction: first the deletes the disk refused earlier, then <paramref name="work"/>. The
    /// totals, the in-memory queue and the drop counters change only once it committed. False (and reported to the
    /// monitor) when the disk refused.</summary>
    private bool TryWrite(Action<SqliteTransaction, DiskChanges> work)
    {
        if (_connection is null) return false;
        var changes = new DiskChanges(_diskCount, _diskBytes);
        try
        {
            using (var transaction = _connection.BeginTransaction())
            {
                foreach (var sequence in _sentNotDeleted.Keys) DeleteSequence(sequence, transaction, changes);
                work(transaction, changes);
                transaction.Commit();
            }
        }
        catch (SqliteException e)
        {
            _writesFailing = true;
            _lastAttempt = _clock.GetTimestamp();
            Storage.Failed(_writer, e, "messages wait in memory (bounded) and are still sent live");
            ShrinkWriteAheadLog();
            return false;
        }
        if (Storage.BelowReserve) ShrinkWriteAheadLog();
        _diskCount = changes.Count;
        _diskBytes = changes.Bytes;
        _sentNotDeleted.Clear();
        foreach (var sequence in changes.Persisted)
            if (_inMemory.Remove(sequence, out var moved)) _memoryBytes -= moved.Payload.LongLength;
        foreach (var drop in changes.Dropped) CountDrop(drop.Kind, drop.Sequence, fromMemory: false);
        _writesFailing = false;
        Storage.Succeeded(_writer);
        return true;
    }

    /// <summary>SQLite checkpoints its write-ahead log only once it holds 1000 pages (4 MB): more than a small disk
    /// has. Low on space, or refused, the log is folded into the database and truncated, giving its space back.</summary>
    private void ShrinkWriteAheadLog()
    {
        try
        {
            using var checkpoint = Command("PRAGMA wal_checkpoint(TRUNCATE);");
            checkpoint.ExecuteNonQuery();
        }
        catch (SqliteException e)
        {
            _logger.LogDebug("Outbox write-ahead log checkpoint failed: {Error}", e.Message);
        }
    }

    /// <summary>Rewrites the header page with its own user_version: a page really goes to the write-ahead log, so a
    /// disk that still refuses (full, read-only) fails it, and nothing the outbox holds changes.</summary>
    private void ProbeWrite(SqliteTransaction transaction)
    {
        using var read = Command("PRAGMA user_version;", transaction);
        var version = Convert.ToInt64(read.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
        using var write = Command($"PRAGMA user_version = {version};", transaction);
        write.ExecuteNonQuery();
    }

    private void Insert(long sequence, OutboxMessage message, SqliteTransaction transaction, DiskChanges changes)
    {
        if (message.CoalesceKey is not null) DeleteCoalesced(message.CoalesceKey, transaction, changes);
        using var insert = Command("""
            INSERT INTO outbox (seq, topic, payload, retain, qos, kind, coalesce_key)
            VALUES ($seq, $topic, $payload, $retain, $qos, $kind, $key);
            """, transaction);
        insert.Parameters.AddWithValue("$seq", sequence);
        insert.Parameters.AddWithValue("$topic", message.Topic);
        insert.Parameters.AddWithValue("$payload", message.Payload);
        insert.Parameters.AddWithValue("$retain", message.Retain ? 1 : 0);
        insert.Parameters.AddWithValue("$qos", message.QoS);
        insert.Parameters.AddWithValue("$kind", (int)message.Kind);
        insert.Parameters.AddWithValue("$key", (object?)message.CoalesceKey ?? DBNull.Value);
        insert.ExecuteNonQuery();
        changes.Count++;
        changes.Bytes += message.Payload.LongLength;
        changes.Persisted.Add(sequence);
        if (message.CoalesceKey is not null) ReplaceInMemory(message.CoalesceKey, keep: sequence, changes);
        MakeRoom(sequence, transaction, changes);
    }

    /// <summary>Older messages with this key on disk go (replaced by a newer one).</summary>
    private void DeleteCoalesced(string key, SqliteTransaction transaction, DiskChanges changes)
    {
        using var delete = Command("DELETE FROM outbox WHERE coalesce_key = $key RETURNING length(payload);", transaction);
        delete.Parameters.AddWithValue("$key", key);
        using var reader = delete.ExecuteReader();
        while (reader.Read())
        {
            changes.Count--;
            changes.Bytes -= reader.GetInt64(0);
        }
    }

    /// <summary>Older messages with this key in memory are replaced too (once the transaction commits).</summary>
    private void ReplaceInMemory(string key, long keep, DiskChanges changes) =>
        changes.Persisted.AddRange(_inMemory.Where(m => m.Key < keep && m.Value.CoalesceKey == key).Select(m => m.Key));

    private void DeleteSequence(long sequence, SqliteTransaction transaction, DiskChanges changes)
    {
        using var delete = Command("DELETE FROM outbox WHERE seq = $seq RETURNING length(payload);", transaction);
        delete.Parameters.AddWithValue("$seq", sequence);
        if (delete.ExecuteScalar() is long bytes)
        {
            changes.Count--;
            changes.Bytes -= bytes;
        }
    }

    /// <summary>The broker has it but the disk refused the delete: not sent again, deleted at the next write.</summary>
    private void HideUntilDeleted(long sequence)
    {
        long? bytes = null;
        try
        {
            using var find = Command("SELECT length(payload) FROM outbox WHERE seq = $seq;");
            find.Parameters.AddWithValue("$seq", sequence);
            bytes = find.ExecuteScalar() as long?;
        }
        catch (SqliteException)
        {
            bytes = 0; // unreadable too: hide it anyway rather than send it twice; the byte total is off until it is deleted
        }
        if (bytes is { } length) _sentNotDeleted[sequence] = length;
    }

    private void KeepInMemory(long sequence, OutboxMessage message)
    {
        if (message.CoalesceKey is not null)
            foreach (var replaced in _inMemory.Where(m => m.Value.CoalesceKey == message.CoalesceKey).Select(m => m.Key).ToList())
            {
                _memoryBytes -= _inMemory[replaced].Payload.LongLength;
                _inMemory.Remove(replaced);
            }
        _inMemory[sequence] = message;
        _memoryBytes += message.Payload.LongLength;
        while (_inMemory.Count > MaxMessages || _memoryBytes > MemoryMaxBytes)
        {
            // Like the disk's bound: the oldest image first, then the oldest result; never the message just kept.
            var victim = _inMemory.Keys.Where(k => k != sequence).OrderBy(k => _inMemory[k].Kind == OutboxKind.Image ? 0 : 1).First();
            var dropped = _inMemory[victim];
            _inMemory.Remove(victim);
            _memoryBytes -= dropped.Payload.LongLength;
            CountDrop(dropped.Kind, victim, fromMemory: true);
        }
    }

    private void MakeRoom(long keep, SqliteTransaction transaction, DiskChanges changes)
    {
        while (changes.Count > MaxMessages || changes.Bytes > MaxBytes)
        {
            // Oldest image first; then the oldest result. The message just stored is never the victim.
            using var pick = Command("""
                SELECT seq, kind, length(payload) FROM outbox WHERE seq <> $keep
                ORDER BY CASE kind WHEN 1 THEN 0 ELSE 1 END, seq LIMIT 1;
                """, transaction);
            pick.Parameters.AddWithValue("$keep", keep);
            using var reader = pick.ExecuteReader();
            if (!reader.Read()) return;
            var (seq, kind, length) = (reader.GetInt64(0), (OutboxKind)reader.GetInt32(1), reader.GetInt64(2));
            reader.Close();
            using var delete = Command("DELETE FROM outbox WHERE seq = $seq;", transaction);
            delete.Parameters.AddWithValue("$seq", seq);
            delete.ExecuteNonQuery();
            changes.Count--;
            changes.Bytes -= length;
            changes.Dropped.Add((seq, kind));
        }
    }

    private void CountDrop(OutboxKind kind, long sequence, bool fromMemory)
    {
        var where = fromMemory ? $"memory queue full ({_inMemory.Count} messages, {_memoryBytes} bytes, the disk refusing writes)"
            : $"outbox full ({_diskCount} messages, {_diskBytes} bytes)";
        if (fromMemory) Interlocked.Increment(ref _droppedFromMemory);
        if (kind == OutboxKind.Image)
        {
            var total = Interlocked.Increment(ref _droppedImages);
            _logger.LogWarning("Outbox: {Where}: dropped an unsent image ({Total} images dropped so far)", where, total);
        }
        else
        {
            var total = Interlocked.Increment(ref _droppedResults);
            _logger.LogWarning("Outbox: {Where}: dropped unsent result #{Sequence} ({Total} results lost so far)", where, sequence, total);
        }
    }

    private SqliteCommand Command(string sql, SqliteTransaction? transaction = null)
    {
        var command = _connection!.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        return command;
    }

    /// <summary>What a transaction changes, applied only once it committed.</summary>
    private sealed class DiskChanges(int count, long bytes)
    {
        public int Count = count;
        public long Bytes = bytes;
        public readonly List<long> Persisted = []; // memory entries now on disk (or replaced by a newer one there)
        public readonly List<(long Sequence, OutboxKind Kind)> Dropped = [];
    }
}
