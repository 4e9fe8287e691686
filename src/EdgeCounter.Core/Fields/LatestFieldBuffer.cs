using System.Threading.Channels;

namespace EdgeCounter.Fields;

/// <summary>
/// The hand-off from capture to detection. Capture never waits: it holds at most <c>capacity</c> fields, and when
/// detection falls behind the oldest waiting field is dropped (and disposed, and counted), so the newest field wins
/// and memory cannot grow.
/// </summary>
public sealed class LatestFieldBuffer
{
    private readonly Channel<StableField> _channel;
    private long _dropped;

    public LatestFieldBuffer(int capacity = 1)
    {
        _channel = Channel.CreateBounded<StableField>(
            new BoundedChannelOptions(capacity) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true, SingleWriter = true },
            dropped =>
            {
                Interlocked.Increment(ref _dropped);
                dropped.Dispose();
            });
    }

    /// <summary>Fields dropped because detection was still busy with an earlier one.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    public int Waiting => _channel.Reader.Count;

    /// <summary>Never blocks; with DropOldest a bounded channel always accepts.</summary>
    public void Offer(StableField field)
    {
        if (!_channel.Writer.TryWrite(field)) field.Dispose();
    }

    public ValueTask<StableField> TakeAsync(CancellationToken cancellationToken) => _channel.Reader.ReadAsync(cancellationToken);

    public bool TryTake(out StableField? field) => _channel.Reader.TryRead(out field);

    public void Complete() => _channel.Writer.TryComplete();
}
