using EdgeCounter.Publishing;

namespace EdgeCounter.Tests.Publishing;

public sealed class OutboxTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgecounter-outbox-").FullName;
    private string DbPath => Path.Combine(_dir, "outbox.db");

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    private static OutboxMessage Result(int n) => new("p/field", System.Text.Encoding.UTF8.GetBytes($"{{\"fieldId\":{n}}}"), false, OutboxKind.Result);

    [Fact]
    public void Keeps_order_and_survives_reopening()
    {
        using (var outbox = new Outbox(DbPath, 100, 1_000_000))
        {
            for (var i = 1; i <= 5; i++) outbox.Enqueue(Result(i));
            var first = outbox.Peek(2);
            outbox.Remove(first[0].Sequence);
        }

        using var reopened = new Outbox(DbPath, 100, 1_000_000);
        Assert.Equal(4, reopened.Count);
        var texts = reopened.Peek(10).Select(e => System.Text.Encoding.UTF8.GetString(e.Message.Payload)).ToArray();
        Assert.Equal(["{\"fieldId\":2}", "{\"fieldId\":3}", "{\"fieldId\":4}", "{\"fieldId\":5}"], texts);
        Assert.Equal(texts.Sum(t => t.Length), reopened.Bytes);
    }

    [Fact]
    public void Coalesced_messages_keep_only_the_newest_and_move_to_the_end()
    {
        using var outbox = new Outbox(DbPath, 100, 1_000_000);
        outbox.Enqueue(new OutboxMessage("p/counts", "1"u8.ToArray(), true, OutboxKind.Result, "counts"));
        outbox.Enqueue(Result(1));
        outbox.Enqueue(new OutboxMessage("p/counts", "22"u8.ToArray(), true, OutboxKind.Result, "counts"));

        var entries = outbox.Peek(10);
        Assert.Equal(2, entries.Count);
        Assert.Equal("p/field", entries[0].Message.Topic);
        Assert.Equal("22", System.Text.Encoding.UTF8.GetString(entries[1].Message.Payload));
        Assert.True(entries[1].Message.Retain);
        Assert.Equal("counts", entries[1].Message.CoalesceKey);
        Assert.Equal(2, outbox.Count);
        Assert.Equal(entries.Sum(e => e.Message.Payload.Length), outbox.Bytes);
    }

    [Fact]
    public void When_full_images_go_before_results_and_losses_are_counted()
    {
        using var outbox = new Outbox(DbPath, maxMessages: 4, maxBytes: 1_000_000);
        outbox.Enqueue(new OutboxMessage("p/field/image", new byte[100], true, OutboxKind.Image)); // not coalesced here on purpose
        outbox.Enqueue(Result(1));
        outbox.Enqueue(new OutboxMessage("p/field/image", new byte[100], true, OutboxKind.Image));
        outbox.Enqueue(Result(2));
        outbox.Enqueue(Result(3));
        Assert.Equal(1, outbox.DroppedImages);
        outbox.Enqueue(Result(4));
        Assert.Equal(2, outbox.DroppedImages);
        Assert.Equal(0, outbox.DroppedResults);
        outbox.Enqueue(Result(5));
        Assert.Equal(1, outbox.DroppedResults);

        var texts = outbox.Peek(10).Select(e => System.Text.Encoding.UTF8.GetString(e.Message.Payload)).ToArray();
        Assert.Equal(["{\"fieldId\":2}", "{\"fieldId\":3}", "{\"fieldId\":4}", "{\"fieldId\":5}"], texts);
    }

    [Fact]
    public void Byte_bound_is_enforced()
    {
        using var outbox = new Outbox(DbPath, maxMessages: 1000, maxBytes: 250);
        for (var i = 0; i < 5; i++) outbox.Enqueue(new OutboxMessage("p/field", new byte[100], false, OutboxKind.Result));
        Assert.True(outbox.Bytes <= 250);
        Assert.Equal(2, outbox.Count);
        Assert.Equal(3, outbox.DroppedResults);
        Assert.Throws<ArgumentException>(() => outbox.Enqueue(new OutboxMessage("p/field", new byte[251], false, OutboxKind.Result)));
    }

    [Fact]
    public void Removing_a_replaced_message_is_harmless()
    {
        using var outbox = new Outbox(DbPath, 100, 1_000_000);
        var old = outbox.Enqueue(new OutboxMessage("p/counts", "1"u8.ToArray(), true, OutboxKind.Result, "counts"));
        outbox.Enqueue(new OutboxMessage("p/counts", "2"u8.ToArray(), true, OutboxKind.Result, "counts"));
        outbox.Remove(old);
        Assert.Equal(1, outbox.Count);
        Assert.Equal(1, outbox.Bytes);
    }

    [Fact]
    public void An_outbox_overwritten_with_garbage_is_moved_aside_and_a_new_one_starts()
    {
        File.WriteAllBytes(DbPath, System.Text.Encoding.ASCII.GetBytes(new string('x', 8192)));
        using (var outbox = new Outbox(DbPath, 100, 1_000_000))
        {
            Assert.Equal(0, outbox.Count);
            outbox.Enqueue(Result(1));
        }
        Assert.Equal(new string('x', 8192), File.ReadAllText(DbPath + ".corrupt")); // kept for whoever investigates
        using var reopened = new Outbox(DbPath, 100, 1_000_000);
        Assert.Equal(1, reopened.Count); // the new outbox is a real one
    }

    [Fact]
    public void A_torn_outbox_fails_its_integrity_check_at_start_not_at_the_first_send()
    {
        using (var outbox = new Outbox(DbPath, 10_000, 100_000_000))
            for (var i = 1; i <= 400; i++) outbox.Enqueue(new OutboxMessage("p/field/image", new byte[2000], true, OutboxKind.Image));
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        // A power cut or a bad card: pages in the middle of the file overwritten.
        using (var file = new FileStream(DbPath, FileMode.Open, FileAccess.Write))
        {
            file.Position = 3 * 4096;
            file.Write(Enumerable.Repeat((byte)0xA5, 64 * 1024).ToArray());
        }
        using var reopened = new Outbox(DbPath, 100, 1_000_000);
        Assert.Equal(0, reopened.Count);
        Assert.True(File.Exists(DbPath + ".corrupt"));
        reopened.Enqueue(Result(7));
        Assert.Single(reopened.Peek(10));
    }
}
