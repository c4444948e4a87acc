using MedVL.Tensors;
using MedVL.Autograd;
using MedVL.Models.Blocks;
using MedVL.Models.Config;

namespace MedVL.Models;

/// <summary>Options of one decoder forward beyond the inputs.</summary>
public sealed record DecoderForwardOptions
{
    /// <summary>HF position_ids: T positions shared by the batch or B·T; default PastLength, …, PastLength+T−1.</summary>
    public int[]? PositionIds { get; init; }
    /// <summary>HF attention_mask [B, PastLength+T] (1 = token, 0 = padding; any numeric dtype), or null for none.</summary>
    public Tensor? AttentionMask { get; init; }
    /// <summary>Compute logits for the last position only (generation): [B, 1, V].</summary>
    public bool LastTokenLogitsOnly { get; init; }
    /// <summary>When set, receives HF's hidden_states: [0] = input embeddings, [i] = output of layer i (before the
    /// final norm); the caller disposes them.</summary>
    public List<Tensor>? HiddenStates { get; init; }
    public CancellationToken CancellationToken { get; init; }
    /// <summary>Adapters to run with (null: whatever <see cref="AdapterSelection.Current"/> is, usually none).</summary>
    public AdapterSelection? Adapters { get; init; }
    /// <summary>Receives the MoE layers' routing and load-balancing losses of this call (Med-MoE), when set.</summary>
    public MoeRoutingTrace? Routing { get; init; }

    public static DecoderForwardOptions Default { get; } = new();
}

/// <summary>
/// A decoder-only language model (HF *ForCausalLM): model.embed_tokens → layers → final norm → lm_head. Weights are
/// views over the memory-mapped checkpoint, owned by the model. Forward is reentrant: it keeps no per-call state on
/// the model (the <see cref="KvCache"/> is the caller's), so two requests can run concurrently on one instance.
/// </summary>
public abstract class CausalLM : IDisposable
{
    private readonly ModelWeights _weights;

    protected CausalLM(ModelConfig config, ModelWeights weights, string directory)
    {
        Config = config;
        Decoder = config.RequireDecoder();
        Directory = directory;
        _weights = weights;
        var d = Decoder;
        if (d.QkLayernorm)
            throw new ModelConfigException(config.SourcePath, "qk_layernorm", "per-head q/k LayerNorm is not supported yet");
        if (d.Family == DecoderFamily.StableLm && d.ParallelResidual)
            throw new ModelConfigException(config.SourcePath, "use_parallel_residual", "the parallel StableLM block (StableLM-3B-4E1T style) is not supported yet; StableLM-2 uses false");
        Rope = new DecoderRope(d, config.SourcePath);
        EmbedTokensWeight = weights.Get("model.embed_tokens.weight");
        var layers = new DecoderLayer[d.NumHiddenLayers!.Value];
        for (int i = 0; i < layers.Length; i++) layers[i] = CreateLayer(weights, d, $"model.layers.{i}", MoeMlp.Load(weights, config, i));
        Layers = layers;
        bool phi = d.Family == DecoderFamily.Phi;
        Norm = NormLayer.Load(weights, phi ? "model.final_layernorm" : "model.norm", d.UsesLayerNorm, d.NormEps);
        var head = d.TieWordEmbeddings ? null : weights.GetOptional("lm_head.weight");
        LmHead = new LinearLayer(head ?? EmbedTokensWeight, d.LmHeadBias ? weights.Get("lm_head.bias") : null);
    }

    public ModelConfig Config { get; }
    public DecoderConfig Decoder { get; }
    /// <summary>The folder the model was loaded from.</summary>
    public string Directory { get; }
    public DecoderFamily Family => Decoder.Family;
    /// <summary>Rows of the token embeddings in use (config vocab_size, or a selected plugin's resized vocabulary).</summary>
    public int VocabSize => (AdapterSelection.Current?.TokenEmbeddings ?? EmbedTokensWeight).Size(0);
    public int HiddenSize => Decoder.HiddenSize!.Value;
    public int NumLayers => Layers.Count;
    public DecoderRope Rope { get; }
    /// <summary>model.embed_tokens.weight [V, H] (also lm_head's weight when tie_word_embeddings).</summary>
    public Tensor EmbedTokensWeight { get; }
    public IReadOnlyList<DecoderLayer> Layers { get; }
    /// <summary>model.norm (Phi-2: model.final_layernorm).</summary>
    public NormLayer Norm { get; }
    public LinearLayer LmHead { get; set; }
    /// <summary>Weights of the checkpoint, for wrappers that load more tensors from it (LLaVA projector).</summary>
    protected internal ModelWeights Weights => _weights;

    /// <summary>The checkpoint tensors this model uses, by checkpoint name (views over the file mapping, or copies with
    /// <see cref="WeightPlacement.HugePages"/>; in-place updates never reach the file: the mapping is copy-on-write).
    /// A LLaVA folder's projector tensors are included (they come from the same checkpoint).</summary>
    public IEnumerable<(string Name, Tensor Tensor)> NamedWeights() => _weights.Taken.Where(t => !t.IsDisposed).Select(t => (t.Name!, t));

    /// <summary>Builds layer <paramref name="prefix"/>; <paramref name="mlp"/> replaces the family's FFN when not null
    /// (Med-MoE / MoE-LLaVA sparse layers).</summary>
    protected abstract DecoderLayer CreateLayer(ModelWeights w, DecoderConfig c, string prefix, DecoderMlp? mlp);

    /// <summary>A fresh cache for one request of <paramref name="batch"/> sequences.</summary>
    public KvCache CreateCache(int batch = 1, int initialCapacity = 64) =>
        new(NumLayers, batch, Decoder.NumKeyValueHeads, Decoder.HeadDim, initialCapacity);

    /// <summary>model.embed_tokens(ids): ids [B, T] (or [T], taken as B = 1), int32/int64 → [B, T, H] float32.</summary>
    public Tensor EmbedTokens(Tensor ids)
    {
        if (ids.Rank == 1)
        {
            using var ids2 = ids.Unsqueeze(0);
            return EmbedTokens(ids2);
        }
        if (ids.Rank != 2) throw new ArgumentException($"input_ids {ids.Describe()} must be [B, T] or [T]");
        if (ids.DType is not (DType.I32 or DType.I64)) throw new ArgumentException($"input_ids {ids.Describe()} must be int32 or int64");
        CheckIds(ids);
        return Ops.Embedding(ids, AdapterSelection.Current?.TokenEmbeddings ?? EmbedTokensWeight);
    }

    private void CheckIds(Tensor ids)
    {
        var v = ids.DType == DType.I64 ? ids.ToArray<long>() : ids.ToArray<int>().Select(x => (long)x).ToArray();
        for (int i = 0; i < v.Length; i++)
            if (v[i] < 0 || v[i] >= VocabSize)
                throw new ArgumentOutOfRangeException("input_ids", v[i], $"token id at index {i} is outside the vocabulary [0, {VocabSize}) of {Directory}");
    }

    /// <summary>Logits [B, T, V] (or [B, 1, V] with <see cref="DecoderForwardOptions.LastTokenLogitsOnly"/>) for ids [B, T] or [T].</summary>
    public Tensor Forward(Tensor inputIds, KvCache? cache = null, DecoderForwardOptions? options = null)
    {
        using var scope = AdapterSelection.UseIfSet(options?.Adapters);
        using var e = EmbedTokens(inputIds);
        return ForwardEmbeds(e, cache, options);
    }

    /// <summary>Logits [1, T, V] for one sequence of token ids.</summary>
    public Tensor Forward(ReadOnlySpan<int> inputIds, KvCache? cache = null, DecoderForwardOptions? options = null)
    {
        using var ids = Tensor.FromArray(inputIds, 1, inputIds.Length);
        return Forward(ids, cache, options);
    }

    /// <summary>The decoder over input embeddings [B, T, H] (LLaVA's inputs_embeds path); returns logits.</summary>
    public Tensor ForwardEmbeds(Tensor inputsEmbeds, KvCache? cache = null, DecoderForwardOptions? options = null)
    {
        using var scope = AdapterSelection.UseIfSet(options?.Adapters);
        using var h = ForwardHidden(inputsEmbeds, cache, options);
        var head = AdapterSelection.Current?.LmHead ?? LmHead;
        if (options?.LastTokenLogitsOnly == true)
        {
            using var last = h.Slice(1, h.Size(1) - 1, 1);
            return head.Forward(last);
        }
        return head.Forward(h);
    }

    /// <summary>The decoder and final norm over inputs_embeds [B, T, H]: last_hidden_state [B, T, H].</summary>
    public Tensor ForwardHidden(Tensor inputsEmbeds, KvCache? cache = null, DecoderForwardOptions? options = null)
    {
        options ??= DecoderForwardOptions.Default;
        using var scope = AdapterSelection.UseIfSet(options.Adapters);
        using var routing = MoeRoutingTrace.UseIfSet(options.Routing);
        if (inputsEmbeds.Rank != 3 || inputsEmbeds.Size(2) != HiddenSize)
            throw new ArgumentException($"inputs_embeds {inputsEmbeds.Describe()} must be [B, T, hidden_size={HiddenSize}]");
        int B = inputsEmbeds.Size(0), T = inputsEmbeds.Size(1);
        if (T == 0) throw new ArgumentException("inputs_embeds has no positions (T = 0)");
        if (cache is not null && cache.Batch != B)
            throw new ArgumentException($"KV cache was made for batch {cache.Batch}, inputs have batch {B}");
        int past = cache?.Length ?? 0;
        int[] positions = options.PositionIds ?? Enumerable.Range(past, T).ToArray();
        if (positions.Length != T && positions.Length != B * T)
            throw new ArgumentException($"position_ids has {positions.Length} entries; expected T={T} or B·T={B * T}");
        int maxPos = positions.Max();
        using var mask = options.AttentionMask is null ? null : AdditiveMask(options.AttentionMask, B, T, past + T);
        var step = new DecoderStep
        {
            Batch = B, Length = T, PastLength = past, PositionIds = positions, Rope = Rope.For(maxPos + 1),
            Cache = cache, Mask = mask, CancellationToken = options.CancellationToken,
        };
        var h = inputsEmbeds.Detach();
        if (inputsEmbeds.TracksGrad && GradMode.IsEnabled) { h.Dispose(); h = inputsEmbeds.Contiguous(); }
        try
        {
            options.HiddenStates?.Add(h.Clone());
            for (int i = 0; i < Layers.Count; i++)
            {
                options.CancellationToken.ThrowIfCancellationRequested();
                var next = Layers[i].Forward(h, step, i);
                h.Dispose();
                h = next;
                options.HiddenStates?.Add(h.Detach());
            }
            cache?.Advance(T);
            return Norm.Forward(h);
        }
        finally { h.Dispose(); }
    }

    /// <summary>HF _prepare_4d_causal_attention_mask: padding keys get a large negative additive bias (finfo.min, so a row
    /// that sees only padding stays finite); the causal part is applied by the attention op.</summary>
    private static Tensor AdditiveMask(Tensor attentionMask, int b, int t, int s)
    {
        if (attentionMask.Rank != 2 || attentionMask.Size(0) != b || attentionMask.Size(1) != s)
            throw new ArgumentException($"attention_mask {attentionMask.Describe()} must be [B={b}, past+T={s}]");
        var m = attentionMask.ToFloatArray();
        var add = new float[b * t * s];
        for (int bi = 0; bi < b; bi++)
            for (int j = 0; j < s; j++)
                if (m[bi * s + j] == 0)
                    for (int i = 0; i < t; i++) add[(bi * t + i) * s + j] = float.MinValue;
        return Tensor.FromArray(add, b, 1, t, s);
    }

    public void Dispose()
    {
        _weights.Dispose();
        GC.SuppressFinalize(this);
    }
}
