using System.CommandLine;
using MedVL.Adapters;
using MedVL.Models;
using MedVL.Models.Blocks;

namespace MedVL.Cli;

/// <summary>
/// The adapter options of `logits`, `ask` and `generate`: --adapter FILE_OR_DIR --adapter-kind hlora|lora|moelora|medmoe
/// [--task comprehension|generation] [--hlora-alpha A] [--hlora-paper-scaling] [--extend-vocab [--vq-tokens N]]
/// [--fusion-layer FILE]. The adapter is attached to the loaded model and the command runs with its selection.
/// </summary>
internal sealed class AdapterOptions
{
    public readonly Option<string?> Adapter = new("--adapter") { Description = "adapter file or folder: HealthGPT com/gen_hlora_weights.bin, or a PEFT folder (LoRA / MoELoRA)" };
    public readonly Option<string?> Kind = new("--adapter-kind") { Description = "hlora | lora | moelora | medmoe (default: hlora for .bin files, else lora)" };
    public readonly Option<string> Task = new("--task") { Description = "HealthGPT task of an H-LoRA plugin: comprehension (ViT layer −2) or generation (layer 1)", DefaultValueFactory = _ => "comprehension" };
    public readonly Option<double?> HLoraAlpha = new("--hlora-alpha") { Description = "H-LoRA lora_alpha (default 2 × the file's total rank, as HealthGPT's scripts)" };
    public readonly Option<bool> PaperScaling = new("--hlora-paper-scaling") { Description = "use the paper's Eq. 10 scaling α·k/(r/k) instead of the released α/r·k" };
    public readonly Option<bool> ExtendVocab = new("--extend-vocab") { Description = "add HealthGPT's VQ tokens (<start_index>, <idx_i>, <end_index>, <pixel_newline>) after the tokenizer's ids" };
    public readonly Option<int> VqTokens = new("--vq-tokens") { Description = "number of <idx_i> tokens with --extend-vocab", DefaultValueFactory = _ => 8192 };
    public readonly Option<FileInfo?> FusionLayer = new("--fusion-layer") { Description = "HealthGPT fusion_layer_weights.bin (the generation plugin's embedding and output head)" };

    public void AddTo(Command c)
    {
        c.Options.Add(Adapter); c.Options.Add(Kind); c.Options.Add(Task); c.Options.Add(HLoraAlpha);
        c.Options.Add(PaperScaling); c.Options.Add(ExtendVocab); c.Options.Add(VqTokens); c.Options.Add(FusionLayer);
        Task.Validators.Add(r => { if (r.GetValueOrDefault<string>() is not ("comprehension" or "generation")) r.AddError("--task must be comprehension or generation"); });
        Kind.Validators.Add(r => { if (r.GetValueOrDefault<string?>() is { } k && k is not ("hlora" or "lora" or "moelora" or "medmoe")) r.AddError("--adapter-kind must be hlora, lora, moelora or medmoe"); });
    }

    /// <summary>Attaches the adapter named on the command line to <paramref name="model"/>; null when none was given.
    /// The returned plugin (H-LoRA) owns its projector and vocabulary tensors: dispose it with the model.</summary>
    public (AdapterSelection? Selection, IDisposable? Owner) Attach(ParseResult r, CausalLM model, string modelDir)
    {
        var path = r.GetValue(Adapter);
        if (path is null)
        {
            if (r.GetValue(Kind) is not null || r.GetValue(HLoraAlpha) is not null || r.GetValue(FusionLayer) is not null)
                throw new ArgumentException("--adapter-kind / --hlora-alpha / --fusion-layer need --adapter");
            return (null, null);
        }
        if (!File.Exists(path) && !Directory.Exists(path)) throw new FileNotFoundException($"--adapter {path}: no such file or folder", path);
        string kind = r.GetValue(Kind) ?? (File.Exists(path) ? "hlora" : "lora");
        switch (kind)
        {
            case "medmoe":
                throw new ArgumentException("a Med-MoE checkpoint is a whole model folder (config.json with its moe block): pass it as --model, not --adapter");
            case "lora":
            case "moelora":
                if (!Directory.Exists(path)) throw new ArgumentException($"--adapter {path}: a {kind} adapter is a PEFT folder with adapter_config.json and adapter_model.safetensors");
                var config = PeftAdapters.Load(model, path, kind);
                if (config.Kind.ToString().ToLowerInvariant() != kind)
                    throw new ArgumentException($"--adapter-kind {kind}, but {path}/adapter_config.json says peft_type {config.Kind}");
                return (new AdapterSelection([kind]), null);
            default:
                string task = r.GetValue(Task)!;
                int? tokenizerLength = r.GetValue(ExtendVocab)
                    ? Training.GenerationData.FirstVqTokenId(Training.GenerationData.WithVqTokens(Text.Tokenizer.FromDirectory(modelDir), r.GetValue(VqTokens))) : null;
                var plugin = HealthGptPlugin.Load(model, path, new HealthGptPluginOptions
                {
                    Name = task, Alpha = r.GetValue(HLoraAlpha), PaperScaling = r.GetValue(PaperScaling),
                    VisionSelectLayer = task == "generation" ? 1 : -2, TokenizerLength = tokenizerLength, VqIndexTokens = r.GetValue(VqTokens),
                    FusionLayerPath = r.GetValue(FusionLayer)?.FullName,
                });
                return (plugin.Selection(), plugin);
        }
    }
}
