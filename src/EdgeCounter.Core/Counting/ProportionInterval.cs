namespace EdgeCounter.Counting;

/// <summary>
/// How far a count's share can be from the slide's true share: the Wilson score interval for a binomial proportion
/// (Wilson 1927; what CLSI H20 and Rümke's tables express for a differential). A 100-cell differential is a sample:
/// 5 monocytes of 100 is 2.2-11.2 %, 20 of 400 is 3.3-7.6 %.
/// </summary>
public static class ProportionInterval
{
    /// <summary>z of a two-sided 95 % interval.</summary>
    public const double Z95 = 1.959963984540054;

    /// <summary>The 95 % interval, in percent, of <paramref name="count"/> out of <paramref name="total"/>; [0, 100]
    /// when nothing is counted yet (no information).</summary>
    public static (double Low, double High) Wilson95Percent(long count, long total)
    {
        if (total < 0 || count < 0 || count > total) throw new ArgumentOutOfRangeException(nameof(count), $"{count} of {total}");
        if (total == 0) return (0, 100);
        double n = total, p = count / n, z2 = Z95 * Z95;
        var centre = (p + z2 / (2 * n)) / (1 + z2 / n);
        var half = Z95 * Math.Sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n);
        // Exact at the ends: 0 of n cannot be below 0 %, n of n not above 100 %.
        var low = count == 0 ? 0 : Math.Max(0, centre - half);
        var high = count == total ? 1 : Math.Min(1, centre + half);
        return (100 * low, 100 * high);
    }
}
