using System.Text;
using EdgeCounter.Publishing;
using EdgeCounter.Storage;

namespace EdgeCounter.Tests.Storage;

/// <summary>The outbox when the disk refuses writes: SQLite's own SQLITE_FULL (the database capped at its current
/// size), and free space below the reserve (measured figure injected).</summary>
public sealed class OutboxStorageFaultTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgecounter-outbox-fault-").FullName;
    private readonly ManualClock _clock = new();
    private long _bytesFree = 100_000_000;

    private string DbPath => Path.Combine(_dir, "outbox.db");

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    private StorageMonitor Monitor() => new(_dir, reserveBytes: 1_000_000, clock: _clock, measureFreeBytes: _ => _bytesFree);

    private Outbox Open(long memoryMaxBytes = Outbox.DefaultMemoryMaxBytes, int maxMessages = 1000) =>
        new(DbPath, maxMessages, 100_000_000, storage: Monitor(), memoryMaxBytes: memoryMaxBytes, clock: _clock);

    // Bigger than a page, so every result needs new pages and a capped database refuses it.
    private static OutboxMessage Result(int n) => new("p/field", Encoding.UTF8.GetBytes($"{{\"fieldId\":{n},\"pad\":\"{new string('x', 5000)}\"}}"), false, OutboxKind.Result);

    private static OutboxMessage Image(byte fill) => new("p/field/image", Enumerable.Repeat(fill, 6000).ToArray(), true, OutboxKind.Image, "field/image");

    private static int FieldId(OutboxEntry e) => System.Text.Json.JsonDocument.Parse(e.Message.Payload).RootElement.GetProperty("fieldId").GetInt32();

    [Fact]
    public void A_full_disk_keeps_messages_in_memory_in_order_and_writes_them_when_it_takes_writes_again()
    {
        using (var outbox = Open())
        {
            outbox.Enqueue(Result(1));
            outbox.Enqueue(Result(2));
            outbox.CapDatabaseAtCurrentSize(true);

            for (var i = 3; i <= 6; i++) outbox.Enqueue(Result(i)); // no exception: the disk's refusal stays inside
            Assert.Equal(4, outbox.PendingInMemory);
            Assert.Equal(6, outbox.Count);
            Assert.Equal(StorageState.Full, outbox.Storage.State);
            // The sender still gets everything, oldest first, across disk and memory.
            Assert.Equal([1, 2, 3, 4, 5, 6], outbox.Peek(100).Select(FieldId));
            Assert.Equal([1, 2], outbox.Peek(2).Select(FieldId));

            // Space again: within the second nothing is retried, after it the next enqueue writes memory first.
            outbox.CapDatabaseAtCurrentSize(false);
            outbox.Enqueue(Result(7));
            Assert.Equal(5, outbox.PendingInMemory);
            _clock.Advance(TimeSpan.FromSeconds(1.5));
            outbox.Enqueue(Result(8));
            Assert.Equal(0, outbox.PendingInMemory);
            Assert.Equal(StorageState.Ok, outbox.Storage.State);
        }
        using var reopened = Open();
        Assert.Equal([1, 2, 3, 4, 5, 6, 7, 8], reopened.Peek(100).Select(FieldId)); // persisted, in order, once each
        Assert.Equal(0, reopened.DroppedResults);
    }

    [Fact]
    public void Without_new_fields_what_waits_in_memory_is_written_by_PersistPending()
    {
        using (var outbox = Open())
        {
            outbox.Enqueue(Result(1));
            outbox.CapDatabaseAtCurrentSize(true);
            outbox.Enqueue(Result(2));
            _clock.Advance(TimeSpan.FromSeconds(1.5));
            Assert.False(outbox.PersistPending()); // still refused
            outbox.CapDatabaseAtCurrentSize(false);
            Assert.False(outbox.PersistPending()); // tried a moment ago: waits for the second
            _clock.Advance(TimeSpan.FromSeconds(1.5));
            Assert.True(outbox.PersistPending());
            Assert.Equal(0, outbox.PendingInMemory);
        }
        using var reopened = Open();
        Assert.Equal([1, 2], reopened.Peek(100).Select(FieldId));
    }

    [Fact]
    public void A_message_sent_from_memory_and_acknowledged_is_not_written_or_sent_again()
    {
        using (var outbox = Open())
        {
            outbox.CapDatabaseAtCurrentSize(true);
            outbox.Enqueue(Result(1));
            outbox.Enqueue(Result(2));
            var first = outbox.Peek(1).Single();
            outbox.Remove(first.Sequence); // the broker acknowledged it while only memory held it
            outbox.CapDatabaseAtCurrentSize(false);
            _clock.Advance(TimeSpan.FromSeconds(1.5));
            Assert.True(outbox.PersistPending());
            var second = outbox.Peek(10).Single();
            Assert.Equal(2, FieldId(second));
            outbox.Remove(second.Sequence); // taken from memory before the write, removed from disk after it: same number
            Assert.Equal(0, outbox.Count);
        }
        using var reopened = Open();
        Assert.Equal(0, reopened.Count);
    }

    [Fact]
    public void When_everything_refused_was_sent_from_memory_the_disk_taking_writes_again_still_clears_the_full_state()
    {
        // A slide finished while the disk was full: all its results went out live, none waits, and no new field comes
        // to write. P/stats must not say "full" for ever on a disk that has space again.
        using var outbox = Open();
        outbox.CapDatabaseAtCurrentSize(true);
        outbox.Enqueue(Result(1));
        Assert.Equal(StorageState.Full, outbox.Storage.State);
        outbox.Remove(outbox.Peek(1).Single().Sequence);
        outbox.CapDatabaseAtCurrentSize(false);
        _clock.Advance(TimeSpan.FromSeconds(1.5));
        Assert.True(outbox.PersistPending());
        Assert.Equal(StorageState.Ok, outbox.Storage.State);
    }

    [Fact]
    public void The_memory_queue_is_bounded_images_go_first_then_the_oldest_results_each_counted()
    {
        using var outbox = Open(memoryMaxBytes: 20_000);
        outbox.CapDatabaseAtCurrentSize(true);
        outbox.Enqueue(Result(1));
        outbox.Enqueue(Image(1));
        outbox.Enqueue(Result(2));
        outbox.Enqueue(Result(3)); // 3 results + 1 image > 20 000 bytes: the image goes
        Assert.Equal(1, outbox.DroppedImages);
        Assert.Equal(0, outbox.DroppedResults);
        outbox.Enqueue(Result(4)); // then the oldest result
        Assert.Equal(1, outbox.DroppedResults);
        Assert.Equal(2, outbox.DroppedFromMemory);
        Assert.Equal([2, 3, 4], outbox.Peek(100).Select(FieldId));
        Assert.True(outbox.Bytes <= 20_000);
    }

    [Fact]
    public void Below_the_reserve_images_are_sent_but_not_kept_on_disk_while_results_still_are()
    {
        using (var outbox = Open())
        {
            outbox.Enqueue(Image(1)); // on disk while there is room
            _bytesFree = 500_000;     // below the 1 MB reserve
            _clock.Advance(TimeSpan.FromSeconds(1.1));
            outbox.Enqueue(Result(1));
            outbox.Enqueue(Image(2));
            Assert.Equal(StorageState.Low, outbox.Storage.State);
            Assert.Equal(1, outbox.PendingInMemory); // the newest image, live only; the older one left the disk
            var entries = outbox.Peek(10);
            Assert.Equal(["p/field", "p/field/image"], entries.Select(e => e.Message.Topic));
            Assert.Equal(2, entries[1].Message.Payload[0]);
        }
        using var reopened = Open();
        Assert.Equal(["p/field"], reopened.Peek(10).Select(e => e.Message.Topic));
    }

    [Fact]
    public void Above_the_reserve_again_the_waiting_image_is_kept_on_disk()
    {
        using (var outbox = Open())
        {
            _bytesFree = 500_000;
            outbox.Enqueue(Image(3));
            Assert.Equal(1, outbox.PendingInMemory);
            _bytesFree = 50_000_000;
            _clock.Advance(TimeSpan.FromSeconds(1.1));
            Assert.True(outbox.PersistPending());
            Assert.Equal(0, outbox.PendingInMemory);
        }
        using var reopened = Open();
        Assert.Equal(3, reopened.Peek(10).Single().Message.Payload[0]);
    }
}
