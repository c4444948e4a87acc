using System.CommandLine;
using System.Text.Json.Nodes;
using MedVL.Formats;
using MedVL.Vision.Codecs;
using MedVL.Vision.Preprocessing;

namespace MedVL.Cli;

/// <summary>`medvl preprocess`: the normalised pixel tensor [3, H, W] the vision tower sees (CLIPImageProcessor).</summary>
internal static class PreprocessCommands
{
    public static Command Build()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "CLIP folder with preprocessor_config.json, or a LLaVA-style folder whose mm_vision_tower points to one", Required = true };
        var image = new Option<FileInfo>("--image") { Description = "PNG, JPEG, DICOM or NIfTI image", Required = true };
        var output = new Option<FileInfo>("--output") { Description = "output .npy, float32 [3, H, W]", Required = true };
        var pad = new Option<bool?>("--pad") { Description = "LLaVA pad-to-square with the mean colour (default: the model's image_aspect_ratio == \"pad\")" };
        var cmd = new Command("preprocess", "Write the normalised pixel tensor [3, H, W] as CLIPImageProcessor produces it") { model, image, output, pad };
        cmd.SetAction(r =>
        {
            var processor = ForModel(r.GetValue(model)!.FullName, r.GetValue(pad));
            var img = ImageLoader.Load(r.GetValue(image)!.FullName);
            var pixels = processor.Preprocess(img);
            var path = r.GetValue(output)!.FullName;
            int[] shape = [3, processor.CropHeight, processor.CropWidth];
            MedVL.IO.AtomicFile.Write(path, s => Npy.WriteRaw(s, MedVL.Tensors.DType.F32, System.Runtime.InteropServices.MemoryMarshal.AsBytes(pixels.AsSpan()), shape));
            Console.WriteLine($"[3, {processor.CropHeight}, {processor.CropWidth}] -> {path}");
            return 0;
        });
        return cmd;
    }

    /// <summary>The processor for a model folder: its own preprocessor_config.json, else its vision tower's.</summary>
    public static ClipImageProcessor ForModel(string dir, bool? padOverride)
    {
        bool pad = false;
        string? towerDir = null;
        var configPath = Path.Combine(dir, "config.json");
        if (File.Exists(configPath))
        {
            var cfg = JsonNode.Parse(File.ReadAllText(configPath)) as JsonObject;
            pad = (cfg?["image_aspect_ratio"] as JsonValue)?.ToString() == "pad";
            var tower = (cfg?["mm_vision_tower"] ?? cfg?["mm_image_tower"]) as JsonValue;
            if (tower is not null)
            {
                var t = tower.ToString();
                towerDir = Path.IsPathRooted(t) ? t : Path.Combine(dir, t);
            }
        }
        var local = Path.Combine(dir, "preprocessor_config.json");
        string? path = File.Exists(local) ? local
            : towerDir is not null && File.Exists(Path.Combine(towerDir, "preprocessor_config.json")) ? Path.Combine(towerDir, "preprocessor_config.json") : null;
        if (path is null)
            throw new FileNotFoundException($"{dir}: no preprocessor_config.json here{(towerDir is null ? "" : $" nor in the vision tower folder {towerDir}")}");
        return ClipPreprocessorConfig.Load(path, padOverride ?? pad);
    }
}
