using System.CommandLine;
using System.Text.Json;
using MedVL.Formats;
using MedVL.Tensors;

namespace MedVL.Cli;

/// <summary>`medvl inspect`: list a checkpoint's tensors (any format MedVL reads) without loading their data.</summary>
internal static class InspectCommands
{
    public static Command Build()
    {
        var path = new Argument<string>("CHECKPOINT") { Description = "model folder, .safetensors, model.safetensors.index.json, or torch .bin/.pt/.ckpt" };
        var json = new Option<bool>("--json") { Description = "one JSON object per tensor: name, dtype, shape" };
        var cmd = new Command("inspect", "List a checkpoint's tensors: name, dtype, shape (torch pickles are read with the allow-list unpickler)") { path, json };
        cmd.SetAction((r, ct) =>
        {
            using var src = Checkpoint.Open(r.GetValue(path)!, ct);
            long total = 0;
            foreach (var (name, e) in src.Tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                total += e.ElementCount;
                if (r.GetValue(json))
                    Console.WriteLine(JsonSerializer.Serialize(new { name, dtype = e.DType.SafetensorsName(), shape = e.Shape }));
                else
                    Console.WriteLine($"{name}\t{e.DType.SafetensorsName()}\t[{string.Join(", ", e.Shape)}]");
            }
            if (!r.GetValue(json)) Console.WriteLine($"{src.Tensors.Count} tensors, {total:N0} parameters");
            return Task.FromResult(0);
        });
        return cmd;
    }
}
