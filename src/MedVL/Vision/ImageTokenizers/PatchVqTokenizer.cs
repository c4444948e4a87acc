using System.Numerics.Tensors;
using System.Text.Json;
using System.Text.Json.Nodes;
using MedVL.Formats;
using MedVL.IO;
using MedVL.Kernels;
using MedVL.Tensors;
using MedVL.Vision.Preprocessing;

namespace MedVL.Vision.ImageTokenizers;

/// <summary>
/// Turns an image into a grid of codebook indices and back: what HealthGPT's generation predicts as &lt;idx_i&gt; tokens
/// (healthgpt.md §3.3: taming's VQGAN, 256×256 → 32×32 indices in raster order, decoded to uint8 RGB).
/// </summary>
public interface IImageTokenizer
{
    /// <summary>Number of codebook entries (HealthGPT's vq_idx_nums: 8192 for the released VQGAN).</summary>
    int CodebookSize { get; }
    /// <summary>Indices per image row and column (32 for the released VQGAN).</summary>
    int GridSize { get; }
    /// <summary>Side of the square image the tokenizer reads and writes (256 for the released VQGAN).</summary>
    int ImageSize { get; }
    /// <summary>GridSize² indices in raster (row-major) order.</summary>
    int[] Encode(Rgb8Image image);
    /// <summary>Exactly GridSize² indices, each in [0, CodebookSize), to an ImageSize × ImageSize RGB image.</summary>
    Rgb8Image Decode(ReadOnlySpan<int> indices);
}

/// <summary>
/// A vector-quantised patch tokenizer for the tiny presets: every non-overlapping p×p RGB patch, scaled to [−1, 1] as
/// taming's img2idx scales pixels (x·2 − 1), is replaced by its nearest codebook vector (squared L2). It is a VQ-VAE
/// with identity encoder and decoder — the released VQGAN's encoder/decoder conv stacks are not built yet — and its
/// codebook is fitted by k-means (k-means++ seeding, Lloyd iterations) on training images. Saved as a folder:
/// config.json (model_type "patch_vq") and model.safetensors with taming's key quantize.embed.weight [K, p·p·3].
/// </summary>
public sealed class PatchVqTokenizer : IImageTokenizer
{
    public const string ModelType = "patch_vq";
    private const string EmbedKey = "quantize.embed.weight";
    private readonly float[] _codebook; // [K, D]
    private readonly float[] _halfNorms; // ½‖e_k‖²

    public PatchVqTokenizer(int imageSize, int patchSize, float[] codebook)
    {
        if (patchSize <= 0 || imageSize <= 0 || imageSize % patchSize != 0)
            throw new ArgumentException($"image size {imageSize} must be a positive multiple of the patch size {patchSize}");
        int d = patchSize * patchSize * 3;
        if (codebook.Length == 0 || codebook.Length % d != 0)
            throw new ArgumentException($"codebook has {codebook.Length} values, not a multiple of p·p·3 = {d}");
        ImageSize = imageSize; PatchSize = patchSize; _codebook = codebook;
        CodebookSize = codebook.Length / d;
        _halfNorms = new float[CodebookSize];
        for (int k = 0; k < CodebookSize; k++)
        {
            var e = codebook.AsSpan(k * d, d);
            _halfNorms[k] = 0.5f * TensorPrimitives.Dot(e, e);
        }
    }

    public int ImageSize { get; }
    public int PatchSize { get; }
    public int CodebookSize { get; }
    public int GridSize => ImageSize / PatchSize;
    public int Dimension => PatchSize * PatchSize * 3;
    public ReadOnlySpan<float> Codebook => _codebook;

    public int[] Encode(Rgb8Image image)
    {
        var x = Patches(image);
        var idx = new int[GridSize * GridSize];
        Nearest(x, idx.Length, idx);
        return idx;
    }

    public Rgb8Image Decode(ReadOnlySpan<int> indices)
    {
        int g = GridSize, p = PatchSize, d = Dimension;
        if (indices.Length != g * g)
            throw new ArgumentException($"{indices.Length} image tokens; the tokenizer decodes exactly {g}×{g} = {g * g}");
        var img = new Rgb8Image(ImageSize, ImageSize);
        for (int t = 0; t < indices.Length; t++)
        {
            int k = indices[t];
            if ((uint)k >= (uint)CodebookSize) throw new ArgumentOutOfRangeException(nameof(indices), $"index {k} at position {t} is outside the codebook [0, {CodebookSize})");
            var e = _codebook.AsSpan(k * d, d);
            int gy = t / g, gx = t % g;
            for (int y = 0; y < p; y++)
                for (int x = 0; x < p; x++)
                    for (int c = 0; c < 3; c++)
                    {
                        // taming's decode_to_img: clamp to [−1, 1], (x + 1)/2 · 255, truncated to uint8.
                        float v = Math.Clamp(e[(y * p + x) * 3 + c], -1f, 1f);
                        img.Pixels[((gy * p + y) * ImageSize + gx * p + x) * 3 + c] = (byte)((v + 1f) / 2f * 255f);
                    }
        }
        return img;
    }

    /// <summary>Patch vectors [G², D] in raster order, pixels scaled to [−1, 1]; the image is resized (bicubic) to ImageSize first.</summary>
    public float[] Patches(Rgb8Image image)
    {
        if (image.Width != ImageSize || image.Height != ImageSize) image = PilResample.Resize(image, ImageSize, ImageSize);
        int g = GridSize, p = PatchSize, d = Dimension;
        var x = new float[g * g * d];
        for (int gy = 0; gy < g; gy++)
            for (int gx = 0; gx < g; gx++)
            {
                int o = (gy * g + gx) * d;
                for (int y = 0; y < p; y++)
                    for (int xx = 0; xx < p; xx++)
                        for (int c = 0; c < 3; c++)
                            x[o + (y * p + xx) * 3 + c] = image.Pixels[((gy * p + y) * ImageSize + gx * p + xx) * 3 + c] / 255f * 2f - 1f;
            }
        return x;
    }

    /// <summary>argmin_k ‖x_i − e_k‖² = argmax_k (x_i·e_k − ½‖e_k‖²), one GEMM per block of rows; ties go to the lower k.</summary>
    private void Nearest(ReadOnlySpan<float> x, int n, Span<int> idx, Span<float> bestScore = default)
    {
        int d = Dimension, k = CodebookSize;
        const int Block = 256;
        var scores = new float[Math.Min(n, Block) * k];
        for (int r0 = 0; r0 < n; r0 += Block)
        {
            int rows = Math.Min(Block, n - r0);
            MatMul.Gemm(false, true, rows, k, d, 1f, x.Slice(r0 * d, rows * d), d, _codebook, d, 0f, scores.AsSpan(0, rows * k), k);
            for (int i = 0; i < rows; i++)
            {
                var s = scores.AsSpan(i * k, k);
                TensorPrimitives.Subtract(s, _halfNorms, s);
                int best = TensorPrimitives.IndexOfMax(s);
                idx[r0 + i] = best;
                if (!bestScore.IsEmpty) bestScore[r0 + i] = s[best];
            }
        }
    }

    /// <summary>
    /// Fits a codebook of <paramref name="codebookSize"/> entries to the patches of <paramref name="images"/>: k-means++
    /// seeding from a seeded generator, then <paramref name="iterations"/> Lloyd steps (an emptied entry is re-seeded
    /// with the patch farthest from its entry). The same images and seed give the same codebook.
    /// </summary>
    public static PatchVqTokenizer Fit(IEnumerable<Rgb8Image> images, int imageSize, int patchSize, int codebookSize,
        int iterations = 15, ulong seed = 0, CancellationToken ct = default)
    {
        if (codebookSize <= 0) throw new ArgumentOutOfRangeException(nameof(codebookSize), codebookSize, "the codebook needs at least one entry");
        var shape = new PatchVqTokenizer(imageSize, patchSize, new float[patchSize * patchSize * 3]);
        var all = new List<float>();
        foreach (var im in images) { ct.ThrowIfCancellationRequested(); all.AddRange(shape.Patches(im)); }
        int d = shape.Dimension, n = all.Count / d;
        if (n < codebookSize) throw new ArgumentException($"{n} patches cannot fit a codebook of {codebookSize} entries; give more images or a smaller codebook");
        var x = all.ToArray();
        var rng = new DeterministicRandom(seed);
        // k-means++: each next centre drawn with probability ∝ squared distance to the nearest centre so far.
        var c = new float[codebookSize * d];
        var dist = new double[n];
        int first = rng.Next(0, n);
        x.AsSpan(first * d, d).CopyTo(c);
        Array.Fill(dist, double.PositiveInfinity);
        for (int k = 1; k <= codebookSize; k++)
        {
            ct.ThrowIfCancellationRequested();
            var last = c.AsSpan((k - 1) * d, d);
            for (int i = 0; i < n; i++)
            {
                double e = TensorPrimitives.Distance(x.AsSpan(i * d, d), last);
                dist[i] = Math.Min(dist[i], e * e);
            }
            if (k == codebookSize) break;
            double total = 0;
            for (int i = 0; i < n; i++) total += dist[i];
            int pick = n - 1;
            double u = rng.NextDouble() * total, acc = 0;
            for (int i = 0; i < n; i++) { acc += dist[i]; if (acc > u) { pick = i; break; } }
            x.AsSpan(pick * d, d).CopyTo(c.AsSpan(k * d, d));
        }
        var idx = new int[n];
        var score = new float[n];
        var sums = new double[codebookSize * d];
        var counts = new int[codebookSize];
        for (int it = 0; it < iterations; it++)
        {
            ct.ThrowIfCancellationRequested();
            var cur = new PatchVqTokenizer(imageSize, patchSize, c);
            cur.Nearest(x, n, idx, score);
            Array.Clear(sums); Array.Clear(counts);
            for (int i = 0; i < n; i++)
            {
                counts[idx[i]]++;
                var xi = x.AsSpan(i * d, d);
                int o = idx[i] * d;
                for (int j = 0; j < d; j++) sums[o + j] += xi[j];
            }
            c = new float[codebookSize * d];
            // Squared distance of patch i to its entry: ‖x‖² − 2·score.
            var farthest = Enumerable.Range(0, n).OrderByDescending(i => TensorPrimitives.Dot(x.AsSpan(i * d, d), x.AsSpan(i * d, d)) - 2 * score[i]).GetEnumerator();
            for (int k = 0; k < codebookSize; k++)
            {
                if (counts[k] == 0)
                {
                    farthest.MoveNext();
                    x.AsSpan(farthest.Current * d, d).CopyTo(c.AsSpan(k * d, d));
                    continue;
                }
                for (int j = 0; j < d; j++) c[k * d + j] = (float)(sums[k * d + j] / counts[k]);
            }
        }
        return new PatchVqTokenizer(imageSize, patchSize, c);
    }

    /// <summary>Writes config.json and model.safetensors into <paramref name="directory"/> (each file atomically).</summary>
    public void Save(string directory)
    {
        Directory.CreateDirectory(directory);
        SafetensorsWriter.Write(Path.Combine(directory, "model.safetensors"),
            [SafetensorsTensor.FromFloat32(EmbedKey, (float[])_codebook.Clone(), [CodebookSize, Dimension])],
            new Dictionary<string, string> { ["format"] = "pt", ["medvl"] = ModelType });
        var cfg = new JsonObject
        {
            ["model_type"] = ModelType, ["image_size"] = ImageSize, ["patch_size"] = PatchSize, ["n_embed"] = CodebookSize, ["embed_dim"] = Dimension,
        };
        AtomicFile.WriteAllText(Path.Combine(directory, "config.json"), cfg.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Reads a folder written by <see cref="Save"/>; a wrong or missing field is an error naming the file and the field.</summary>
    public static PatchVqTokenizer Load(string directory)
    {
        string cfgPath = Path.Combine(directory, "config.json");
        if (!File.Exists(cfgPath)) throw new FileNotFoundException($"{cfgPath}: image tokenizer config not found", cfgPath);
        JsonObject cfg;
        try { cfg = JsonNode.Parse(File.ReadAllText(cfgPath))?.AsObject() ?? throw new InvalidDataException($"{cfgPath}: expected a JSON object"); }
        catch (JsonException ex) { throw new InvalidDataException($"{cfgPath}: not valid JSON ({ex.Message})", ex); }
        int Field(string name)
        {
            if (cfg[name] is not JsonValue v || !v.TryGetValue(out int i) || i <= 0) throw new InvalidDataException($"{cfgPath}: field '{name}' must be a positive integer");
            return i;
        }
        string type = cfg["model_type"]?.GetValue<string>() ?? "";
        if (type != ModelType) throw new InvalidDataException($"{cfgPath}: field 'model_type' is '{type}'; this reader knows '{ModelType}' (taming's VQGAN is not supported yet)");
        int size = Field("image_size"), patch = Field("patch_size"), k = Field("n_embed");
        string wPath = Path.Combine(directory, "model.safetensors");
        using var f = Formats.Checkpoint.Open(wPath);
        if (!f.Tensors.TryGetValue(EmbedKey, out var e)) throw new InvalidDataException($"{wPath}: tensor '{EmbedKey}' is missing");
        int d = patch * patch * 3;
        if (e.Shape is not [var rows, var cols] || rows != k || cols != d)
            throw new InvalidDataException($"{wPath}: {EmbedKey} has shape [{string.Join(", ", e.Shape)}], expected [{k}, {d}] (n_embed, patch_size²·3 from config.json)");
        return new PatchVqTokenizer(size, patch, e.ToFloat32());
    }
}
