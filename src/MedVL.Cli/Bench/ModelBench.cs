using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using MedVL.Models;
using MedVL.Models.Blocks;
using MedVL.Models.Config;
using MedVL.Tensors;

namespace MedVL.Cli.Bench;

/// <summary>
/// <c>medvl bench model --model DIR [--prompt N] [--gen M] [--threads T] [--runs R] [--json]</c>, measured as llama-bench
/// does (llama.cpp tools/llama-bench): ppN = one prefill of N random token ids into an empty cache, N / time; tgM = M
/// single-token decode steps from an empty cache, M / time. Random ids, no tokeniser and no sampling in the timed
/// region; untimed warm-up runs per test (at least 3 and 1 s, for tiered JIT); mean ± sample sd of tokens/s over R runs.
/// --threads T re-runs the command in a child process with DOTNET_PROCESSOR_COUNT=T, because the kernels size their
/// thread teams from Environment.ProcessorCount (there is no process-wide mutable thread setting).
/// </summary>
internal static class ModelBench
{
    private const string ThreadsEnv = "DOTNET_PROCESSOR_COUNT";

    public static Command Create()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "Hugging Face model folder (decoder or LLaVA-style: its language model is measured)", Required = true };
        var prompt = new Option<int>("--prompt") { Description = "prompt tokens of the prefill test (0 = skip)", DefaultValueFactory = _ => 128 };
        var gen = new Option<int>("--gen") { Description = "generated tokens of the decode test (0 = skip)", DefaultValueFactory = _ => 32 };
        var threads = new Option<int>("--threads") { Description = "threads (0 = all processors)", DefaultValueFactory = _ => 0 };
        var runs = new Option<int>("--runs") { Description = "timed runs per test", DefaultValueFactory = _ => 5 };
        var json = new Option<bool>("--json") { Description = "JSON lines {\"test\": \"pp128\", \"tps\": .., \"sd\": ..}" };
        var noMmap = new Option<bool>("--no-mmap") { Description = "copy the weights into huge-page memory instead of mapping the file (llama.cpp's --no-mmap)" };
        prompt.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 0) r.AddError("--prompt must be >= 0"); });
        gen.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 0) r.AddError("--gen must be >= 0"); });
        threads.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 0) r.AddError("--threads must be >= 0 (0 = all processors)"); });
        runs.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 1) r.AddError("--runs must be >= 1"); });
        var cmd = new Command("model", "Prefill (ppN) and decode (tgM) tokens/s of a language model, as llama-bench") { model, prompt, gen, threads, runs, json, noMmap };
        cmd.SetAction((r, ct) =>
        {
            int t = r.GetValue(threads);
            if (t > 0 && Environment.GetEnvironmentVariable(ThreadsEnv) != t.ToString())
                return Task.FromResult(RerunWithThreads(t));
            Run(r.GetValue(model)!.FullName, r.GetValue(prompt), r.GetValue(gen), r.GetValue(runs), r.GetValue(json), Console.Out, ct,
                r.GetValue(noMmap) ? WeightPlacement.HugePages : WeightPlacement.Mapped);
            return Task.FromResult(0);
        });
        return cmd;
    }

    private static int RerunWithThreads(int threads)
    {
        var args = Environment.GetCommandLineArgs();
        var psi = new ProcessStartInfo(Environment.ProcessPath!) { UseShellExecute = false };
        // args[0] is the entry assembly when run as `dotnet MedVL.Cli.dll`, or the apphost itself.
        bool viaHost = Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet";
        for (int i = viaHost ? 0 : 1; i < args.Length; i++) psi.ArgumentList.Add(args[i]);
        psi.Environment[ThreadsEnv] = threads.ToString();
        using var p = Process.Start(psi)!;
        p.WaitForExit();
        return p.ExitCode;
    }

    public static void Run(string dir, int promptTokens, int genTokens, int runs, bool json, TextWriter output, CancellationToken ct,
        WeightPlacement placement = WeightPlacement.Mapped)
    {
        var cfg = ModelConfigLoader.Load(dir);
        using var llava = cfg.Kind == ModelKind.Llava ? LlavaForCausalLM.FromPretrained(dir, requireVisionTower: false, placement: placement) : null;
        using var own = llava is null ? AutoModelForCausalLM.FromPretrained(dir, placement) : null;
        var lm = llava?.LanguageModel ?? own!;
        int threads = Environment.ProcessorCount;
        string name = Path.GetFileName(Path.TrimEndingDirectorySeparator(dir));
        var weightType = lm.EmbedTokensWeight.DType;
        if (!json) output.WriteLine($"# medvl bench model: {name} ({lm.Family}, {lm.NumLayers} layers, hidden {lm.HiddenSize}, {weightType} weights, {(placement == WeightPlacement.Mapped ? "mmap" : "huge pages")}), threads={threads}, {runs} runs, mean ± sd");
        var rng = new Random(1234);
        int[] RandomIds(int n) => Enumerable.Range(0, n).Select(_ => rng.Next(lm.VocabSize)).ToArray();
        var opts = new DecoderForwardOptions { LastTokenLogitsOnly = true, CancellationToken = ct };
        using var noGrad = GradMode.NoGrad();

        void Report(string test, int tokens, double[] seconds)
        {
            var tps = seconds.Select(s => tokens / s).ToArray();
            double mean = tps.Average();
            double sd = tps.Length > 1 ? Math.Sqrt(tps.Sum(v => (v - mean) * (v - mean)) / (tps.Length - 1)) : 0;
            if (json)
                output.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
                {
                    ["test"] = test, ["tps"] = Math.Round(mean, 3), ["sd"] = Math.Round(sd, 3), ["runs"] = tps.Length,
                    ["threads"] = threads, ["mmap"] = placement == WeightPlacement.Mapped, ["model"] = name, ["family"] = lm.Family.ToString(), ["weights"] = weightType.ToString(),
                }));
            else output.WriteLine($"{test,-8} {mean,12:F2} ± {sd,8:F2} tok/s   ({seconds.Average() * 1e3:F1} ms/run)");
        }

        // Tiered JIT recompiles the hot kernels during the first runs (seen: the first 2–3 prefills 1.5–2.5× slower), so
        // warm up for at least 3 runs and 1 s, as `bench kernels` does, before timing.
        static void WarmUp(Func<double> once)
        {
            double spent = 0;
            for (int i = 0; i < 3 || spent < 1.0; i++) spent += once();
        }

        if (promptTokens > 0)
        {
            var ids = RandomIds(promptTokens);
            double Once()
            {
                using var cache = lm.CreateCache(initialCapacity: promptTokens);
                long t0 = Stopwatch.GetTimestamp();
                using (lm.Forward(ids, cache, opts)) { }
                return Stopwatch.GetElapsedTime(t0).TotalSeconds;
            }
            WarmUp(Once);
            Report($"pp{promptTokens}", promptTokens, Enumerable.Range(0, runs).Select(_ => { ct.ThrowIfCancellationRequested(); return Once(); }).ToArray());
        }
        if (genTokens > 0)
        {
            var ids = RandomIds(genTokens);
            double Once()
            {
                using var cache = lm.CreateCache(initialCapacity: genTokens);
                long t0 = Stopwatch.GetTimestamp();
                for (int i = 0; i < genTokens; i++)
                    using (lm.Forward(ids.AsSpan(i, 1), cache, opts)) { }
                return Stopwatch.GetElapsedTime(t0).TotalSeconds;
            }
            WarmUp(Once);
            Report($"tg{genTokens}", genTokens, Enumerable.Range(0, runs).Select(_ => { ct.ThrowIfCancellationRequested(); return Once(); }).ToArray());
        }
    }
}
