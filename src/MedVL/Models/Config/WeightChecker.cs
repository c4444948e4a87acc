using System.Text;

namespace MedVL.Models.Config;

/// <summary>Result of comparing a checkpoint's tensor listing with a <see cref="WeightTable"/>.</summary>
public sealed record WeightCheckReport(
    IReadOnlyList<TensorSpec> Missing,
    IReadOnlyList<string> Unexpected,
    IReadOnlyList<(TensorSpec Expected, long[] Actual)> Misshaped,
    IReadOnlyList<string> Skipped)
{
    public bool Ok => Missing.Count == 0 && Unexpected.Count == 0 && Misshaped.Count == 0;

    /// <summary>Every problem, one per line (all of them, not the first).</summary>
    public string Describe()
    {
        var sb = new StringBuilder();
        foreach (var m in Missing) sb.Append("missing: ").Append(m).Append('\n');
        foreach (var u in Unexpected) sb.Append("unexpected: ").Append(u).Append('\n');
        foreach (var (e, a) in Misshaped)
            sb.Append("wrong shape: ").Append(e.Name).Append(" expected [").Append(string.Join(", ", e.Shape!))
              .Append("] got [").Append(string.Join(", ", a)).Append("]\n");
        return sb.ToString();
    }
}

public static class WeightChecker
{
    /// <summary>Compares names and shapes. <paramref name="skippedPrefixes"/> marks whole subtrees as known-but-unused.</summary>
    public static WeightCheckReport Check(IReadOnlyList<TensorSpec> expected, IReadOnlyDictionary<string, long[]> actual,
        IEnumerable<string>? skippedPrefixes = null)
    {
        var prefixes = skippedPrefixes?.ToArray() ?? [];
        var byName = new Dictionary<string, TensorSpec>(StringComparer.Ordinal);
        foreach (var s in expected)
            if (!byName.TryAdd(s.Name, s))
                throw new ArgumentException($"weight table lists '{s.Name}' twice", nameof(expected));
        var missing = new List<TensorSpec>();
        var misshaped = new List<(TensorSpec, long[])>();
        var skipped = new List<string>();
        foreach (var s in expected)
        {
            if (!actual.TryGetValue(s.Name, out var shape))
            {
                if (s.Role == TensorRole.Required) missing.Add(s);
                continue;
            }
            if (s.Role == TensorRole.Skipped) { skipped.Add(s.Name); continue; }
            if (s.Shape is not null && !s.Shape.AsSpan().SequenceEqual(shape)) misshaped.Add((s, shape));
        }
        var unexpected = new List<string>();
        foreach (var name in actual.Keys.Order(StringComparer.Ordinal))
        {
            if (byName.ContainsKey(name)) continue;
            if (prefixes.Any(p => name.StartsWith(p, StringComparison.Ordinal))) skipped.Add(name);
            else unexpected.Add(name);
        }
        return new WeightCheckReport(missing, unexpected, misshaped, skipped);
    }

    /// <summary>Throws one <see cref="ModelConfigException"/> listing ALL missing, unexpected and mis-shaped tensors.</summary>
    public static WeightCheckReport Ensure(IReadOnlyList<TensorSpec> expected, IReadOnlyDictionary<string, long[]> actual,
        string source, IEnumerable<string>? skippedPrefixes = null)
    {
        var r = Check(expected, actual, skippedPrefixes);
        if (!r.Ok)
            throw new ModelConfigException(source, null,
                $"checkpoint does not match its config ({r.Missing.Count} missing, {r.Unexpected.Count} unexpected, {r.Misshaped.Count} wrong shape):\n{r.Describe()}");
        return r;
    }

    /// <summary>Loads config + tensor listing of an HF folder and checks them against each other.</summary>
    public static WeightCheckReport CheckFolder(string dir)
    {
        var cfg = ModelConfigLoader.Load(dir);
        var listing = SafetensorsListing.ReadFolder(dir);
        var prefixes = cfg.Kind == ModelKind.Llava ? WeightTable.SkippedLlavaPrefixes : null;
        return Ensure(WeightTable.For(cfg), listing.ToDictionary(kv => kv.Key, kv => kv.Value.Shape), dir, prefixes);
    }
}
