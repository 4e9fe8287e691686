using EdgeCounter.Fields;
using OpenCvSharp;

namespace EdgeCounter.Tests.Fields;

public class LatestFieldBufferTests
{
    private static StableField Field(long index) =>
        new(new Mat(4, 4, MatType.CV_8UC3, Scalar.All(index)), index, DateTimeOffset.UnixEpoch, new FrameScore(0, 1));

    [Fact]
    public async Task When_detection_lags_the_newest_field_wins_and_drops_are_counted_and_disposed()
    {
        var buffer = new LatestFieldBuffer(capacity: 1);
        var fields = Enumerable.Range(1, 5).Select(i => Field(i)).ToList();
        foreach (var f in fields) buffer.Offer(f); // a consumer that never keeps up: writer never waits

        Assert.Equal(4, buffer.Dropped);
        Assert.Equal(1, buffer.Waiting);
        using var taken = await buffer.TakeAsync(CancellationToken.None);
        Assert.Equal(5, taken.FrameIndex);
        Assert.All(fields.Take(4), f => Assert.True(f.Image.IsDisposed));
    }
}
