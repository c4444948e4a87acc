using System.CommandLine;
using System.Text;
using System.Text.Json;
using MedVL.Models;
using MedVL.Tensors;
using MedVL.Models.Blocks;
using MedVL.Text;
using MedVL.Text.Templates;

namespace MedVL.Cli;

/// <summary>`medvl route`: the per-token expert routing of a Med-MoE / MoE-LLaVA model on one image and question.</summary>
internal static class RouteCommands
{
    public static Command Build()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "Med-MoE / MoE-LLaVA model folder (config.json with a moe block)", Required = true };
        var image = new Option<FileInfo>("--image") { Description = "PNG, JPEG, DICOM or NIfTI image", Required = true };
        var question = new Option<string>("--question") { Description = "the question", Required = true };
        var template = new Option<string?>("--template") { Description = "conversation template (default by language model)" };
        var tower = new Option<DirectoryInfo?>("--vision-tower") { Description = "CLIP folder (default: mm_vision_tower / mm_image_tower relative to the model)" };
        var output = new Option<FileInfo>("--output") { Description = "JSON lines: {layer, position, kind, choice, expert, probability}", Required = true };
        var cmd = new Command("route", "Write the MoE routing trace (layer, token, expert, probability) of one prompt") { model, image, question, template, tower, output };
        cmd.SetAction((r, ct) =>
        {
            string dir = r.GetValue(model)!.FullName;
            var tok = Tokenizer.FromDirectory(dir);
            using var m = LoadedModel.Open(dir, r.GetValue(tower)?.FullName, needVision: true);
            var llava = m.Llava ?? throw new ArgumentException($"{dir}: not a LLaVA-style model");
            if (!llava.LanguageModel.Layers.Any(l => l.Mlp is MoeMlp))
                throw new ArgumentException($"{dir}: the model has no MoE layer (config.json has no enabled moe block)");
            var tpl = ConversationTemplates.Get(r.GetValue(template) ?? AskCommands.DefaultTemplate(llava.LanguageModel));
            var ids = tok.TokenizeWithImage(tpl.RenderQuestion(r.GetValue(question)!, hasImage: true));
            using var px = m.Pixels(r.GetValue(image)!.FullName);
            using var trace = new MoeRoutingTrace();
            using (GradMode.NoGrad())
            using (llava.Forward(ids, px, options: new DecoderForwardOptions { Routing = trace, CancellationToken = ct })) { }
            // Positions of the spliced sequence: text tokens, and the image's patch rows where the -200 was.
            int imageAt = Array.IndexOf(ids, LlavaForCausalLM.ImageTokenIndex);
            int tokens = trace.Layers[0].Tokens, imageRows = tokens - (ids.Length - 1);
            string path = r.GetValue(output)!.FullName;
            var sb = new StringBuilder();
            foreach (var layer in trace.Layers.OrderBy(l => l.Layer))
                for (int t = 0; t < layer.Tokens; t++)
                {
                    string kind = imageAt >= 0 && t >= imageAt && t < imageAt + imageRows ? "image" : "text";
                    for (int c = 0; c < layer.TopK; c++)
                        sb.AppendLine(JsonSerializer.Serialize(new
                        {
                            layer = layer.Layer, position = t, kind, choice = c, expert = layer.Route(t, c), probability = Math.Round(layer.Weight(t, c), 6),
                        }));
                }
            MedVL.IO.AtomicFile.WriteAllText(path, sb.ToString());
            Console.WriteLine($"{trace.Layers.Count} MoE layers × {tokens} positions ({imageRows} image rows) -> {path}");
            return Task.FromResult(0);
        });
        return cmd;
    }
}
