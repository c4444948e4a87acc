using System.Diagnostics;
using System.Runtime.CompilerServices;
using MedVL.Models;
using MedVL.Models.Blocks;
using MedVL.Tensors;
using MedVL.Text;

namespace MedVL.Generation;

/// <summary>Why a generation ended.</summary>
public enum FinishReason { Length, StopToken, StopString }

/// <summary>One streamed step: the token and the new text it completed ("" while a multi-byte character or a possible
/// stop string is held back). The last update has <see cref="Finish"/> set (its token may be −1 when nothing was sampled).</summary>
public sealed record GenerationUpdate(int TokenId, string Text, FinishReason? Finish = null);

/// <summary>A whole generation: text (stop string and stop token excluded), generated ids, timings.</summary>
public sealed record GenerationResult(string Text, int[] TokenIds, FinishReason Finish, int PromptLength, TimeSpan PrefillTime, TimeSpan DecodeTime);

/// <summary>One prompt: token ids (with −200 where images go for a LLaVA model), optional pixel values [images, C, S, S],
/// and the adapters this request runs with (e.g. a HealthGPT task plugin's selection; null = base model).</summary>
public sealed record GenerationRequest(int[] InputIds, SamplingOptions Options, Tensor? PixelValues = null, Models.Blocks.AdapterSelection? Adapters = null);

/// <summary>
/// Autoregressive decoding (HF generate with a DynamicCache): one prefill over the prompt (LLaVA: over the spliced
/// inputs_embeds), then one cached step per token; TokenSampler picks each token (greedy / temperature / top-k / top-p /
/// repetition penalty). Stops on a stop token id (not emitted), a stop string (text cut before it, as LLaVA's
/// KeywordsStoppingCriteria + outputs.strip(stop)), or max_new_tokens. Holds no per-request state: every call makes its
/// own <see cref="KvCache"/> and sampler, so several requests may run on one model concurrently.
/// Repetition penalty history: prompt ids + generated ids for text prompts; for LLaVA prompts only the generated ids,
/// because HF LLaVA generate runs on inputs_embeds and its input_ids start empty.
/// </summary>
public sealed class TextGenerator
{
    public TextGenerator(CausalLM model, Tokenizer tokenizer, LlavaForCausalLM? multimodal = null)
    {
        Model = model;
        Tokenizer = tokenizer;
        Multimodal = multimodal;
        if (multimodal is not null && !ReferenceEquals(multimodal.LanguageModel, model))
            throw new ArgumentException("the multimodal wrapper must wrap the same language model");
    }

    public TextGenerator(LlavaForCausalLM model, Tokenizer tokenizer) : this(model.LanguageModel, tokenizer, model) { }

    public CausalLM Model { get; }
    public Tokenizer Tokenizer { get; }
    public LlavaForCausalLM? Multimodal { get; }

    /// <summary>Streams the answer as it is decoded.</summary>
    public async IAsyncEnumerable<GenerationUpdate> StreamAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        foreach (var u in Run(request, null, cancellationToken))
        {
            yield return u;
            await Task.Yield(); // let the consumer print between tokens
        }
    }

    /// <summary>Runs to the end and returns the whole answer.</summary>
    public GenerationResult Generate(GenerationRequest request, CancellationToken cancellationToken = default)
    {
        var stats = new RunStats();
        var text = new System.Text.StringBuilder();
        var ids = new List<int>();
        FinishReason finish = FinishReason.Length;
        foreach (var u in Run(request, stats, cancellationToken))
        {
            text.Append(u.Text);
            if (u.TokenId >= 0 && u.Finish is not FinishReason.StopToken) ids.Add(u.TokenId);
            if (u.Finish is { } f) finish = f;
        }
        return new GenerationResult(text.ToString(), ids.ToArray(), finish, stats.PromptLength, stats.Prefill, stats.Decode);
    }

    /// <summary>Several prompts, one after another (each with its own cache; no padding, so results equal single runs).</summary>
    public IReadOnlyList<GenerationResult> GenerateBatch(IReadOnlyList<GenerationRequest> requests, CancellationToken cancellationToken = default) =>
        requests.Select(r => Generate(r, cancellationToken)).ToArray();

    private sealed class RunStats
    {
        public int PromptLength;
        public TimeSpan Prefill, Decode;
    }

    private IEnumerable<GenerationUpdate> Run(GenerationRequest request, RunStats? stats, CancellationToken ct)
    {
        var o = request.Options;
        o.Validate();
        if (request.InputIds.Length == 0) throw new ArgumentException("the prompt has no tokens");
        bool multimodal = request.PixelValues is not null || request.InputIds.Contains(LlavaForCausalLM.ImageTokenIndex);
        if (multimodal && Multimodal is null) throw new ArgumentException("the prompt has an image but the model is a text-only decoder");
        var sampler = new TokenSampler(o, request.Adapters?.LmHead?.OutFeatures ?? Model.VocabSize);
        var history = new List<int>();
        if (!multimodal) history.AddRange(request.InputIds);
        var decoder = Tokenizer.CreateStreamingDecoder(skipSpecialTokens: true);
        var stop = new StopStringMatcher(o.StopStrings);
        var stopIds = new HashSet<int>(o.StopTokenIds);
        using var cache = Model.CreateCache(initialCapacity: Math.Max(64, request.InputIds.Length + Math.Min(o.MaxNewTokens, 4096) + 1));
        var opts = new DecoderForwardOptions { LastTokenLogitsOnly = true, CancellationToken = ct, Adapters = request.Adapters };
        var sw = Stopwatch.StartNew();
        float[] logits;
        // NoGrad scopes never span a yield: the consumer's execution context is restored between steps.
        using (GradMode.NoGrad())
        using (var l = multimodal ? Multimodal!.Forward(request.InputIds, request.PixelValues, cache, opts) : Model.Forward(request.InputIds, cache, opts))
            logits = l.ToFloatArray();
        if (stats is not null) { stats.PromptLength = cache.Length; stats.Prefill = sw.Elapsed; }
        sw.Restart();
        if (o.MaxNewTokens == 0)
        {
            yield return new GenerationUpdate(-1, "", FinishReason.Length);
            yield break;
        }
        for (int step = 0; ; step++)
        {
            ct.ThrowIfCancellationRequested();
            int token = sampler.Next(logits, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(history));
            history.Add(token);
            if (stopIds.Contains(token))
            {
                if (stats is not null) stats.Decode = sw.Elapsed;
                yield return new GenerationUpdate(token, stop.Flush(decoder.Flush()), FinishReason.StopToken);
                yield break;
            }
            string piece = decoder.Step(token) ?? "";
            var (emit, hit) = stop.Push(piece);
            if (hit)
            {
                if (stats is not null) stats.Decode = sw.Elapsed;
                yield return new GenerationUpdate(token, emit, FinishReason.StopString);
                yield break;
            }
            if (step + 1 >= o.MaxNewTokens)
            {
                if (stats is not null) stats.Decode = sw.Elapsed;
                yield return new GenerationUpdate(token, emit + stop.Flush(decoder.Flush()), FinishReason.Length);
                yield break;
            }
            yield return new GenerationUpdate(token, emit);
            using (GradMode.NoGrad())
            using (var l = Model.Forward([token], cache, opts)) logits = l.ToFloatArray();
        }
    }
}

/// <summary>
/// Finds stop strings in streamed text: text that could still be the start of a stop string is held back, and once a
/// stop string appears everything from it on is dropped.
/// </summary>
public sealed class StopStringMatcher(IReadOnlyList<string> stopStrings)
{
    private readonly string[] _stops = stopStrings.Where(s => s.Length > 0).ToArray();
    private string _pending = "";

    /// <summary>Adds streamed text; returns the text safe to emit and whether a stop string was found.</summary>
    public (string Emit, bool Stopped) Push(string text)
    {
        if (_stops.Length == 0) return (text, false);
        _pending += text;
        int first = -1;
        foreach (var s in _stops)
        {
            int i = _pending.IndexOf(s, StringComparison.Ordinal);
            if (i >= 0 && (first < 0 || i < first)) first = i;
        }
        if (first >= 0)
        {
            string e = _pending[..first];
            _pending = "";
            return (e, true);
        }
        int hold = 0;
        foreach (var s in _stops)
            for (int k = Math.Min(s.Length - 1, _pending.Length); k > hold; k--)
                if (_pending.AsSpan(_pending.Length - k).SequenceEqual(s.AsSpan(0, k))) { hold = k; break; }
        string emit = _pending[..^hold];
        _pending = _pending[^hold..];
        return (emit, false);
    }

    /// <summary>End of stream: whatever was held back (plus <paramref name="tail"/>), with a final stop-string check.</summary>
    public string Flush(string tail = "")
    {
        var (e, stopped) = Push(tail);
        if (stopped) return e;
        string rest = e + _pending;
        _pending = "";
        return rest;
    }
}
