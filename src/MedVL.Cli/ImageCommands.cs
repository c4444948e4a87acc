using System.CommandLine;
using MedVL.Formats;
using MedVL.Vision.Codecs;

namespace MedVL.Cli;

/// <summary>`medvl image to-npy`: decode any supported image (PNG, JPEG, DICOM, NIfTI) to a float32 .npy array.</summary>
internal static class ImageCommands
{
    public static Command Build()
    {
        var file = new Argument<FileInfo>("FILE") { Description = "PNG, JPEG, DICOM or NIfTI (.nii/.nii.gz) file" };
        var output = new Argument<FileInfo>("OUT") { Description = "output .npy (float32; [H, W] or [H, W, C])" };
        var raw = new Option<bool>("--raw") { Description = "stored values (default: after DICOM/NIfTI rescale slope and intercept)" };
        var slice = new Option<int?>("--slice") { Description = "NIfTI: slice index along --axis (default: the middle slice)" };
        var axis = new Option<int>("--axis") { Description = "NIfTI: axis perpendicular to the slice (0 = i, 1 = j, 2 = k)", DefaultValueFactory = _ => 2 };
        var volume = new Option<int>("--volume") { Description = "NIfTI 4-D: volume index" };
        var frame = new Option<int>("--frame") { Description = "DICOM multi-frame: frame index" };
        var toNpy = new Command("to-npy", "Write the decoded pixels as float32 .npy") { file, output, raw, slice, axis, volume, frame };
        toNpy.SetAction(r =>
        {
            var opts = new ImageLoadOptions { SliceIndex = r.GetValue(slice), SliceAxis = r.GetValue(axis), Volume = r.GetValue(volume), Frame = r.GetValue(frame) };
            var img = ImageLoader.Load(r.GetValue(file)!.FullName, opts);
            var values = r.GetValue(raw) ? img.StoredValues : img.RescaledValues;
            var f = new float[values.Length];
            for (int i = 0; i < f.Length; i++) f[i] = (float)values[i];
            int[] shape = img.Channels == 1 ? [img.Height, img.Width] : [img.Height, img.Width, img.Channels];
            var outPath = r.GetValue(output)!.FullName;
            MedVL.IO.AtomicFile.Write(outPath, s => Npy.WriteRaw(s, MedVL.Tensors.DType.F32, System.Runtime.InteropServices.MemoryMarshal.AsBytes(f.AsSpan()), shape));
            Console.WriteLine($"{img.Format} {img.Width}x{img.Height}x{img.Channels} ({img.BitDepth}-bit) -> {outPath}");
            return 0;
        });
        return new Command("image", "Medical image I/O") { toNpy };
    }
}
