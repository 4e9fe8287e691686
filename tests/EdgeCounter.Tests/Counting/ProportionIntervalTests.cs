using EdgeCounter.Counting;

namespace EdgeCounter.Tests.Counting;

public class ProportionIntervalTests
{
    [Theory]
    // The Wilson score interval's worked examples in Newcombe, Statistics in Medicine 17:857 (1998), Table I (method 3).
    [InlineData(81, 263, 25.53, 36.62)]
    [InlineData(15, 148, 6.24, 16.05)]
    [InlineData(0, 20, 0.0, 16.11)]
    [InlineData(1, 29, 0.61, 17.18)]
    [InlineData(29, 29, 88.30, 100.0)]
    public void MatchesPublishedWilsonIntervals(long count, long total, double low, double high)
    {
        var (l, h) = ProportionInterval.Wilson95Percent(count, total);
        Assert.Equal(low, l, 0.01);
        Assert.Equal(high, h, 0.01);
    }

    [Fact]
    public void MoreCellsNarrowTheIntervalAndNothingCountedSaysNothing()
    {
        var (l100, h100) = ProportionInterval.Wilson95Percent(5, 100);
        var (l400, h400) = ProportionInterval.Wilson95Percent(20, 400);
        Assert.True(h400 - l400 < (h100 - l100) * 0.6);
        Assert.Equal((0.0, 100.0), ProportionInterval.Wilson95Percent(0, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => ProportionInterval.Wilson95Percent(3, 2));
    }

    [Fact]
    public void TheSessionSnapshotCarriesAnIntervalPerDifferentialLabel()
    {
        var catalog = new CountingCatalog(["neutrophil", "lymphocyte", "RBC"], new Dictionary<string, IReadOnlyList<string>>(), ["neutrophil", "lymphocyte"]);
        var session = CountingSession.Start(catalog, "s-1", "S-1", target: 1000, DateTimeOffset.UnixEpoch);
        Assert.True(session.TryAddField([.. Enumerable.Repeat("neutrophil", 95), .. Enumerable.Repeat("lymphocyte", 5), "RBC"], DateTimeOffset.UnixEpoch, out _));
        var snapshot = session.Snapshot();
        Assert.Equal(["neutrophil", "lymphocyte"], snapshot.DifferentialCi95.Keys);
        Assert.Equal([2.15, 11.18], snapshot.DifferentialCi95["lymphocyte"]);
        Assert.InRange(snapshot.Differential["lymphocyte"], snapshot.DifferentialCi95["lymphocyte"][0], snapshot.DifferentialCi95["lymphocyte"][1]);
    }
}
