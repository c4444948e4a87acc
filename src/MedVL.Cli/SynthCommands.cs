using System.CommandLine;
using MedVL.Data.MedSynth;
using MedVL.Vision.Codecs;
using Spectre.Console;

namespace MedVL.Cli;

/// <summary>`medvl synth`: write a MedSynth data set (images + VQA / LLaVA / generation JSON).</summary>
internal static class SynthCommands
{
    public static Command Build()
    {
        var outDir = new Option<DirectoryInfo>("--out") { Description = "output directory (must not exist or be empty)", Required = true };
        var count = new Option<int>("--count") { Description = "number of subjects", DefaultValueFactory = _ => 200 };
        var size = new Option<int>("--size") { Description = "image size in pixels", DefaultValueFactory = _ => 64 };
        var seed = new Option<ulong>("--seed") { Description = "random seed (the same seed gives the same data set)", DefaultValueFactory = _ => 1UL };
        var test = new Option<double>("--test-fraction") { Description = "share of subjects in the test split", DefaultValueFactory = _ => 0.2 };
        var lesion = new Option<double>("--lesion-probability") { Description = "chance that a subject has at least one lesion", DefaultValueFactory = _ => 0.5 };
        var mods = new Option<string>("--modalities") { Description = "comma-separated: ct, mri-t1, mri-t2, xray, pathology", DefaultValueFactory = _ => "ct,mri-t1,mri-t2,xray,pathology" };
        var noPairs = new Option<bool>("--no-pairs") { Description = "skip CT/MRI conversion pairs" };
        var sr = new Option<int>("--sr-factor") { Description = "super-resolution factor for low-resolution copies (0: none)", DefaultValueFactory = _ => 4 };
        var cmd = new Command("synth", "Generate a MedSynth data set: medical-like images with exact ground truth, in the real data sets' formats")
            { outDir, count, size, seed, test, lesion, mods, noPairs, sr };
        cmd.SetAction((r, ct) =>
        {
            var o = new MedSynthOptions
            {
                Seed = r.GetValue(seed), Count = r.GetValue(count), ImageSize = r.GetValue(size), TestFraction = r.GetValue(test),
                LesionProbability = r.GetValue(lesion), Modalities = ParseModalities(r.GetValue(mods)!), ConversionPairs = !r.GetValue(noPairs),
                SuperResolutionFactor = r.GetValue(sr),
            };
            MedSynthManifest? manifest = null;
            AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask("MedSynth", maxValue: o.Count);
                    manifest = MedSynthDataset.Write(r.GetValue(outDir)!.FullName, o, SavePng, new Progress<long>(v => task.Value = v), ct);
                });
            foreach (var (k, v) in manifest!.Counts.OrderBy(kv => kv.Key)) Console.WriteLine($"{k}: {v}");
            return Task.FromResult(0);
        });
        return cmd;
    }

    public static void SavePng(string path, SynthImage img) => PngEncoder.Save(path, img.ToBytes(), img.Width, img.Height, img.Channels);

    public static IReadOnlyList<Modality> ParseModalities(string s) =>
        s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(m => m.ToLowerInvariant() switch
        {
            "ct" => Modality.CT,
            "mri-t1" or "t1" => Modality.MriT1,
            "mri-t2" or "t2" => Modality.MriT2,
            "mri" => Modality.MriT1,
            "xray" or "x-ray" => Modality.XRay,
            "pathology" => Modality.Pathology,
            _ => throw new ArgumentException($"--modalities: unknown modality '{m}'; expected ct, mri-t1, mri-t2, xray or pathology"),
        }).Distinct().ToArray();
}
