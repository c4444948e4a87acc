using MedVL.Autograd;
using MedVL.Models.Blocks;
using MedVL.Models.Config;
using MedVL.Tensors;

namespace MedVL.Models;

/// <summary>modeling_clip.CLIPAttention: bidirectional multi-head attention, q/k/v/out_proj with bias, scale head_dim^-0.5.</summary>
public sealed class ClipAttention(int heads, LinearLayer q, LinearLayer k, LinearLayer v, LinearLayer outProj)
{
    public int NumHeads { get; } = heads;
    public LinearLayer QProj { get; set; } = q;
    public LinearLayer KProj { get; set; } = k;
    public LinearLayer VProj { get; set; } = v;
    public LinearLayer OutProj { get; set; } = outProj;

    public Tensor Forward(Tensor x, CancellationToken ct)
    {
        int b = x.Size(0), n = x.Size(1), d = x.Size(2), hd = d / NumHeads;
        Tensor Heads(LinearLayer proj)
        {
            using var p = proj.Forward(x);
            using var r = Ops.Reshape(p, b, n, NumHeads, hd);
            return r.Transpose(1, 2);
        }
        using var q = Heads(QProj);
        using var k = Heads(KProj);
        using var v = Heads(VProj);
        using var o = Ops.ScaledDotProductAttention(q, k, v, causal: false, scale: 1f / MathF.Sqrt(hd), cancellationToken: ct);
        using var ot = o.Transpose(1, 2);
        using var merged = Ops.Reshape(ot, b, n, d);
        return OutProj.Forward(merged);
    }
}

/// <summary>modeling_clip.CLIPEncoderLayer: x + attn(layer_norm1 x), then + mlp(layer_norm2 ·) with fc1 → quick_gelu → fc2.</summary>
public sealed class ClipEncoderLayer(LayerNormLayer layerNorm1, ClipAttention selfAttn, LayerNormLayer layerNorm2, FcMlp mlp)
{
    public LayerNormLayer LayerNorm1 { get; } = layerNorm1;
    public ClipAttention SelfAttn { get; } = selfAttn;
    public LayerNormLayer LayerNorm2 { get; } = layerNorm2;
    public FcMlp Mlp { get; } = mlp;

    public Tensor Forward(Tensor x, CancellationToken ct)
    {
        Tensor h;
        using (var y = LayerNorm1.Forward(x))
        using (var a = SelfAttn.Forward(y, ct))
            h = Ops.Add(x, a);
        using (h)
        using (var y = LayerNorm2.Forward(h))
        using (var m = Mlp.Forward(y))
            return Ops.Add(h, m);
    }
}

/// <summary>Outputs of <see cref="ClipVisionModel.Forward"/> (HF BaseModelOutputWithPooling); dispose it.</summary>
public sealed class ClipVisionOutput : IDisposable
{
    /// <summary>hidden_states: [0] = embeddings after pre_layrnorm, [i] = output of encoder layer i; each [B, 1+N, D].
    /// Only the states up to the last layer that was run.</summary>
    public required IReadOnlyList<Tensor> HiddenStates { get; init; }
    /// <summary>post_layernorm(last_hidden_state[:, 0]) [B, D], when every layer ran.</summary>
    public Tensor? PoolerOutput { get; init; }
    public Tensor LastHiddenState => HiddenStates[^1];

    /// <summary>HF indexing: negative counts from the end (−1 = last layer, −2 = penultimate).</summary>
    public Tensor this[int index] => HiddenStates[index < 0 ? HiddenStates.Count + index : index];

    public void Dispose()
    {
        foreach (var t in HiddenStates) t.Dispose();
        PoolerOutput?.Dispose();
    }
}

/// <summary>
/// HF CLIPVisionModel (modeling_clip.CLIPVisionTransformer): Conv2d patch embedding (no bias, kernel = stride =
/// patch_size), class token prepended, absolute position embeddings, pre_layrnorm (sic), encoder, post_layernorm on the
/// CLS token. A full CLIPModel folder loads as its vision tower; the text tower and projections are skipped, not read.
/// </summary>
public sealed class ClipVisionModel : IDisposable
{
    private readonly ModelWeights _weights;
    private readonly Tensor _classEmbedding; // [D] float32: the checkpoint tensor itself, or its float32 copy
    private readonly bool _ownsClassEmbedding;

    private ClipVisionModel(ModelConfig config, ModelWeights w, string dir)
    {
        Config = config;
        Vision = config.RequireClip().Vision;
        Directory = dir;
        _weights = w;
        const string p = "vision_model.";
        float eps = (float)Vision.LayerNormEps;
        var ce = w.Get(p + "embeddings.class_embedding");
        _ownsClassEmbedding = ce.DType != DType.F32;
        _classEmbedding = _ownsClassEmbedding ? ce.To(DType.F32) : ce; // kept as the checkpoint tensor, so training reaches it
        PatchEmbedding = w.Get(p + "embeddings.patch_embedding.weight");
        PositionEmbedding = w.Get(p + "embeddings.position_embedding.weight");
        PreLayrnorm = new LayerNormLayer(w.Get(p + "pre_layrnorm.weight"), w.Get(p + "pre_layrnorm.bias"), eps);
        var layers = new ClipEncoderLayer[Vision.NumHiddenLayers];
        for (int i = 0; i < layers.Length; i++)
        {
            string lp = $"{p}encoder.layers.{i}.";
            LayerNormLayer Ln(string n) => new(w.Get(lp + n + ".weight"), w.Get(lp + n + ".bias"), eps);
            LinearLayer Lin(string n) => LinearLayer.Load(w, lp + n, bias: true);
            layers[i] = new ClipEncoderLayer(Ln("layer_norm1"),
                new ClipAttention(Vision.NumAttentionHeads, Lin("self_attn.q_proj"), Lin("self_attn.k_proj"), Lin("self_attn.v_proj"), Lin("self_attn.out_proj")),
                Ln("layer_norm2"), new FcMlp(Lin("mlp.fc1"), Lin("mlp.fc2"), Vision.HiddenAct));
        }
        Layers = layers;
        PostLayernorm = new LayerNormLayer(w.Get(p + "post_layernorm.weight"), w.Get(p + "post_layernorm.bias"), eps);
    }

    public ModelConfig Config { get; }
    public ClipVisionConfig Vision { get; }
    public string Directory { get; }
    /// <summary>embeddings.patch_embedding.weight [D, C, P, P].</summary>
    public Tensor PatchEmbedding { get; }
    /// <summary>embeddings.position_embedding.weight [1+N, D].</summary>
    public Tensor PositionEmbedding { get; }
    public LayerNormLayer PreLayrnorm { get; }
    public IReadOnlyList<ClipEncoderLayer> Layers { get; }
    public LayerNormLayer PostLayernorm { get; }
    public int HiddenSize => Vision.HiddenSize;
    public int NumPatches => Vision.NumPatches;

    /// <summary>The checkpoint tensors of the tower by checkpoint name (vision_model.…).</summary>
    public IEnumerable<(string Name, Tensor Tensor)> NamedWeights() => _weights.Taken.Where(t => !t.IsDisposed).Select(t => (t.Name!, t));

    /// <summary>Loads a clip or clip_vision_model folder (config + safetensors; text-tower tensors skipped).</summary>
    public static ClipVisionModel FromPretrained(string dir, WeightPlacement placement = WeightPlacement.Mapped)
    {
        var config = ModelConfigLoader.Load(dir);
        var clip = config.RequireClip();
        var weights = ModelWeights.Open(dir, WeightTable.Clip(clip), placement: placement);
        try { return new ClipVisionModel(config, weights, dir); }
        catch { weights.Dispose(); throw; }
    }

    /// <summary>
    /// pixel_values [B, C, S, S] (already CLIPImageProcessor-normalised) → hidden states. <paramref name="layers"/>
    /// limits how many encoder layers run (LLaVA's select layer −2 never needs the last one); default all, which also
    /// computes the pooler output.
    /// </summary>
    public ClipVisionOutput Forward(Tensor pixelValues, int? layers = null, CancellationToken cancellationToken = default)
    {
        var v = Vision;
        if (pixelValues.Rank != 4 || pixelValues.Size(1) != v.NumChannels || pixelValues.Size(2) != v.ImageSize || pixelValues.Size(3) != v.ImageSize)
            throw new ArgumentException($"pixel_values {pixelValues.Describe()} must be [B, {v.NumChannels}, {v.ImageSize}, {v.ImageSize}] for {Directory}");
        int run = layers ?? Layers.Count;
        if (run < 0 || run > Layers.Count) throw new ArgumentOutOfRangeException(nameof(layers), run, $"the tower has {Layers.Count} layers");
        var states = new List<Tensor>(run + 1);
        try
        {
            var h = Embeddings(pixelValues, cancellationToken);
            states.Add(h);
            for (int i = 0; i < run; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                h = Layers[i].Forward(h, cancellationToken);
                states.Add(h);
            }
            Tensor? pooled = null;
            if (run == Layers.Count)
            {
                using var cls = h.Select(1, 0);
                pooled = PostLayernorm.Forward(cls);
            }
            return new ClipVisionOutput { HiddenStates = states, PoolerOutput = pooled };
        }
        catch
        {
            foreach (var s in states) s.Dispose();
            throw;
        }
    }

    /// <summary>hidden_states[layer] (HF indexing, −2 = penultimate), patch tokens only or with CLS ([B, N(+1), D]);
    /// runs only the layers needed. LLaVA clip_encoder.feature_select.</summary>
    public Tensor SelectFeatures(Tensor pixelValues, int layer, bool includeCls, CancellationToken cancellationToken = default)
    {
        int count = Layers.Count + 1;
        int idx = layer < 0 ? count + layer : layer;
        if (idx < 0 || idx >= count) throw new ArgumentOutOfRangeException(nameof(layer), layer, $"hidden_states has {count} entries");
        using var output = Forward(pixelValues, idx, cancellationToken);
        var f = output.HiddenStates[idx];
        if (includeCls) return f.Contiguous();
        using var patches = f.Slice(1, 1, f.Size(1) - 1);
        return patches.Contiguous();
    }

    private Tensor Embeddings(Tensor pixelValues, CancellationToken ct)
    {
        int b = pixelValues.Size(0), d = Vision.HiddenSize, n = Vision.NumPatches;
        Tensor patches;
        using (var conv = Ops.Conv2d(pixelValues, PatchEmbedding, null, Vision.PatchSize, 0, ct)) // [B, D, g, g]
        using (var flat = Ops.Reshape(conv, b, d, n))
        using (var t = flat.Transpose(1, 2))
            patches = t.Contiguous();
        Tensor x;
        using (patches)
        using (var ce3 = Ops.Reshape(_classEmbedding, 1, 1, d))
        using (var cls = ce3.Expand(b, 1, d))
            x = Ops.Concat([cls, patches], 1);
        Tensor e;
        using (x) e = Ops.Add(x, PositionEmbedding);
        using (e) return PreLayrnorm.Forward(e);
    }

    public void Dispose()
    {
        if (_ownsClassEmbedding) _classEmbedding.Dispose();
        _weights.Dispose();
    }
}
