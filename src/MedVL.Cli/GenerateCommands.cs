using System.CommandLine;
using MedVL.Generation;
using MedVL.Models;
using MedVL.Models.Config;
using MedVL.Text;
using MedVL.Text.Templates;

namespace MedVL.Cli;

/// <summary>Sampling flags shared by `generate` and `ask`; unset flags take the model's generation_config.json values.</summary>
internal sealed class SamplingArgs
{
    public readonly Option<int> MaxNewTokens = new("--max-new-tokens") { Description = "tokens to generate at most", DefaultValueFactory = _ => 256 };
    public readonly Option<bool?> DoSample = new("--do-sample") { Description = "sample instead of greedy (default: generation_config.json's do_sample)" };
    public readonly Option<float?> Temperature = new("--temperature") { Description = "softmax temperature (0 = greedy)" };
    public readonly Option<int?> TopK = new("--top-k") { Description = "keep the k most likely tokens (0 = off)" };
    public readonly Option<float?> TopP = new("--top-p") { Description = "nucleus sampling mass (1 = off)" };
    public readonly Option<float?> RepetitionPenalty = new("--repetition-penalty") { Description = "HF repetition penalty (1 = off)" };
    public readonly Option<ulong> Seed = new("--seed") { Description = "random seed for sampling", DefaultValueFactory = _ => 0UL };
    public readonly Option<string[]> Stop = new("--stop") { Description = "stop string (repeatable)", AllowMultipleArgumentsPerToken = false };

    public void AddTo(Command c)
    {
        foreach (var o in new Option[] { MaxNewTokens, DoSample, Temperature, TopK, TopP, RepetitionPenalty, Seed, Stop }) c.Options.Add(o);
    }

    public SamplingOptions Build(ParseResult r, GenerationConfig g, IEnumerable<int> extraStopIds, IEnumerable<string> extraStops)
    {
        var t = r.GetValue(Temperature);
        bool sample = r.GetValue(DoSample) ?? g.DoSample;
        if (t is 0) sample = false;
        return new SamplingOptions
        {
            DoSample = sample,
            Temperature = t ?? g.Temperature,
            TopK = r.GetValue(TopK) ?? g.TopK,
            TopP = r.GetValue(TopP) ?? g.TopP,
            RepetitionPenalty = r.GetValue(RepetitionPenalty) ?? g.RepetitionPenalty,
            Seed = r.GetValue(Seed),
            MaxNewTokens = r.GetValue(MaxNewTokens),
            StopTokenIds = g.EosTokenIds.Concat(extraStopIds).Distinct().ToArray(),
            StopStrings = (r.GetValue(Stop) ?? []).Concat(extraStops).Distinct().ToArray(),
        };
    }

    /// <summary>Streams the answer to stdout; prints timings to stderr.</summary>
    public static async Task<int> StreamAsync(TextGenerator gen, GenerationRequest req, CancellationToken ct)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        int n = 0;
        FinishReason? finish = null;
        await foreach (var u in gen.StreamAsync(req, ct))
        {
            Console.Out.Write(u.Text);
            Console.Out.Flush();
            if (u.TokenId >= 0) n++;
            finish = u.Finish;
        }
        Console.Out.WriteLine();
        Console.Error.WriteLine($"[{n} tokens, {sw.Elapsed.TotalSeconds:F2} s, stop: {finish}]");
        return 0;
    }
}

/// <summary>`medvl generate`: continue a text prompt, streaming the answer.</summary>
internal static class GenerateCommands
{
    public static Command Build()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "Hugging Face model folder with tokenizer.json", Required = true };
        var prompt = new Option<string>("--prompt") { Description = "prompt text", Required = true };
        var template = new Option<string?>("--template") { Description = "wrap the prompt as one user turn of this conversation template (phi3_instruct, phi4_instruct, qwen_2, phi, stablelm, plain)" };
        var sampling = new SamplingArgs();
        var cmd = new Command("generate", "Generate text from a prompt (streamed to stdout)") { model, prompt, template };
        sampling.AddTo(cmd);
        var adapters = new AdapterOptions();
        adapters.AddTo(cmd);
        var noMmap = LoadedModel.NoMmapOption();
        cmd.Options.Add(noMmap);
        cmd.SetAction(async (r, ct) =>
        {
            string dir = r.GetValue(model)!.FullName;
            var tok = Tokenizer.FromDirectory(dir);
            using var lm = AutoModelForCausalLM.FromPretrained(dir, r.GetValue(noMmap) ? MedVL.Models.Blocks.WeightPlacement.HugePages : MedVL.Models.Blocks.WeightPlacement.Mapped);
            string text = r.GetValue(prompt)!;
            var tpl = r.GetValue(template) is { } name ? ConversationTemplates.Get(name) : null;
            if (tpl is not null) text = tpl.RenderQuestion(text, hasImage: false);
            var opts = sampling.Build(r, GenerationConfig.Load(dir), tpl?.StopTokenIds(tok) ?? [], tpl?.StopStrings ?? []);
            var ids = tok.Encode(text);
            var (selection, owner) = adapters.Attach(r, lm, dir);
            using var _owner = owner;
            return await SamplingArgs.StreamAsync(new TextGenerator(lm, tok), new GenerationRequest(ids, opts, Adapters: selection), ct);
        });
        return cmd;
    }
}
