using MedVL.Models;
using MedVL.Models.Blocks;
using MedVL.Tensors;
using MedVL.Text;
using MedVL.Text.Templates;
using MedVL.Vision.ImageTokenizers;
using MedVL.Vision.Preprocessing;

namespace MedVL.Generation;

/// <summary>A generated image, its VQ indices and the decoding run that produced them.</summary>
public sealed record ImageGenerationResult(int[] Indices, Rgb8Image Image, GenerationResult Run);

/// <summary>
/// HealthGPT's image generation (healthgpt.md §3.3, §5 gen_infer.py): the instruction in the chat template with
/// &lt;start_index&gt; appended after the assistant tag, greedy decoding through the generation plugin, the
/// &lt;idx_i&gt; ids mapped to codebook indices (id − id(&lt;idx_0&gt;)) up to &lt;end_index&gt;, exactly GridSize² of them
/// (taming asserts the count), decoded to pixels by the image tokenizer.
/// </summary>
public sealed class ImageGenerator(LlavaForCausalLM model, Tokenizer tokenizer, ConversationTemplate template, IImageTokenizer imageTokenizer)
{
    /// <summary>
    /// Generates the image. <paramref name="constrained"/> (default) lets only &lt;idx_i&gt; tokens be produced for the
    /// GridSize² positions; false decodes freely as the released script does (≤ GridSize² + GridSize + 12 new tokens,
    /// gen_infer's 1100 for 1024) and fails when the model does not produce exactly GridSize² indices.
    /// </summary>
    public ImageGenerationResult Generate(string instruction, Tensor pixelValues, AdapterSelection adapters, bool constrained = true,
        CancellationToken cancellationToken = default)
    {
        int idx0 = tokenizer.TokenToId("<idx_0>") ?? throw new InvalidOperationException("the tokenizer has no <idx_0>: extend it with HealthGPT's VQ tokens");
        int end = tokenizer.TokenToId("<end_index>") ?? throw new InvalidOperationException("the tokenizer has no <end_index>");
        if (tokenizer.TokenToId($"<idx_{imageTokenizer.CodebookSize - 1}>") != idx0 + imageTokenizer.CodebookSize - 1)
            throw new InvalidOperationException($"the tokenizer's <idx_i> tokens do not cover the image tokenizer's {imageTokenizer.CodebookSize} codes in order");
        int n = imageTokenizer.GridSize * imageTokenizer.GridSize;
        var ids = tokenizer.TokenizeWithImage(template.RenderQuestion(instruction, hasImage: true) + "<start_index>");
        var options = new SamplingOptions
        {
            MaxNewTokens = constrained ? n : n + imageTokenizer.GridSize + 12,
            AllowedTokens = constrained ? (idx0, imageTokenizer.CodebookSize) : null,
            StopTokenIds = [end, .. GenerationConfig.Load(model.LanguageModel.Directory).EosTokenIds],
        };
        var run = new TextGenerator(model, tokenizer).Generate(new GenerationRequest(ids, options, pixelValues, adapters), cancellationToken);
        var indices = run.TokenIds.Where(t => t >= idx0 && t < idx0 + imageTokenizer.CodebookSize).Select(t => t - idx0).ToArray();
        if (indices.Length != n)
            throw new InvalidOperationException($"the model produced {indices.Length} image tokens ({run.Finish}); the image tokenizer needs exactly {n}");
        return new ImageGenerationResult(indices, imageTokenizer.Decode(indices), run);
    }
}
