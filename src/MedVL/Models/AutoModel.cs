using MedVL.Models.Blocks;
using MedVL.Models.Config;

namespace MedVL.Models;

/// <summary>Loads a Hugging Face folder as the model its config.json's model_type names (transformers' Auto classes).</summary>
public static class AutoModelForCausalLM
{
    /// <summary>
    /// A text decoder (phi3, llama, qwen2, stablelm, stablelm_epoch, phi). A LLaVA-style folder loads its language model
    /// only (use <see cref="LlavaForCausalLM.FromPretrained"/> for the image path). Weights are checked against the
    /// config (every problem reported at once) and memory-mapped, never copied (unless <paramref name="placement"/> asks
    /// for a copy in huge-page memory).
    /// </summary>
    public static CausalLM FromPretrained(string dir, WeightPlacement placement = WeightPlacement.Mapped) => Load(dir, null, placement);

    internal static CausalLM Load(string dir, DecoderFamily? expected, WeightPlacement placement = WeightPlacement.Mapped)
    {
        var config = ModelConfigLoader.Load(dir);
        var dec = config.RequireDecoder();
        if (expected is { } f && dec.Family != f)
            throw new ModelConfigException(config.SourcePath, "model_type", $"'{config.ModelType}' is a {dec.Family} model, not {f}");
        var prefixes = config.Kind == ModelKind.Llava ? WeightTable.SkippedLlavaPrefixes : null;
        var weights = ModelWeights.Open(dir, WeightTable.For(config), prefixes, placement);
        return Create(config, weights, dir);
    }

    /// <summary>Builds the family's model over already-opened, already-checked weights (the model owns them; disposed on failure).</summary>
    internal static CausalLM Create(ModelConfig config, ModelWeights weights, string dir)
    {
        try
        {
            return config.RequireDecoder().Family switch
            {
                DecoderFamily.Phi3 => new Phi3ForCausalLM(config, weights, dir),
                DecoderFamily.Llama => new LlamaForCausalLM(config, weights, dir),
                DecoderFamily.Qwen2 => new Qwen2ForCausalLM(config, weights, dir),
                DecoderFamily.StableLm => new StableLmForCausalLM(config, weights, dir),
                DecoderFamily.Phi => new PhiForCausalLM(config, weights, dir),
                var f => throw new ModelConfigException(config.SourcePath, "model_type", $"no decoder implementation for {f}"),
            };
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }
}
