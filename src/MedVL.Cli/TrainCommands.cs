using System.CommandLine;
using MedVL.Training;
using Spectre.Console;

namespace MedVL.Cli;

/// <summary>`medvl train`: run a training pipeline (JSON config or a tiny preset) with checkpoints, resume and metrics.</summary>
internal static class TrainCommands
{
    public static Command Build()
    {
        var config = new Option<FileInfo?>("--config") { Description = "pipeline config (JSON; see `--write-config`)" };
        var preset = new Option<string?>("--preset") { Description = "tiny-healthgpt | tiny-medmoe (instead of --config)" };
        var data = new Option<DirectoryInfo?>("--data") { Description = "data folder (llava_train.json, caption_train.json, vqa_train.json, images/) for --preset" };
        var scale = new Option<double>("--epochs-scale") { Description = "multiply the preset's epochs (e.g. 0.2 for a quick run)", DefaultValueFactory = _ => 1.0 };
        var output = new Option<DirectoryInfo>("--out") { Description = "run folder (checkpoints, metrics.jsonl, trained model)", Required = true };
        var resume = new Option<bool>("--resume") { Description = "continue from the latest checkpoint of each stage" };
        var writeConfig = new Option<FileInfo?>("--write-config") { Description = "write the preset's pipeline config to this file and exit" };
        var cmd = new Command("train", "Train through a pipeline's stages (HealthGPT stages 1–3, Med-MoE steps 1–3)") { config, preset, data, scale, output, resume, writeConfig };
        cmd.SetAction((r, ct) =>
        {
            PipelineConfig p;
            if (r.GetValue(config) is { } cf) p = PipelineConfig.Load(cf.FullName);
            else
            {
                string name = r.GetValue(preset) ?? throw new ArgumentException("give --config FILE or --preset tiny-healthgpt|tiny-medmoe");
                string dataDir = r.GetValue(data)?.FullName ?? throw new ArgumentException("--preset needs --data DIR (make one with `medvl synth`)");
                double s = r.GetValue(scale);
                p = name switch
                {
                    "tiny-healthgpt" => PipelineConfig.TinyHealthGpt(dataDir, s),
                    "tiny-medmoe" => PipelineConfig.TinyMedMoe(dataDir, s),
                    _ => throw new ArgumentException($"--preset {name}: expected tiny-healthgpt or tiny-medmoe"),
                };
            }
            if (r.GetValue(writeConfig) is { } wc)
            {
                MedVL.IO.AtomicFile.WriteAllText(wc.FullName, p.ToJson());
                Console.WriteLine($"wrote {wc.FullName}");
                return Task.FromResult(0);
            }
            var result = RunWithProgress(p, r.GetValue(output)!.FullName, r.GetValue(resume), ct);
            AnsiConsole.MarkupLine($"trained model: [blue]{Markup.Escape(result.ModelDir)}[/]" + (result.AdapterPath is null ? "" : $", H-LoRA plugin: [blue]{Markup.Escape(result.AdapterPath)}[/]"));
            return Task.FromResult(0);
        });
        return cmd;
    }

    /// <summary>Runs a pipeline with a Spectre progress bar per stage (loss, tokens/s, ETA); plain lines when not a terminal.</summary>
    internal static PipelineResult RunWithProgress(PipelineConfig p, string runDir, bool resume, CancellationToken ct, bool quiet = false)
    {
        if (quiet || Console.IsOutputRedirected)
        {
            int last = -1;
            var plain = new PipelineRunner
            {
                Log = quiet ? null : s => Console.WriteLine(s),
                OnStep = m =>
                {
                    if (quiet) return;
                    int pct = m.Step * 10 / m.TotalSteps;
                    if (pct != last || m.Step == m.TotalSteps) Console.WriteLine($"  {m.Stage} step {m.Step}/{m.TotalSteps} loss {m.Loss:F4} {m.TokensPerSecond:F0} tok/s");
                    last = pct;
                },
            };
            return plain.Run(p, runDir, resume, ct);
        }
        PipelineResult? result = null;
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var tasks = new Dictionary<string, ProgressTask>();
                var runner = new PipelineRunner
                {
                    Log = s => AnsiConsole.MarkupLine(Markup.Escape(s)),
                    OnStep = m =>
                    {
                        if (!tasks.TryGetValue(m.Stage, out var t)) tasks[m.Stage] = t = ctx.AddTask(m.Stage, maxValue: m.TotalSteps);
                        t.Value = m.Step;
                        t.Description = $"{m.Stage} loss {m.Loss:F3} {m.TokensPerSecond:F0} tok/s";
                    },
                };
                result = runner.Run(p, runDir, resume, ct);
            });
        return result!;
    }
}
