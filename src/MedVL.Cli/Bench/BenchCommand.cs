using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;

namespace MedVL.Cli.Bench;

/// <summary><c>medvl bench kernels [--threads T] [--json] [--filter S] [--runs R]</c>; later <c>bench model</c>.</summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var bench = new Command("bench", "Measure kernel, model and adapter throughput.");
        bench.Subcommands.Add(CreateKernels());
        bench.Subcommands.Add(ModelBench.Create());
        bench.Subcommands.Add(AdapterBench.Create());
        return bench;
    }

    private static Command CreateKernels()
    {
        var threads = new Option<int>("--threads") { Description = "Worker threads (0 = all processors).", DefaultValueFactory = _ => 0 };
        var json = new Option<bool>("--json") { Description = "Print JSON lines {\"case\", \"value\", \"unit\", ...}." };
        var filter = new Option<string?>("--filter") { Description = "Only cases whose name contains this text." };
        var runs = new Option<int>("--runs") { Description = "Timed runs per case (median reported).", DefaultValueFactory = _ => 7 };
        threads.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 0) r.AddError("--threads must be >= 0 (0 = all processors)"); });
        runs.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 1) r.AddError("--runs must be >= 1"); });
        var cmd = new Command("kernels", "GEMM, matrix-vector and memory-copy throughput (median of several timed runs after warm-up).")
        {
            threads, json, filter, runs,
        };
        cmd.SetAction((parse, ct) =>
        {
            Run(parse.GetValue(threads), parse.GetValue(json), parse.GetValue(filter), parse.GetValue(runs), Console.Out, ct);
            return Task.FromResult(0);
        });
        return cmd;
    }

    public static void Run(int threads, bool json, string? filter, int runs, TextWriter output, CancellationToken ct)
    {
        int effective = threads <= 0 ? Environment.ProcessorCount : threads;
        if (!json) output.WriteLine($"# medvl bench kernels: threads={effective}, {runs} timed runs per case (median, ±sd), warm-up excluded");
        foreach (var c in KernelBenchCases.All)
        {
            ct.ThrowIfCancellationRequested();
            if (filter is not null && !c.Name.Contains(filter, StringComparison.OrdinalIgnoreCase)) continue;
            using var inst = c.Setup(threads);
            var times = Measure(inst.Run, runs, ct);
            foreach (var m in inst.Metrics)
            {
                var values = times.Select(s => m.WorkPerRun / s / m.Scale).Order().ToArray();
                double median = values[values.Length / 2];
                double mean = values.Average();
                double sd = Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / Math.Max(1, values.Length - 1));
                if (json)
                    output.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
                    {
                        ["case"] = m.Case, ["value"] = Math.Round(median, 3), ["unit"] = m.Unit,
                        ["sd"] = Math.Round(sd, 3), ["runs"] = values.Length, ["threads"] = effective,
                    }));
                else
                    output.WriteLine($"{m.Case,-28} {median,10:F2} {m.Unit,-8} ±{sd:F2}  ({values.Length} runs, {times.Order().ElementAt(times.Length / 2) * 1e3:F3} ms/run)");
            }
        }
    }

    /// <summary>Seconds per run: warm-up (≥ 30 runs and ≥ 0.5 s, at most 10 s), then <paramref name="runs"/> samples, each
    /// averaging enough repetitions to last ≥ 20 ms so timer resolution and one-off noise do not dominate short kernels.
    /// The warm-up covers .NET's tiered JIT (a method is recompiled with full optimisation after 30 calls, in the
    /// background): with 2 warm-up runs the attention case was still timing tier-0 code (4–20 GFLOP/s for its first calls).
    /// The repetition count is calibrated on three runs after the warm-up, not on the warm-up itself.</summary>
    private static double[] Measure(Action run, int runs, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        int warm = 0;
        while ((warm < 30 || sw.Elapsed.TotalSeconds < 0.5) && sw.Elapsed.TotalSeconds < 10) { ct.ThrowIfCancellationRequested(); run(); warm++; }
        long c0 = Stopwatch.GetTimestamp();
        for (int i = 0; i < 3; i++) run();
        double perRun = Stopwatch.GetElapsedTime(c0).TotalSeconds / 3;
        int reps = Math.Max(1, (int)Math.Ceiling(0.02 / Math.Max(perRun, 1e-9)));
        var samples = new double[runs];
        for (int i = 0; i < runs; i++)
        {
            ct.ThrowIfCancellationRequested();
            long t0 = Stopwatch.GetTimestamp();
            for (int r = 0; r < reps; r++) run();
            samples[i] = Stopwatch.GetElapsedTime(t0).TotalSeconds / reps;
        }
        return samples;
    }
}
