using System.Buffers.Binary;
using System.Text.Json;

namespace MedVL.Models.Config;

/// <summary>
/// Tensor names, dtypes and shapes from safetensors headers — just enough for the weight checker. Internal and tiny on
/// purpose: MedVL.Formats owns the real reader (data access, mmap). Format: u64 little-endian header length N, then N
/// bytes of JSON {name: {dtype, shape, data_offsets}, "__metadata__": {...}}.
/// </summary>
internal static class SafetensorsListing
{
    /// <summary>The reference implementation refuses headers over 100 MB; so do we, before allocating.</summary>
    private const long MaxHeaderBytes = 100_000_000;

    public readonly record struct Entry(string DType, long[] Shape, string File);

    public static Dictionary<string, Entry> ReadFile(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        Span<byte> lenBytes = stackalloc byte[8];
        if (fs.Length < 8 || fs.ReadAtLeast(lenBytes, 8, throwOnEndOfStream: false) != 8)
            throw new ModelConfigException(path, null, "safetensors file shorter than its 8-byte header length");
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
        if (n > MaxHeaderBytes || n > (ulong)(fs.Length - 8))
            throw new ModelConfigException(path, null, $"safetensors header length {n} exceeds the file ({fs.Length} bytes) or the {MaxHeaderBytes}-byte limit");
        var buf = new byte[(int)n];
        fs.ReadExactly(buf);
        long dataLen = fs.Length - 8 - (long)n;
        var result = new Dictionary<string, Entry>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(buf, new JsonDocumentOptions { MaxDepth = 8 });
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == "__metadata__") continue;
                var v = prop.Value;
                string dtype = v.GetProperty("dtype").GetString() ?? "";
                var shape = v.GetProperty("shape").EnumerateArray().Select(x => x.GetInt64()).ToArray();
                var offs = v.GetProperty("data_offsets").EnumerateArray().Select(x => x.GetInt64()).ToArray();
                if (shape.Any(d => d < 0) || offs.Length != 2 || offs[0] < 0 || offs[1] < offs[0] || offs[1] > dataLen)
                    throw new ModelConfigException(path, prop.Name, $"bad shape or data_offsets (data section is {dataLen} bytes)");
                result[prop.Name] = new Entry(dtype, shape, Path.GetFileName(path));
            }
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new ModelConfigException(path, null, $"safetensors header is not the expected JSON ({e.Message})", e);
        }
        return result;
    }

    /// <summary>model.safetensors, or every shard named by model.safetensors.index.json (whose weight_map must agree
    /// with the shards' own headers).</summary>
    public static Dictionary<string, Entry> ReadFolder(string dir)
    {
        string index = Path.Combine(dir, "model.safetensors.index.json");
        if (!File.Exists(index))
        {
            string single = Path.Combine(dir, "model.safetensors");
            if (!File.Exists(single))
                throw new ModelConfigException(dir, null, "neither model.safetensors nor model.safetensors.index.json found");
            return ReadFile(single);
        }
        Dictionary<string, string> map;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(index));
            map = doc.RootElement.GetProperty("weight_map").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!, StringComparer.Ordinal);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new ModelConfigException(index, "weight_map", $"expected an object of tensor name -> shard file ({e.Message})", e);
        }
        var all = new Dictionary<string, Entry>(StringComparer.Ordinal);
        foreach (var shard in map.Values.Distinct().Order(StringComparer.Ordinal))
        {
            if (shard.Contains('/') || shard.Contains('\\') || shard.Contains(".."))
                throw new ModelConfigException(index, "weight_map", $"shard name '{shard}' must be a plain file name in the folder");
            foreach (var (name, e) in ReadFile(Path.Combine(dir, shard)))
            {
                if (!map.TryGetValue(name, out var listed) || listed != shard)
                    throw new ModelConfigException(index, "weight_map", $"tensor '{name}' is in {shard} but the index lists it under '{listed ?? "nothing"}'");
                if (!all.TryAdd(name, e))
                    throw new ModelConfigException(index, "weight_map", $"tensor '{name}' appears in more than one shard");
            }
        }
        foreach (var name in map.Keys)
            if (!all.ContainsKey(name))
                throw new ModelConfigException(index, "weight_map", $"tensor '{name}' is listed under {map[name]} but that shard does not contain it");
        return all;
    }
}
