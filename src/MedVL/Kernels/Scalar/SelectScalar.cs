using System.Numerics;

namespace MedVL.Kernels.Scalar;

/// <summary>Twins of <see cref="Select"/> by a different route: a full stable sort of (value, index) per row.</summary>
public static class SelectScalar
{
    public static void TopK<T>(ReadOnlySpan<T> x, int rows, int n, int k, Span<T> values, Span<long> indices) where T : IFloatingPointIeee754<T>
    {
        var order = new int[n];
        var row = new T[n];
        for (int r = 0; r < rows; r++)
        {
            x.Slice(r * n, n).CopyTo(row);
            for (int i = 0; i < n; i++) order[i] = i;
            // insertion sort: stable, descending, NaN first
            for (int i = 1; i < n; i++)
            {
                int cur = order[i];
                int j = i - 1;
                while (j >= 0 && Rank(row[cur], row[order[j]]) > 0) { order[j + 1] = order[j]; j--; }
                order[j + 1] = cur;
            }
            for (int i = 0; i < k; i++)
            {
                values[r * k + i] = row[order[i]];
                indices[r * k + i] = order[i];
            }
        }
    }

    public static void Argmax<T>(ReadOnlySpan<T> x, Span<long> indices, int rows, int n) where T : IFloatingPointIeee754<T>
    {
        Span<T> v = new T[rows];
        TopK(x, rows, n, 1, v, indices);
    }

    private static int Rank<T>(T a, T b) where T : IFloatingPointIeee754<T>
    {
        if (T.IsNaN(a)) return T.IsNaN(b) ? 0 : 1;
        if (T.IsNaN(b)) return -1;
        return a > b ? 1 : a < b ? -1 : 0;
    }
}
