namespace MedVL.Formats;

/// <summary>
/// A checkpoint that may be sharded: either one .safetensors file, or a <c>model.safetensors.index.json</c>
/// (Hugging Face's <c>{"metadata": {...}, "weight_map": {tensor: shard file}}</c>) whose shards are all mapped and
/// presented as one name → tensor view. Every weight_map entry is checked at open: the shard must exist and contain it.
/// </summary>
public sealed class SafetensorsCollection : ITensorSource
{
    private readonly List<SafetensorsFile> _shards;
    private readonly Dictionary<string, TensorEntry> _tensors;

    public string Path { get; }
    public IReadOnlyList<SafetensorsFile> Shards => _shards;
    public IReadOnlyDictionary<string, TensorEntry> Tensors => _tensors;
    /// <summary>The index's "metadata" object with each value as raw JSON text (e.g. total_size), or a single file's __metadata__.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    private SafetensorsCollection(string path, List<SafetensorsFile> shards, Dictionary<string, TensorEntry> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        Path = path; _shards = shards; _tensors = tensors; Metadata = metadata;
    }

    public int Count => _tensors.Count;
    public bool TryGet(string name, out TensorEntry entry) => _tensors.TryGetValue(name, out entry!);
    public TensorEntry this[string name] =>
        _tensors.TryGetValue(name, out var e) ? e : throw new KeyNotFoundException($"{Path}: no tensor named '{name}'");

    /// <summary>
    /// Opens a .safetensors file, a *.index.json, or a directory holding model.safetensors.index.json or model.safetensors.
    /// </summary>
    public static SafetensorsCollection Open(string path)
    {
        if (Directory.Exists(path))
        {
            string idx = System.IO.Path.Combine(path, "model.safetensors.index.json");
            string single = System.IO.Path.Combine(path, "model.safetensors");
            if (File.Exists(idx)) path = idx;
            else if (File.Exists(single)) path = single;
            else throw new FileNotFoundException($"{path}: directory has neither model.safetensors.index.json nor model.safetensors", idx);
        }
        if (!path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
        {
            var f = SafetensorsFile.Open(path);
            return new SafetensorsCollection(path, [f], new Dictionary<string, TensorEntry>(f.Tensors, StringComparer.Ordinal), f.Metadata);
        }
        return OpenIndex(path);
    }

    private static SafetensorsCollection OpenIndex(string indexPath)
    {
        var (metadata, weightMap) = ShardIndex.Load(indexPath);
        var shardByName = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        var shards = new List<SafetensorsFile>();
        var tensors = new Dictionary<string, TensorEntry>(weightMap.Count, StringComparer.Ordinal);
        try
        {
            foreach (var (tensor, shard) in weightMap)
            {
                if (!shardByName.TryGetValue(shard, out var file))
                {
                    file = SafetensorsFile.Open(ShardIndex.ShardPath(indexPath, tensor, shard));
                    shards.Add(file);
                    shardByName.Add(shard, file);
                }
                if (!file.TryGet(tensor, out var entry))
                    throw new InvalidCheckpointException(indexPath, $"weight_map says '{tensor}' is in '{shard}', but that shard has no such tensor");
                tensors.Add(tensor, entry);
            }
        }
        catch
        {
            foreach (var s in shards) s.Dispose();
            throw;
        }
        return new SafetensorsCollection(indexPath, shards, tensors, metadata);
    }

    public void Dispose()
    {
        foreach (var s in _shards) s.Dispose();
    }
}
