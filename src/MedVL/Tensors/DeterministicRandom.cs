namespace MedVL.Tensors;

/// <summary>
/// xoshiro256** seeded through SplitMix64: the random source of MedSynth, sampling and dropout, so a seed names the same result on
/// every machine and .NET version (System.Random's algorithm is an implementation detail).
/// </summary>
public sealed class DeterministicRandom
{
    private ulong _s0, _s1, _s2, _s3;

    public DeterministicRandom(ulong seed)
    {
        ulong x = seed;
        _s0 = SplitMix(ref x); _s1 = SplitMix(ref x); _s2 = SplitMix(ref x); _s3 = SplitMix(ref x);
    }

    /// <summary>An independent stream for item <paramref name="index"/> of a data set with this seed.</summary>
    public static DeterministicRandom ForItem(ulong seed, long index) => new(seed * 0x9E3779B97F4A7C15UL ^ (ulong)index * 0xD1B54A32D192ED03UL ^ 0x5851F42D4C957F2DUL);

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextUInt64()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0; _s3 ^= _s1; _s1 ^= _s2; _s0 ^= _s3; _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    public double Uniform(double lo, double hi) => lo + (hi - lo) * NextDouble();

    /// <summary>Uniform integer in [lo, hi) (Lemire's unbiased bounded method).</summary>
    public int Next(int lo, int hi)
    {
        if (hi <= lo) throw new ArgumentOutOfRangeException(nameof(hi), $"empty range [{lo}, {hi})");
        ulong range = (ulong)(hi - lo);
        UInt128 m = (UInt128)NextUInt64() * range;
        if ((ulong)m < range)
        {
            ulong threshold = (0UL - range) % range;
            while ((ulong)m < threshold) m = (UInt128)NextUInt64() * range;
        }
        return lo + (int)(ulong)(m >> 64);
    }

    public bool Chance(double p) => NextDouble() < p;

    public T Pick<T>(IReadOnlyList<T> items) => items[Next(0, items.Count)];

    /// <summary>Standard normal (Box–Muller, one value per call; deterministic).</summary>
    public double Normal()
    {
        double u1 = 1.0 - NextDouble(), u2 = NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
