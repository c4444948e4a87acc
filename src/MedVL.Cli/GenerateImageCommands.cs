using System.CommandLine;
using MedVL.Generation;
using MedVL.Text;
using MedVL.Text.Templates;
using MedVL.Training;
using MedVL.Vision.Codecs;
using MedVL.Vision.ImageTokenizers;

namespace MedVL.Cli;

/// <summary>
/// `medvl generate-image`: HealthGPT's gen_infer.py — an instruction about an input image (CT→MRI, super-resolution,
/// reconstruction) answered with VQ tokens through the generation plugin, decoded to a PNG.
/// </summary>
internal static class GenerateImageCommands
{
    public static Command Build()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "LLaVA-style HealthGPT model folder with tokenizer.json", Required = true };
        var image = new Option<FileInfo>("--image") { Description = "input image: PNG, JPEG, DICOM or NIfTI", Required = true };
        var question = new Option<string>("--question") { Description = "the instruction", DefaultValueFactory = _ => GenerationData.ReconstructionPrompt };
        var vq = new Option<DirectoryInfo>("--image-tokenizer") { Description = "image tokenizer folder (a trained pipeline's model/image_tokenizer)", Required = true };
        var output = new Option<FileInfo>("--out") { Description = "output PNG", Required = true };
        var template = new Option<string?>("--template") { Description = "conversation template (default by language model)" };
        var free = new Option<bool>("--unconstrained") { Description = "decode freely as gen_infer.py does, instead of allowing only <idx_i> tokens" };
        var cmd = new Command("generate-image", "Generate an image from an image and an instruction with a HealthGPT generation plugin (writes a PNG)")
            { model, image, question, vq, output, template, free };
        var adapters = new AdapterOptions();
        adapters.AddTo(cmd);
        cmd.SetAction((r, ct) =>
        {
            string dir = r.GetValue(model)!.FullName;
            if (r.GetValue(adapters.Task) != "generation" || !r.GetValue(adapters.ExtendVocab))
                throw new ArgumentException("generate-image needs the generation plugin: --adapter hlora_generation.safetensors --task generation --extend-vocab --vq-tokens N --fusion-layer FILE");
            var imageTokenizer = PatchVqTokenizer.Load(r.GetValue(vq)!.FullName);
            int vqTokens = r.GetValue(adapters.VqTokens);
            if (vqTokens != imageTokenizer.CodebookSize)
                throw new ArgumentException($"--vq-tokens {vqTokens}, but the image tokenizer has {imageTokenizer.CodebookSize} codes");
            var tok = GenerationData.WithVqTokens(Tokenizer.FromDirectory(dir), vqTokens);
            using var m = LoadedModel.Open(dir, null, needVision: true);
            var llava = m.Llava ?? throw new ArgumentException($"{dir}: not a LLaVA-style vision-language model");
            var tpl = ConversationTemplates.Get(r.GetValue(template) ?? AskCommands.DefaultTemplate(llava.LanguageModel));
            var (selection, owner) = adapters.Attach(r, llava.LanguageModel, dir);
            using var _owner = owner;
            using var px = m.Pixels(r.GetValue(image)!.FullName);
            var result = new ImageGenerator(llava, tok, tpl, imageTokenizer)
                .Generate(r.GetValue(question)!, px, selection!, constrained: !r.GetValue(free), ct);
            string outPath = r.GetValue(output)!.FullName;
            PngEncoder.Save(outPath, result.Image.Pixels, result.Image.Width, result.Image.Height, 3);
            Console.WriteLine($"wrote {outPath} ({result.Image.Width}×{result.Image.Height}, {result.Indices.Length} image tokens)");
            return Task.FromResult(0);
        });
        return cmd;
    }
}
