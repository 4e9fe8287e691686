using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

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
/// and every drop is counted and logged. Thread-safe.</summary>
public sealed class Outbox : IDisposable
{
    private readonly object _gate = new();
    private readonly SqliteConnection _connection;
    private readonly ILogger _logger;
    private int _count;
    private long _bytes;
    private long _droppedImages;
    private long _droppedResults;

    public Outbox(string path, int maxMessages, long maxBytes, ILogger<Outbox>? logger = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxMessages, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBytes, 1);
        MaxMessages = maxMessages;
        MaxBytes = maxBytes;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null) Directory.CreateDirectory(directory);

        try
        {
            _connection = Open(path);
        }
        catch (SqliteException e) when (e.SqliteErrorCode is NotADatabase or Corrupt)
        {
            // Like a corrupt session file: keep the bad file aside for whoever investigates, start an empty outbox.
            var aside = Quarantine(path);
            _logger.LogError("Outbox {Path} is unreadable ({Error}); moved to {Aside}. Messages it held that the broker had not acknowledged are lost; " +
                "a new outbox is started", path, e.Message, aside);
            _connection = Open(path);
        }
        if (_count > 0) _logger.LogInformation("Outbox {Path} holds {Count} messages ({Bytes} bytes) from before", path, _count, _bytes);
    }

    private const int Corrupt = 11, NotADatabase = 26; // SQLITE_CORRUPT, SQLITE_NOTADB

    /// <summary>Opens (or creates) the database, checks its integrity and reads its totals; throws SqliteException
    /// (SQLITE_CORRUPT) when the check fails.</summary>
    private SqliteConnection Open(string path)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
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
            totals.CommandText = "SELECT COUNT(*), COALESCE(SUM(length(payload)), 0) FROM outbox;";
            using var reader = totals.ExecuteReader();
            reader.Read();
            _count = reader.GetInt32(0);
            _bytes = reader.GetInt64(1);
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

    public int MaxMessages { get; }
    public long MaxBytes { get; }

    public int Count { get { lock (_gate) return _count; } }
    public long Bytes { get { lock (_gate) return _bytes; } }
    public long DroppedImages => Interlocked.Read(ref _droppedImages);
    public long DroppedResults => Interlocked.Read(ref _droppedResults);

    /// <summary>Stores a message (replacing any with the same coalesce key) and makes room if the bounds are passed.</summary>
    public long Enqueue(OutboxMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (message.Payload.LongLength > MaxBytes)
            throw new ArgumentException($"A {message.Payload.LongLength}-byte message can never fit an outbox of {MaxBytes} bytes.", nameof(message));
        lock (_gate)
        {
            using var transaction = _connection.BeginTransaction();
            if (message.CoalesceKey is not null)
            {
                using var find = Command("SELECT COUNT(*), COALESCE(SUM(length(payload)), 0) FROM outbox WHERE coalesce_key = $key;", transaction);
                find.Parameters.AddWithValue("$key", message.CoalesceKey);
                using (var reader = find.ExecuteReader())
                {
                    reader.Read();
                    _count -= reader.GetInt32(0);
                    _bytes -= reader.GetInt64(1);
                }
                using var delete = Command("DELETE FROM outbox WHERE coalesce_key = $key;", transaction);
                delete.Parameters.AddWithValue("$key", message.CoalesceKey);
                delete.ExecuteNonQuery();
            }

            using var insert = Command("""
                INSERT INTO outbox (topic, payload, retain, qos, kind, coalesce_key)
                VALUES ($topic, $payload, $retain, $qos, $kind, $key) RETURNING seq;
                """, transaction);
            insert.Parameters.AddWithValue("$topic", message.Topic);
            insert.Parameters.AddWithValue("$payload", message.Payload);
            insert.Parameters.AddWithValue("$retain", message.Retain ? 1 : 0);
            insert.Parameters.AddWithValue("$qos", message.QoS);
            insert.Parameters.AddWithValue("$kind", (int)message.Kind);
            insert.Parameters.AddWithValue("$key", (object?)message.CoalesceKey ?? DBNull.Value);
            var sequence = (long)insert.ExecuteScalar()!;
            _count++;
            _bytes += message.Payload.LongLength;

            MakeRoom(sequence, transaction);
            transaction.Commit();
            return sequence;
        }
    }

    /// <summary>The oldest messages, in send order.</summary>
    public IReadOnlyList<OutboxEntry> Peek(int max)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        lock (_gate)
        {
            using var command = Command("SELECT seq, topic, payload, retain, qos, kind, coalesce_key FROM outbox ORDER BY seq LIMIT $max;");
            command.Parameters.AddWithValue("$max", max);
            using var reader = command.ExecuteReader();
            var entries = new List<OutboxEntry>();
            while (reader.Read())
                entries.Add(new OutboxEntry(reader.GetInt64(0), new OutboxMessage(
                    reader.GetString(1), (byte[])reader[2], reader.GetInt32(3) != 0, (OutboxKind)reader.GetInt32(5),
                    reader.IsDBNull(6) ? null : reader.GetString(6), reader.GetInt32(4))));
            return entries;
        }
    }

    /// <summary>Removes an acknowledged message (no-op if a newer coalesced message already replaced it).</summary>
    public void Remove(long sequence)
    {
        lock (_gate)
        {
            using var command = Command("DELETE FROM outbox WHERE seq = $seq RETURNING length(payload);");
            command.Parameters.AddWithValue("$seq", sequence);
            var length = command.ExecuteScalar();
            if (length is long bytes)
            {
                _count--;
                _bytes -= bytes;
            }
        }
    }

    public void Dispose()
    {
        lock (_gate) _connection.Dispose();
    }

    private void MakeRoom(long keep, SqliteTransaction transaction)
    {
        while (_count > MaxMessages || _bytes > MaxBytes)
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
            _count--;
            _bytes -= length;
            if (kind == OutboxKind.Image)
            {
                var total = Interlocked.Increment(ref _droppedImages);
                _logger.LogWarning("Outbox full ({Count} messages, {Bytes} bytes): dropped an unsent image ({Total} images dropped so far)", _count, _bytes, total);
            }
            else
            {
                var total = Interlocked.Increment(ref _droppedResults);
                _logger.LogWarning("Outbox full ({Count} messages, {Bytes} bytes): dropped unsent result #{Sequence} ({Total} results lost so far)", _count, _bytes, seq, total);
            }
        }
    }

    private SqliteCommand Command(string sql, SqliteTransaction? transaction = null)
    {
        var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        return command;
    }
}
