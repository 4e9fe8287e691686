namespace EdgeCounter.Simulation;

/// <summary>
/// Deterministic hashing and random numbers. The simulator never uses System.Random or the clock,
/// so the same seed gives the same slide, script and frames on every run.
/// </summary>
internal static class Hashing
{
    public static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public static ulong Of(ulong seed, long a, long b = 0, long c = 0, long d = 0) =>
        Mix(Mix(Mix(Mix(seed ^ (ulong)a) ^ (ulong)b) ^ (ulong)c) ^ (ulong)d);

    /// <summary>A uniform double in [0, 1) from a hash.</summary>
    public static double Unit(ulong h) => (h >> 11) * (1.0 / (1UL << 53));
}

/// <summary>SplitMix64: small, fast, and fully specified here so results never depend on the runtime.</summary>
internal struct DeterministicRandom(ulong seed)
{
    private ulong _state = seed;

    public ulong NextUInt64()
    {
        var z = Hashing.Mix(_state); // Mix adds the golden-ratio step itself: SplitMix64's next state, mixed
        _state += 0x9E3779B97F4A7C15UL;
        return z;
    }

    public double NextDouble() => Hashing.Unit(NextUInt64());

    public double Range(double min, double max) => min + (max - min) * NextDouble();

    public int Next(int maxExclusive) => (int)(NextUInt64() % (ulong)maxExclusive);

    public bool Chance(double p) => NextDouble() < p;

    public double Normal()
    {
        var u1 = 1.0 - NextDouble();
        var u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
