using System.CommandLine;
using MedVL.Models;
using MedVL.Models.Blocks;
using MedVL.Text;
using MedVL.Text.Templates;
using MedVL.Training;
using MedVL.Vision.Preprocessing;

namespace MedVL.Cli;

/// <summary>`medvl predict`: greedy answers for a VQA file, in test-file order, as Med-MoE's answer JSONL.</summary>
internal static class PredictCommands
{
    public static Command Build()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "LLaVA-style model folder", Required = true };
        var data = new Option<FileInfo>("--data") { Description = "VQA file (LLaVA conversations with image, e.g. vqa_test.json)", Required = true };
        var output = new Option<FileInfo>("--output") { Description = "answers, JSON lines (question_id, prompt, text, answer_id, model_id, metadata)", Required = true };
        var template = new Option<string?>("--template") { Description = "conversation template (default by language model)" };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "tokens per answer at most", DefaultValueFactory = _ => 16 };
        var cmd = new Command("predict", "Answer every question of a VQA file greedily (Med-MoE's answer format)") { model, data, output, template, maxNew };
        var adapters = new AdapterOptions();
        adapters.AddTo(cmd);
        cmd.SetAction((r, ct) =>
        {
            string dir = r.GetValue(model)!.FullName;
            using var m = LoadedModel.Open(dir, needVision: true);
            var llava = m.Llava ?? throw new ArgumentException($"{dir}: not a LLaVA-style model");
            var tok = Tokenizer.FromDirectory(dir);
            var tpl = ConversationTemplates.Get(r.GetValue(template) ?? AskCommands.DefaultTemplate(llava.LanguageModel));
            var (selection, owner) = adapters.Attach(r, llava.LanguageModel, dir);
            using var _owner = owner;
            var pixels = new PixelCache(PreprocessCommands.ForModel(dir, null));
            var questions = Predictor.ReadQuestions(r.GetValue(data)!.FullName);
            string outPath = r.GetValue(output)!.FullName;
            Predictor.Run(llava, tok, tpl, pixels, questions, outPath, Path.GetFileName(dir), selection, r.GetValue(maxNew), ct: ct);
            Console.WriteLine($"{questions.Count} answers -> {outPath}");
            return Task.FromResult(0);
        });
        return cmd;
    }
}
