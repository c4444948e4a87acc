using System.CommandLine;
using System.Text.Json;
using MedVL.Adapters;
using MedVL.Models.Config;
using Spectre.Console;

namespace MedVL.Cli;

/// <summary>`medvl params`: total and per-token activated parameters of a model folder (+ an adapter), by component.</summary>
internal static class ParamsCommands
{
    public static Command Build()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "model folder (config.json is enough: weights are not read)", Required = true };
        var tower = new Option<DirectoryInfo?>("--vision-tower") { Description = "CLIP folder to count (default: mm_vision_tower relative to the model, when present)" };
        var adapter = new Option<string?>("--adapter") { Description = "adapter file or PEFT folder to add" };
        var noMeta = new Option<bool>("--no-meta-expert") { Description = "do not count Med-MoE's meta expert (plain MoE-LLaVA)" };
        var json = new Option<bool>("--json") { Description = "print one JSON object" };
        var cmd = new Command("params", "Count total and activated parameters (per token) of a model and adapter") { model, tower, adapter, noMeta, json };
        cmd.SetAction((r, ct) =>
        {
            string dir = r.GetValue(model)!.FullName;
            var config = ModelConfigLoader.Load(dir);
            ClipConfig? vision = null;
            string? towerDir = r.GetValue(tower)?.FullName;
            if (towerDir is null && config.Multimodal?.VisionTower is { } named && File.Exists(Path.Combine(dir, named, "config.json")))
                towerDir = Path.GetFullPath(Path.Combine(dir, named));
            if (towerDir is not null) vision = ModelConfigLoader.Load(towerDir).RequireClip();
            var b = ParameterAccounting.ForConfig(config, vision, metaExpert: !r.GetValue(noMeta));
            if (r.GetValue(adapter) is { } a) b = b.With(ParameterAccounting.ForAdapter(a, Path.GetFileName(Path.TrimEndingDirectorySeparator(a))));
            if (r.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    model = dir, total = b.Total, activated = b.Activated, vision_tower_counted = vision is not null,
                    components = b.Rows.Select(x => new { component = x.Component, total = x.Total, activated = x.Activated }),
                }));
                return Task.FromResult(0);
            }
            var t = new Table().AddColumn("component").AddColumn(new TableColumn("total").RightAligned()).AddColumn(new TableColumn("activated / token").RightAligned());
            foreach (var x in b.Rows) t.AddRow(Markup.Escape(x.Component), x.Total.ToString("N0"), x.Activated.ToString("N0"));
            t.AddRow("[bold]all[/]", $"[bold]{b.Total:N0}[/] ({b.Total / 1e9:F3}B)", $"[bold]{b.Activated:N0}[/] ({b.Activated / 1e9:F3}B)");
            AnsiConsole.Write(t);
            if (vision is null && config.Kind == ModelKind.Llava)
                AnsiConsole.MarkupLine("[yellow]vision tower not counted[/]: pass --vision-tower DIR (its config.json) to include it");
            return Task.FromResult(0);
        });
        return cmd;
    }
}
