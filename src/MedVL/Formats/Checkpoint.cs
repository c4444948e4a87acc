using System.Buffers.Binary;
using System.Text.Json;

namespace MedVL.Formats;

/// <summary>A set of named tensors backed by open (memory-mapped) files; dispose to release them.</summary>
public interface ITensorSource : IDisposable
{
    string Path { get; }
    /// <summary>Model weights by name. For a torch checkpoint this is its <see cref="TorchCheckpoint.StateDict"/>.</summary>
    IReadOnlyDictionary<string, TensorEntry> Tensors { get; }
}

/// <summary>
/// Opens whatever a model directory ships: a .safetensors file, a torch .bin/.pt/.ckpt (zip or legacy), or a sharded
/// Hugging Face index (<c>model.safetensors.index.json</c> / <c>pytorch_model.bin.index.json</c>) whose shards may be
/// either kind. Files are recognised by content, not extension.
/// </summary>
public static class Checkpoint
{
    /// <summary>Preferred file names in a model directory, in the order transformers prefers them.</summary>
    private static readonly string[] DirectoryCandidates =
        ["model.safetensors.index.json", "model.safetensors", "pytorch_model.bin.index.json", "pytorch_model.bin"];

    public static ITensorSource Open(string path, CancellationToken cancellationToken = default)
    {
        if (Directory.Exists(path))
        {
            foreach (var c in DirectoryCandidates)
            {
                string p = System.IO.Path.Combine(path, c);
                if (File.Exists(p)) return Open(p, cancellationToken);
            }
            throw new FileNotFoundException($"{path}: no {string.Join(", ", DirectoryCandidates)} in this directory");
        }
        if (path.EndsWith(".safetensors.index.json", StringComparison.OrdinalIgnoreCase)) return SafetensorsCollection.Open(path);
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) return CheckpointCollection.Open(path, cancellationToken);
        return OpenFile(path, cancellationToken);
    }

    /// <summary>Opens one weight file, dispatching on its first bytes.</summary>
    public static ITensorSource OpenFile(string path, CancellationToken cancellationToken = default)
    {
        Span<byte> head = stackalloc byte[9];
        int n;
        using (var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1))
            n = fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        if (n >= 4 && BinaryPrimitives.ReadUInt32LittleEndian(head) == 0x04034b50) return TorchCheckpoint.Open(path, false, cancellationToken);
        // safetensors (u64 header length, then '{') before the pickle test: a 128-byte header also starts with 0x80.
        // A legacy torch file cannot match: its byte 8 is inside the pickled magic number.
        if (n == 9 && head[8] == (byte)'{') return SafetensorsFile.Open(path);
        if (n >= 1 && head[0] == 0x80) return TorchCheckpoint.Open(path, false, cancellationToken);
        throw new InvalidCheckpointException(path, "not a safetensors file or a PyTorch checkpoint");
    }
}

/// <summary>A sharded checkpoint (any mix of safetensors and torch shards) opened from its weight_map index.</summary>
public sealed class CheckpointCollection : ITensorSource
{
    private readonly List<ITensorSource> _shards;
    private readonly Dictionary<string, TensorEntry> _tensors;

    public string Path { get; }
    public IReadOnlyDictionary<string, TensorEntry> Tensors => _tensors;
    public IReadOnlyList<ITensorSource> Shards => _shards;
    public IReadOnlyDictionary<string, string> Metadata { get; }

    private CheckpointCollection(string path, List<ITensorSource> shards, Dictionary<string, TensorEntry> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        Path = path; _shards = shards; _tensors = tensors; Metadata = metadata;
    }

    public static CheckpointCollection Open(string indexPath, CancellationToken cancellationToken = default)
    {
        var (metadata, weightMap) = ShardIndex.Load(indexPath);
        var shards = new List<ITensorSource>();
        var byShard = new Dictionary<string, ITensorSource>(StringComparer.Ordinal);
        var tensors = new Dictionary<string, TensorEntry>(weightMap.Count, StringComparer.Ordinal);
        try
        {
            foreach (var (tensor, shard) in weightMap)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (!byShard.TryGetValue(shard, out var src))
                {
                    src = Checkpoint.OpenFile(ShardIndex.ShardPath(indexPath, tensor, shard), cancellationToken);
                    shards.Add(src);
                    byShard.Add(shard, src);
                }
                if (!src.Tensors.TryGetValue(tensor, out var entry))
                    throw new InvalidCheckpointException(indexPath, $"weight_map says '{tensor}' is in '{shard}', but that shard has no such tensor");
                tensors.Add(tensor, entry);
            }
        }
        catch
        {
            foreach (var s in shards) s.Dispose();
            throw;
        }
        return new CheckpointCollection(indexPath, shards, tensors, metadata);
    }

    public void Dispose()
    {
        foreach (var s in _shards) s.Dispose();
    }
}

/// <summary>Hugging Face shard index: {"metadata": {...}, "weight_map": {tensor: shard file}} (transformers modeling_utils).</summary>
internal static class ShardIndex
{
    public const long MaxIndexSize = 64L << 20;

    public static (Dictionary<string, string> Metadata, List<(string Tensor, string Shard)> WeightMap) Load(string indexPath)
    {
        var info = new FileInfo(indexPath);
        if (!info.Exists) throw new FileNotFoundException($"{indexPath}: index file not found", indexPath);
        if (info.Length > MaxIndexSize) throw new InvalidCheckpointException(indexPath, $"index is {info.Length} bytes (limit {MaxIndexSize})");
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var weightMap = new List<(string, string)>();
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(indexPath), new JsonDocumentOptions { MaxDepth = 16 });
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidCheckpointException(indexPath, "index must be a JSON object");
            if (doc.RootElement.TryGetProperty("metadata", out var md) && md.ValueKind == JsonValueKind.Object)
                foreach (var p in md.EnumerateObject())
                    metadata[p.Name] = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.GetRawText();
            if (!doc.RootElement.TryGetProperty("weight_map", out var wm) || wm.ValueKind != JsonValueKind.Object)
                throw new InvalidCheckpointException(indexPath, "missing 'weight_map' object (tensor name → shard file name)");
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var p in wm.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.String)
                    throw new InvalidCheckpointException(indexPath, $"weight_map['{p.Name}'] must be a shard file name string");
                if (!seen.Add(p.Name)) throw new InvalidCheckpointException(indexPath, $"duplicate tensor '{p.Name}' in weight_map");
                weightMap.Add((p.Name, p.Value.GetString()!));
            }
        }
        catch (JsonException e)
        {
            throw new InvalidCheckpointException(indexPath, $"index is not valid JSON: {e.Message}", e);
        }
        return (metadata, weightMap);
    }

    /// <summary>Resolves a shard next to the index. Shard names must be plain file names: anything else could escape the directory.</summary>
    public static string ShardPath(string indexPath, string tensor, string shard)
    {
        if (shard.Length == 0 || shard != System.IO.Path.GetFileName(shard) || shard == "." || shard == "..")
            throw new InvalidCheckpointException(indexPath, $"weight_map['{tensor}'] = '{shard}' is not a plain file name in the index's directory");
        string dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(indexPath))!;
        string p = System.IO.Path.Combine(dir, shard);
        if (!File.Exists(p))
            throw new InvalidCheckpointException(indexPath, $"shard '{shard}' (holding '{tensor}') is missing: expected {p}");
        return p;
    }
}
