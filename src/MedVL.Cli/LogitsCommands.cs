using System.CommandLine;
using MedVL.Formats;
using MedVL.Models;
using MedVL.Models.Config;
using MedVL.Tensors;
using MedVL.Vision.Preprocessing;

namespace MedVL.Cli;

/// <summary>`medvl logits`: the model's float32 logits [T, vocab] for given token ids (T counts spliced image rows).</summary>
internal static class LogitsCommands
{
    public static Command Build()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "Hugging Face model folder (decoder or LLaVA-style)", Required = true };
        var ids = new Option<string>("--input-ids") { Description = "comma-separated token ids; -200 marks where the image goes", Required = true };
        var image = new Option<FileInfo?>("--image") { Description = "image for the -200 position (LLaVA-style models)" };
        var tower = new Option<DirectoryInfo?>("--vision-tower") { Description = "CLIP folder (default: mm_vision_tower relative to the model)" };
        var output = new Option<FileInfo>("--output") { Description = "output .npy, float32 [T, vocab]", Required = true };
        var cmd = new Command("logits", "Write the logits of every position as float32 [T, vocab] (.npy)") { model, ids, image, tower, output };
        var adapters = new AdapterOptions();
        adapters.AddTo(cmd);
        cmd.SetAction((r, ct) =>
        {
            var inputIds = ParseIds(r.GetValue(ids)!);
            var imagePath = r.GetValue(image)?.FullName;
            using var m = LoadedModel.Open(r.GetValue(model)!.FullName, r.GetValue(tower)?.FullName, needVision: imagePath is not null);
            if (m.LanguageModel is null) throw new ArgumentException($"{m.Dir} is a vision tower; use `medvl vision`");
            bool hasImageToken = inputIds.Contains(LlavaForCausalLM.ImageTokenIndex);
            if (imagePath is not null && !hasImageToken) throw new ArgumentException("--image given but --input-ids has no -200 image position");
            if (hasImageToken && imagePath is null) throw new ArgumentException("--input-ids has a -200 image position but no --image was given");
            var (selection, owner) = adapters.Attach(r, m.LanguageModel, m.Dir);
            using var _owner = owner;
            Tensor logits;
            using (GradMode.NoGrad())
            {
                var opts = new DecoderForwardOptions { CancellationToken = ct, Adapters = selection };
                if (imagePath is not null)
                {
                    if (m.Llava is null) throw new ArgumentException($"{m.Dir} is a text-only model; --image needs a LLaVA-style model");
                    using var px = m.Pixels(imagePath);
                    logits = m.Llava.Forward(inputIds, px, options: opts);
                }
                else logits = m.LanguageModel.Forward(inputIds, options: opts);
            }
            using (logits)
            {
                var path = r.GetValue(output)!.FullName;
                int t = logits.Size(1), v = logits.Size(2);
                var data = logits.ToFloatArray();
                MedVL.IO.AtomicFile.Write(path, s => Npy.WriteRaw(s, DType.F32, System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()), [t, v]));
                Console.WriteLine($"[{t}, {v}] -> {path}");
            }
            return Task.FromResult(0);
        });
        return cmd;
    }

    internal static int[] ParseIds(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new ArgumentException("--input-ids is empty; expected comma-separated integers such as 1,2,3");
        var ids = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out ids[i]))
                throw new ArgumentException($"--input-ids: '{parts[i]}' (item {i}) is not an integer");
        return ids;
    }
}


/// <summary>Shared by logits / vision / generate / ask: opens a model folder as what its config says it is.</summary>
internal sealed class LoadedModel : IDisposable
{
    public CausalLM? LanguageModel { get; private init; }
    public LlavaForCausalLM? Llava { get; private init; }
    public ClipVisionModel? Clip { get; private init; }
    public string Dir { get; private init; } = "";

    /// <summary>`--no-mmap`: copy the weights into huge-page memory (faster decode, see docs/benchmarks.md).</summary>
    public static Option<bool> NoMmapOption() => new("--no-mmap") { Description = "copy the weights into huge-page memory instead of mapping the file (faster decode)" };

    public static LoadedModel Open(string dir, string? visionTower = null, bool needVision = false, bool noMmap = false)
    {
        var cfg = ModelConfigLoader.Load(dir);
        var placement = noMmap ? MedVL.Models.Blocks.WeightPlacement.HugePages : MedVL.Models.Blocks.WeightPlacement.Mapped;
        return cfg.Kind switch
        {
            ModelKind.ClipVision => new LoadedModel { Clip = ClipVisionModel.FromPretrained(dir, placement), Dir = dir },
            ModelKind.Llava => OpenLlava(dir, visionTower, needVision, placement),
            _ => new LoadedModel { LanguageModel = AutoModelForCausalLM.FromPretrained(dir, placement), Dir = dir },
        };
    }

    private static LoadedModel OpenLlava(string dir, string? tower, bool needVision, MedVL.Models.Blocks.WeightPlacement placement)
    {
        var m = LlavaForCausalLM.FromPretrained(dir, tower, requireVisionTower: needVision, placement: placement);
        return new LoadedModel { Llava = m, LanguageModel = m.LanguageModel, Clip = m.VisionTower, Dir = dir };
    }

    /// <summary>pixel_values [1, 3, S, S] for an image file, with the model's CLIPImageProcessor (pad per image_aspect_ratio).</summary>
    public Tensor Pixels(string imagePath)
    {
        var processor = PreprocessCommands.ForModel(Dir, null);
        var img = Vision.Codecs.ImageLoader.Load(imagePath);
        var px = processor.Preprocess(img);
        return Tensor.FromArray(px, 1, 3, processor.CropHeight, processor.CropWidth);
    }

    /// <summary>pixel_values from a .npy of [3, S, S] or [B, 3, S, S] floats.</summary>
    public static Tensor PixelsFromNpy(string path)
    {
        var a = Npy.Read(path);
        var shape = a.Shape.Length == 3 ? [1, .. a.Shape] : a.Shape;
        if (shape.Length != 4) throw new InvalidDataException($"{path}: pixel values must be [3, H, W] or [B, 3, H, W], got [{string.Join(", ", a.Shape)}]");
        return Tensor.FromArray(a.ToFloat32(), shape);
    }

    public void Dispose()
    {
        if (Llava is not null) Llava.Dispose();
        else { LanguageModel?.Dispose(); Clip?.Dispose(); }
    }
}
