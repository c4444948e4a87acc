using System.CommandLine;
using MedVL.Generation;
using MedVL.Models;
using MedVL.Models.Config;
using MedVL.Text;
using MedVL.Text.Templates;

namespace MedVL.Cli;

/// <summary>`medvl ask`: one question about one image with a LLaVA-style model, streaming the answer.</summary>
internal static class AskCommands
{
    public static Command Build()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "LLaVA-style model folder (HealthGPT, Med-MoE) with tokenizer.json", Required = true };
        var image = new Option<FileInfo>("--image") { Description = "PNG, JPEG, DICOM or NIfTI image", Required = true };
        var question = new Option<string>("--question") { Description = "the question", Required = true };
        var template = new Option<string?>("--template") { Description = "conversation template (default by language model: phi3_instruct, phi4_instruct, qwen_2, stablelm, phi)" };
        var tower = new Option<DirectoryInfo?>("--vision-tower") { Description = "CLIP folder (default: mm_vision_tower relative to the model)" };
        var sampling = new SamplingArgs();
        var cmd = new Command("ask", "Answer a question about an image (streamed to stdout)") { model, image, question, template, tower };
        sampling.AddTo(cmd);
        var adapters = new AdapterOptions();
        adapters.AddTo(cmd);
        var noMmap = LoadedModel.NoMmapOption();
        cmd.Options.Add(noMmap);
        cmd.SetAction(async (r, ct) =>
        {
            string dir = r.GetValue(model)!.FullName;
            var tok = Tokenizer.FromDirectory(dir);
            using var m = LoadedModel.Open(dir, r.GetValue(tower)?.FullName, needVision: true, noMmap: r.GetValue(noMmap));
            var llava = m.Llava ?? throw new ArgumentException($"{dir}: model_type '{m.LanguageModel?.Config.ModelType}' is not a LLaVA-style vision-language model");
            var tpl = ConversationTemplates.Get(r.GetValue(template) ?? DefaultTemplate(llava.LanguageModel));
            var prompt = tpl.RenderQuestion(r.GetValue(question)!, hasImage: true);
            var ids = tok.TokenizeWithImage(prompt);
            var opts = sampling.Build(r, GenerationConfig.Load(dir), tpl.StopTokenIds(tok), tpl.StopStrings);
            var (selection, owner) = adapters.Attach(r, llava.LanguageModel, dir);
            using var _owner = owner;
            using var px = m.Pixels(r.GetValue(image)!.FullName);
            return await SamplingArgs.StreamAsync(new TextGenerator(llava, tok), new GenerationRequest(ids, opts, px, selection), ct);
        });
        return cmd;
    }

    /// <summary>HealthGPT: phi3_instruct (Phi-3), phi4_instruct (phi-4: 100k+ vocabulary), qwen_2; Med-MoE: stablelm, phi.</summary>
    internal static string DefaultTemplate(CausalLM lm) => lm.Family switch
    {
        DecoderFamily.Phi3 => lm.VocabSize > 100_000 ? "phi4_instruct" : "phi3_instruct",
        DecoderFamily.Qwen2 => "qwen_2",
        DecoderFamily.StableLm => "stablelm",
        DecoderFamily.Phi => "phi",
        _ => "plain",
    };
}
