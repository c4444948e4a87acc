using System.CommandLine;
using MedVL.Formats;
using MedVL.Tensors;

namespace MedVL.Cli;

/// <summary>`medvl vision`: one hidden state of the CLIP vision tower as float32 [tokens, width].</summary>
internal static class VisionCommands
{
    public static Command Build()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "CLIP folder, or a LLaVA-style folder (its vision tower is used)", Required = true };
        var image = new Option<FileInfo?>("--image") { Description = "image file (preprocessed as the model's CLIPImageProcessor)" };
        var pixels = new Option<FileInfo?>("--pixels") { Description = "already-normalised pixel values .npy [3, S, S] or [1, 3, S, S]" };
        var tower = new Option<DirectoryInfo?>("--vision-tower") { Description = "CLIP folder for a LLaVA-style model (default: its mm_vision_tower)" };
        var layer = new Option<int>("--layer") { Description = "hidden_states index (HF: 0 = embeddings, -1 = last, -2 = penultimate)", DefaultValueFactory = _ => -1 };
        var noCls = new Option<bool>("--no-cls") { Description = "drop the CLS token (LLaVA's 'patch' feature)" };
        var output = new Option<FileInfo>("--output") { Description = "output .npy, float32 [tokens, width]", Required = true };
        var cmd = new Command("vision", "Write a CLIP vision-tower hidden state as float32 [tokens, width] (.npy)") { model, image, pixels, tower, layer, noCls, output };
        cmd.SetAction((r, ct) =>
        {
            var img = r.GetValue(image)?.FullName;
            var pxPath = r.GetValue(pixels)?.FullName;
            if ((img is null) == (pxPath is null)) throw new ArgumentException("give exactly one of --image and --pixels");
            using var m = LoadedModel.Open(r.GetValue(model)!.FullName, r.GetValue(tower)?.FullName, needVision: true);
            var clip = m.Clip ?? throw new ArgumentException($"{m.Dir} has no vision tower");
            using var px = img is not null ? m.Pixels(img) : LoadedModel.PixelsFromNpy(pxPath!);
            if (px.Size(0) != 1) throw new ArgumentException($"pixel values {px.Describe()}: one image at a time");
            Tensor features;
            using (GradMode.NoGrad()) features = clip.SelectFeatures(px, r.GetValue(layer), includeCls: !r.GetValue(noCls), ct);
            using (features)
            {
                int n = features.Size(1), d = features.Size(2);
                var data = features.ToFloatArray();
                var path = r.GetValue(output)!.FullName;
                MedVL.IO.AtomicFile.Write(path, s => Npy.WriteRaw(s, DType.F32, System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()), [n, d]));
                Console.WriteLine($"[{n}, {d}] -> {path}");
            }
            return Task.FromResult(0);
        });
        return cmd;
    }
}
