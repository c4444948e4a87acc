namespace MedVL.Kernels;

/// <summary>
/// Argmax and top-k over contiguous rows (no gradient). Ordering as torch on CPU: NaN ranks above every number,
/// argmax returns the first maximum, top-k is sorted descending with equal values in index order (torch leaves
/// the order of equal values in topk unspecified; 1.13 on CPU is not consistent about it).
/// Twin: <see cref="Scalar.SelectScalar"/>.
/// </summary>
public static class Select
{
    /// <summary>a ranks strictly above b (NaN is the largest, as torch.max/argmax/topk).</summary>
    private static bool Above(float a, float b) => a > b || (float.IsNaN(a) && !float.IsNaN(b));

    public static void Argmax(ReadOnlySpan<float> x, Span<long> indices, int rows, int n)
    {
        for (int r = 0; r < rows; r++)
        {
            var row = x.Slice(r * n, n);
            int best = 0;
            for (int i = 1; i < n; i++)
                if (Above(row[i], row[best])) best = i;
            indices[r] = best;
        }
    }

    /// <summary>The k largest of each row, descending: an insertion into a sorted k-buffer per element (k is small in sampling).</summary>
    public static void TopK(ReadOnlySpan<float> x, int rows, int n, int k, Span<float> values, Span<long> indices)
    {
        for (int r = 0; r < rows; r++)
        {
            var row = x.Slice(r * n, n);
            var vals = values.Slice(r * k, k);
            var idx = indices.Slice(r * k, k);
            int filled = 0;
            for (int i = 0; i < n; i++)
            {
                float v = row[i];
                if (filled == k && !Above(v, vals[k - 1])) continue;
                int pos = filled < k ? filled : k - 1;
                // shift down entries that v ranks above; equal values stay ahead (earlier index first)
                while (pos > 0 && Above(v, vals[pos - 1]))
                {
                    vals[pos] = vals[pos - 1];
                    idx[pos] = idx[pos - 1];
                    pos--;
                }
                vals[pos] = v;
                idx[pos] = i;
                if (filled < k) filled++;
            }
        }
    }
}
