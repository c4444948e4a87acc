using System.Buffers;
using System.Numerics.Tensors;

namespace MedVL.Kernels;

/// <summary>Sizes of a 2-D convolution over NCHW input with weight [O, I, kh, kw] (dilation 1, groups 1), as torch.nn.functional.conv2d.</summary>
public readonly record struct Conv2dGeometry(
    int Batch, int InChannels, int Height, int Width, int OutChannels, int KernelH, int KernelW,
    int StrideH = 1, int StrideW = 1, int PadH = 0, int PadW = 0)
{
    public int OutH => (Height + 2 * PadH - KernelH) / StrideH + 1;
    public int OutW => (Width + 2 * PadW - KernelW) / StrideW + 1;
    /// <summary>Rows of the im2col matrix: I·kh·kw.</summary>
    public int PatchSize => InChannels * KernelH * KernelW;
    public int OutPixels => OutH * OutW;
    public long InputElements => (long)Batch * InChannels * Height * Width;
    public long WeightElements => (long)OutChannels * PatchSize;
    public long OutputElements => (long)Batch * OutChannels * OutPixels;

    public void Validate()
    {
        if (Batch <= 0 || InChannels <= 0 || Height <= 0 || Width <= 0 || OutChannels <= 0 || KernelH <= 0 || KernelW <= 0)
            throw new ArgumentException($"conv2d: sizes must be positive (N={Batch}, C={InChannels}, H={Height}, W={Width}, O={OutChannels}, kernel {KernelH}x{KernelW})");
        if (StrideH <= 0 || StrideW <= 0 || PadH < 0 || PadW < 0)
            throw new ArgumentException($"conv2d: stride ({StrideH}, {StrideW}) must be positive and padding ({PadH}, {PadW}) non-negative");
        if (Height + 2 * PadH < KernelH || Width + 2 * PadW < KernelW)
            throw new ArgumentException($"conv2d: kernel {KernelH}x{KernelW} is larger than the padded input {Height + 2 * PadH}x{Width + 2 * PadW}");
        _ = checked((int)((long)PatchSize * OutPixels)); // the im2col buffer must be addressable
    }
}

/// <summary>
/// conv2d as im2col + matrix product (Caffe's formulation): per image, the patches form col [I·kh·kw, Ho·Wo] and
/// y = W[O, I·kh·kw]·col + bias. Backward: dW += dY·colᵀ, dcol = Wᵀ·dY scattered back by col2im, dbias = Σ dY.
/// A 1×1 stride-1 unpadded conv uses the input directly as col; the CLIP patch embedding (14×14, stride 14) is a
/// pure rearrangement. Every matrix product goes through <see cref="Gemm"/>, the single point to switch to the shared
/// GEMM once it is merged. Scalar twin: <see cref="Scalar.ConvScalar"/> (direct convolution).
/// </summary>
public static unsafe class ConvKernels
{
    private const int RowBlock = 32;

    /// <summary>C[M,N] (+)= A[M,K]·B[K,N], row-major, parallel over blocks of rows of C.</summary>
    internal static void Gemm(float* a, int lda, float* b, int ldb, float* c, int ldc, int m, int n, int k, bool accumulate, CancellationToken ct)
    {
        nint ap = (nint)a, bp = (nint)b, cp = (nint)c;
        int blocks = (m + RowBlock - 1) / RowBlock;
        ParallelBlocks.For(blocks, blk =>
        {
            int r0 = blk * RowBlock, rows = Math.Min(RowBlock, m - r0);
            MicroGemm.Multiply((float*)ap + (long)r0 * lda, lda, (float*)bp, ldb, (float*)cp + (long)r0 * ldc, ldc, rows, n, k, accumulate);
        }, ct);
    }

    private static bool IsPointwise(in Conv2dGeometry g) =>
        g.KernelH == 1 && g.KernelW == 1 && g.StrideH == 1 && g.StrideW == 1 && g.PadH == 0 && g.PadW == 0;

    /// <summary>col[(c·kh + ky)·kw + kx, oy·Wo + ox] = x[c, oy·sh − ph + ky, ox·sw − pw + kx] (0 outside).</summary>
    public static void Im2Col(ReadOnlySpan<float> image, Span<float> col, in Conv2dGeometry g)
    {
        int H = g.Height, W = g.Width, OH = g.OutH, OW = g.OutW, P = g.OutPixels;
        int row = 0;
        for (int c = 0; c < g.InChannels; c++)
            for (int ky = 0; ky < g.KernelH; ky++)
                for (int kx = 0; kx < g.KernelW; kx++, row++)
                {
                    var dst = col.Slice(row * P, P);
                    for (int oy = 0; oy < OH; oy++)
                    {
                        int iy = oy * g.StrideH - g.PadH + ky;
                        var drow = dst.Slice(oy * OW, OW);
                        if ((uint)iy >= (uint)H) { drow.Clear(); continue; }
                        var src = image.Slice((c * H + iy) * W, W);
                        if (g.StrideW == 1)
                        {
                            // ix = ox − pw + kx: a shifted copy with zero margins
                            int shift = kx - g.PadW;
                            int lo = Math.Max(0, -shift), hi = Math.Min(OW, W - shift);
                            if (lo > 0) drow[..Math.Min(lo, OW)].Clear();
                            if (hi > lo) src.Slice(lo + shift, hi - lo).CopyTo(drow[lo..]);
                            if (hi < OW) drow[Math.Max(hi, 0)..].Clear();
                        }
                        else
                            for (int ox = 0; ox < OW; ox++)
                            {
                                int ix = ox * g.StrideW - g.PadW + kx;
                                drow[ox] = (uint)ix < (uint)W ? src[ix] : 0f;
                            }
                    }
                }
    }

    /// <summary>image += col2im(col): the adjoint of <see cref="Im2Col"/>.</summary>
    public static void Col2ImAdd(ReadOnlySpan<float> col, Span<float> image, in Conv2dGeometry g)
    {
        int H = g.Height, W = g.Width, OH = g.OutH, OW = g.OutW, P = g.OutPixels;
        int row = 0;
        for (int c = 0; c < g.InChannels; c++)
            for (int ky = 0; ky < g.KernelH; ky++)
                for (int kx = 0; kx < g.KernelW; kx++, row++)
                {
                    var srcRow = col.Slice(row * P, P);
                    for (int oy = 0; oy < OH; oy++)
                    {
                        int iy = oy * g.StrideH - g.PadH + ky;
                        if ((uint)iy >= (uint)H) continue;
                        var dst = image.Slice((c * H + iy) * W, W);
                        var s = srcRow.Slice(oy * OW, OW);
                        if (g.StrideW == 1)
                        {
                            int shift = kx - g.PadW;
                            int lo = Math.Max(0, -shift), hi = Math.Min(OW, W - shift);
                            if (hi > lo) TensorPrimitives.Add(dst.Slice(lo + shift, hi - lo), s[lo..hi], dst.Slice(lo + shift, hi - lo));
                        }
                        else
                            for (int ox = 0; ox < OW; ox++)
                            {
                                int ix = ox * g.StrideW - g.PadW + kx;
                                if ((uint)ix < (uint)W) dst[ix] += s[ox];
                            }
                    }
                }
    }

    private static void CheckLengths(in Conv2dGeometry g, int x, int w, int bias, int y)
    {
        g.Validate();
        if (x != g.InputElements) throw new ArgumentException($"conv2d: input has {x} elements, expected N·C·H·W = {g.InputElements}");
        if (w != g.WeightElements) throw new ArgumentException($"conv2d: weight has {w} elements, expected O·I·kh·kw = {g.WeightElements}");
        if (bias != 0 && bias != g.OutChannels) throw new ArgumentException($"conv2d: bias has {bias} elements, expected {g.OutChannels} (or none)");
        if (y != g.OutputElements) throw new ArgumentException($"conv2d: output has {y} elements, expected N·O·Ho·Wo = {g.OutputElements}");
    }

    /// <summary>y = conv2d(x, w) + bias (bias empty for none).</summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y,
        in Conv2dGeometry g, CancellationToken cancellationToken = default)
    {
        CheckLengths(g, x.Length, w.Length, bias.Length, y.Length);
        int K = g.PatchSize, P = g.OutPixels, O = g.OutChannels;
        int imageLen = g.InChannels * g.Height * g.Width;
        bool pointwise = IsPointwise(g);
        float[]? colArr = pointwise ? null : ArrayPool<float>.Shared.Rent(K * P);
        try
        {
            fixed (float* xp = x, wp = w, yp = y, colp = colArr)
            {
                for (int n = 0; n < g.Batch; n++)
                {
                    float* col;
                    if (pointwise) col = xp + (long)n * imageLen;
                    else
                    {
                        Im2Col(x.Slice(n * imageLen, imageLen), new Span<float>(colp, K * P), g);
                        col = colp;
                    }
                    float* yn = yp + (long)n * O * P;
                    Gemm(wp, K, col, P, yn, P, O, P, K, accumulate: false, cancellationToken);
                    if (!bias.IsEmpty)
                        for (int o = 0; o < O; o++)
                        {
                            var r = new Span<float>(yn + (long)o * P, P);
                            TensorPrimitives.Add(r, bias[o], r);
                        }
                }
            }
        }
        finally
        {
            if (colArr is not null) ArrayPool<float>.Shared.Return(colArr);
        }
    }

    /// <summary>Gradients of conv2d: dx (overwritten), dw (overwritten), dbias (overwritten); pass an empty span to skip one.</summary>
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> dy,
        Span<float> dx, Span<float> dw, Span<float> dbias, in Conv2dGeometry g, CancellationToken cancellationToken = default)
    {
        CheckLengths(g, x.Length, w.Length, dbias.Length, dy.Length);
        if (!dx.IsEmpty && dx.Length != x.Length) throw new ArgumentException($"conv2d backward: dx has {dx.Length} elements, expected {x.Length}");
        if (!dw.IsEmpty && dw.Length != w.Length) throw new ArgumentException($"conv2d backward: dw has {dw.Length} elements, expected {w.Length}");
        int K = g.PatchSize, P = g.OutPixels, O = g.OutChannels;
        int imageLen = g.InChannels * g.Height * g.Width;
        bool pointwise = IsPointwise(g);

        if (!dbias.IsEmpty)
        {
            dbias.Clear();
            for (int n = 0; n < g.Batch; n++)
                for (int o = 0; o < O; o++) dbias[o] += TensorPrimitives.Sum(dy.Slice((n * O + o) * P, P));
        }

        var colArr = ArrayPool<float>.Shared.Rent(K * P);
        var colTArr = dw.IsEmpty ? null : ArrayPool<float>.Shared.Rent(K * P);
        var wTArr = dx.IsEmpty ? null : ArrayPool<float>.Shared.Rent(K * O);
        var dyTArr = dw.IsEmpty ? null : ArrayPool<float>.Shared.Rent(O * P);
        try
        {
            fixed (float* xp = x, wp = w, dyp = dy, dxp = dx, dwp = dw, colp = colArr, colT = colTArr, wT = wTArr)
            {
                if (!dw.IsEmpty)
                {
                    dw.Clear();
                    for (int n = 0; n < g.Batch; n++)
                    {
                        float* col;
                        if (pointwise) col = xp + (long)n * imageLen;
                        else
                        {
                            Im2Col(x.Slice(n * imageLen, imageLen), new Span<float>(colp, K * P), g);
                            col = colp;
                        }
                        // dW[O, K] += dY_n[O, P] · colᵀ[P, K]
                        MicroGemm.Transpose(col, P, colT, K, K, P);
                        Gemm(dyp + (long)n * O * P, P, colT, K, dwp, K, O, K, P, accumulate: true, cancellationToken);
                    }
                }
                if (!dx.IsEmpty)
                {
                    MicroGemm.Transpose(wp, K, wT, O, O, K); // Wᵀ [K, O]
                    dx.Clear();
                    for (int n = 0; n < g.Batch; n++)
                    {
                        float* dyn = dyp + (long)n * O * P;
                        if (pointwise)
                        {
                            Gemm(wT, O, dyn, P, dxp + (long)n * imageLen, P, K, P, O, accumulate: false, cancellationToken);
                            continue;
                        }
                        Gemm(wT, O, dyn, P, colp, P, K, P, O, accumulate: false, cancellationToken);
                        Col2ImAdd(new ReadOnlySpan<float>(colp, K * P), dx.Slice(n * imageLen, imageLen), g);
                    }
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(colArr);
            if (colTArr is not null) ArrayPool<float>.Shared.Return(colTArr);
            if (wTArr is not null) ArrayPool<float>.Shared.Return(wTArr);
            if (dyTArr is not null) ArrayPool<float>.Shared.Return(dyTArr);
        }
    }
}
