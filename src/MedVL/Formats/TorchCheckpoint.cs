using System.Buffers.Binary;
using System.Numerics;
using System.Text;
using MedVL.Tensors;

namespace MedVL.Formats;

/// <summary>
/// A PyTorch checkpoint (.bin/.pt/.ckpt/.pth) read without Python and without executing anything.
/// Two layouts (torch/serialization.py): the zip format of torch ≥ 1.6 (<c>{archive}/data.pkl</c> plus one record
/// per storage <c>{archive}/data/{key}</c>, <c>byteorder</c>, <c>version</c>; the folder name varies), and the legacy
/// stream (pickles of the magic number, protocol version and sys_info, the object, the sorted storage keys, then each
/// storage as an int64 element count and raw bytes). Both are memory-mapped; storage records stored uncompressed are
/// exposed zero-copy. The pickle is run by MedVL's restricted unpickler (see <see cref="UnsafePickleException"/>).
/// </summary>
public sealed class TorchCheckpoint : ITensorSource
{
    /// <summary>torch.serialization.MAGIC_NUMBER of the legacy format.</summary>
    private static readonly BigInteger LegacyMagic = BigInteger.Parse("119547037146038801333356");
    private const long LegacyProtocolVersion = 1001;
    private const int MaxNesting = 64;

    private readonly MappedFile _map;

    public string Path { get; }
    public bool IsZipFormat { get; }
    /// <summary>The zip's top-level folder ("archive" for torch ≥ 2, the file stem for older versions); null for legacy files.</summary>
    public string? ArchiveName { get; }
    /// <summary>
    /// The unpickled object: <see cref="PickleDict"/>, <c>List&lt;object?&gt;</c>, <see cref="PickleTuple"/>, <see cref="TensorEntry"/>,
    /// string, long, BigInteger, double, bool, byte[] or null.
    /// </summary>
    public object? Root { get; }
    /// <summary>Every tensor reachable from <see cref="Root"/>, keyed by its dotted path (dict keys and list indices joined with '.').</summary>
    public IReadOnlyDictionary<string, TensorEntry> Tensors { get; }
    /// <summary>
    /// The model weights: like <see cref="Tensors"/>, but a training-checkpoint wrapper such as
    /// <c>{"state_dict": {...}, "epoch": 3}</c> (keys state_dict, model_state_dict, model, module) is unwrapped first.
    /// </summary>
    public IReadOnlyDictionary<string, TensorEntry> StateDict { get; }

    private TorchCheckpoint(string path, MappedFile map, bool zip, string? archive, object? root)
    {
        Path = path; _map = map; IsZipFormat = zip; ArchiveName = archive;
        Root = root = MaterializeTree(root, path);
        Tensors = Flatten(root, path);
        StateDict = Flatten(Unwrap(root, path), path);
    }

    IReadOnlyDictionary<string, TensorEntry> ITensorSource.Tensors => StateDict;

    public void Dispose() => _map.Dispose();

    /// <param name="verifyChecksums">Also CRC-check stored storage records (reads every byte; data.pkl and inflated records are always checked).</param>
    public static TorchCheckpoint Open(string path, bool verifyChecksums = false, CancellationToken cancellationToken = default)
    {
        var map = new MappedFile(path);
        try
        {
            if (ZipArchiveReader.LooksLikeZip(map)) return OpenZip(path, map, verifyChecksums, cancellationToken);
            if (map.Length >= 2 && map.Span(0, 1)[0] == 0x80) return OpenLegacy(path, map, cancellationToken);
            if (map.Length >= 262 && map.Span(257, 5).SequenceEqual("ustar"u8))
                throw new InvalidCheckpointException(path, "this is the tar-based checkpoint format of torch < 0.4, which MedVL does not read; re-save it with a current torch");
            throw new InvalidCheckpointException(path, "not a PyTorch checkpoint (expected a zip archive or a legacy pickle stream starting with 0x80)");
        }
        catch
        {
            map.Dispose();
            throw;
        }
    }

    private static TorchCheckpoint OpenZip(string path, MappedFile map, bool verify, CancellationToken ct)
    {
        var zip = ZipArchiveReader.Open(map, path);
        var byName = zip.Entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
        var pkls = zip.Entries.Where(e => e.Name.EndsWith("/data.pkl", StringComparison.Ordinal) && e.Name.IndexOf('/') == e.Name.Length - 9).ToList();
        if (pkls.Count != 1)
            throw new InvalidCheckpointException(path, pkls.Count == 0
                ? "zip has no '<archive>/data.pkl' record; not a torch.save checkpoint (TorchScript archives are not supported)"
                : $"zip has {pkls.Count} '<archive>/data.pkl' records; expected one");
        string archive = pkls[0].Name[..^9];
        if (byName.TryGetValue(archive + "/byteorder", out var bo))
        {
            string order = Encoding.ASCII.GetString(zip.Read(bo, true, out _).Span);
            if (order != "little")
                throw new InvalidCheckpointException(path, $"byteorder record says '{order}'; only little-endian checkpoints are supported");
        }
        var pkl = zip.Read(pkls[0], verifyCrc: true, out _);
        var storages = new Dictionary<string, StorageRef>(StringComparer.Ordinal);

        object? PersistentLoad(PickleTuple pid)
        {
            ct.ThrowIfCancellationRequested();
            // ('storage', storage_type, key, location, numel) — torch/serialization.py _save.persistent_id
            if (pid.Count != 5 || pid[0] is not "storage" || pid[1] is not PickleGlobal type || pid[2] is not string key
                || pid[3] is not string location || pid[4] is not long numel || numel < 0)
                throw new InvalidCheckpointException(path, $"unexpected persistent id {pid} (expected ('storage', type, key, location, numel))");
            if (storages.TryGetValue(key, out var existing))
            {
                if (existing.DType != StorageDType(type, path)) throw new InvalidCheckpointException(path, $"storage '{key}' is used with two dtypes");
                return existing;
            }
            var st = new StorageRef(key, StorageDType(type, path), numel, location);
            string rec = $"{archive}/data/{key}";
            if (!byName.TryGetValue(rec, out var entry))
                throw new InvalidCheckpointException(path, $"storage record '{rec}' referenced by the pickle is missing from the archive");
            long need;
            try { need = checked(numel * st.DType.SizeOf()); }
            catch (OverflowException) { throw new InvalidCheckpointException(path, $"storage '{key}': element count {numel} overflows"); }
            var bytes = zip.Read(entry, verify, out bool zeroCopy);
            if (bytes.Length < need)
                throw new InvalidCheckpointException(path, $"storage record '{rec}' has {bytes.Length} bytes but {numel} {st.DType} elements need {need}");
            st.Bytes = bytes[..(int)need];
            st.Owner = zeroCopy ? map : null;
            storages.Add(key, st);
            return st;
        }

        var root = new Unpickler(pkl, 0, path, PersistentLoad).Load();
        return new TorchCheckpoint(path, map, true, archive, root);
    }

    private static TorchCheckpoint OpenLegacy(string path, MappedFile map, CancellationToken ct)
    {
        // The pickles come first; a Memory can span at most 2 GiB, which is far more than any pickle needs.
        var head = map.Memory(0, (int)Math.Min(map.Length, int.MaxValue));
        var magic = new Unpickler(head, 0, path, null);
        if (magic.Load() is not BigInteger m || m != LegacyMagic)
            throw new InvalidCheckpointException(path, "legacy checkpoint: wrong magic number (not a torch.save file)");
        var proto = new Unpickler(head, magic.Position, path, null);
        if (proto.Load() is not long pv || pv != LegacyProtocolVersion)
            throw new InvalidCheckpointException(path, $"legacy checkpoint: protocol version is not {LegacyProtocolVersion}");
        var sys = new Unpickler(head, proto.Position, path, null);
        if (sys.Load() is PickleDict info && info.TryGetValue("little_endian", out var le) && le is false)
            throw new InvalidCheckpointException(path, "legacy checkpoint was written on a big-endian machine; not supported");

        var roots = new Dictionary<string, StorageRef>(StringComparer.Ordinal);
        var views = new List<(StorageRef View, string RootKey, long Offset)>();
        object? PersistentLoad(PickleTuple pid)
        {
            ct.ThrowIfCancellationRequested();
            // ('storage', storage_type, root_key, location, numel, view_metadata) — torch/serialization.py _legacy_save
            if (pid.Count != 6 || pid[0] is not "storage" || pid[1] is not PickleGlobal type || pid[2] is not string key
                || pid[3] is not string location || pid[4] is not long numel || numel < 0)
                throw new InvalidCheckpointException(path, $"unexpected persistent id {pid} (expected ('storage', type, key, location, numel, view))");
            var dtype = StorageDType(type, path);
            if (!roots.TryGetValue(key, out var root))
                roots.Add(key, root = new StorageRef(key, dtype, numel, location));
            if (pid[5] is null) return root;
            if (pid[5] is not PickleTuple { Count: 3 } vm || vm[0] is not string viewKey || vm[1] is not long off || vm[2] is not long viewSize || off < 0 || viewSize < 0)
                throw new InvalidCheckpointException(path, $"storage '{key}': malformed view metadata {pid[5]}");
            var view = new StorageRef(viewKey, dtype, viewSize, location);
            views.Add((view, key, off));
            return view;
        }
        var main = new Unpickler(head, sys.Position, path, PersistentLoad);
        var obj = main.Load();
        var keysU = new Unpickler(head, main.Position, path, null);
        if (keysU.Load() is not List<object?> keys || keys.Any(k => k is not string))
            throw new InvalidCheckpointException(path, "legacy checkpoint: the storage key list is missing or malformed");

        long pos = keysU.Position;
        foreach (string key in keys.Cast<string>())
        {
            ct.ThrowIfCancellationRequested();
            if (!roots.TryGetValue(key, out var st))
                throw new InvalidCheckpointException(path, $"legacy checkpoint: storage '{key}' is listed but never referenced");
            if (map.Length - pos < 8) throw new InvalidCheckpointException(path, $"legacy checkpoint truncated before storage '{key}'");
            long numel = BinaryPrimitives.ReadInt64LittleEndian(map.Span(pos, 8));
            int es = st.DType.SizeOf();
            if (numel < 0 || numel > (map.Length - pos - 8) / es)
                throw new InvalidCheckpointException(path, $"legacy checkpoint: storage '{key}' claims {numel} elements but only {map.Length - pos - 8} bytes remain");
            long bytes = numel * es;
            if (bytes > int.MaxValue) throw new InvalidCheckpointException(path, $"storage '{key}' is {bytes} bytes; MedVL limits one storage to 2 GiB");
            st.Bytes = map.Memory(pos + 8, (int)bytes);
            st.Owner = map;
            pos += 8 + bytes;
        }
        foreach (var (view, rootKey, off) in views)
        {
            var r = roots[rootKey];
            if (r.Bytes is not { } rb) continue; // reported at materialisation
            long start = off, len = checked(view.Numel * view.DType.SizeOf());
            if (start > rb.Length || len > rb.Length - start)
                throw new InvalidCheckpointException(path, $"storage view '{view.Key}' [{start}, +{len}) lies outside storage '{rootKey}'");
            view.Bytes = rb.Slice((int)start, (int)len);
            view.Owner = map;
        }
        return new TorchCheckpoint(path, map, false, null, obj);
    }

    private static DType StorageDType(PickleGlobal type, string path) =>
        type.Module == "torch" && Unpickler.StorageTypes.TryGetValue(type.Name, out var dt)
            ? dt
            : throw new InvalidCheckpointException(path, $"'{type.FullName}' is not a storage type");

    private static TensorEntry Materialize(PickledTensor t, string name, string path)
    {
        if (t.Storage.Bytes is not { } bytes)
            throw new InvalidCheckpointException(path, $"tensor '{name}': storage '{t.Storage.Key}' has no data in the file");
        return new TensorEntry(name, t.Storage.DType, t.Size, t.Stride, t.Offset, bytes, t.Storage.Owner, path, t.Storage.Key)
        {
            IsParameter = t.IsParameter,
            RequiresGrad = t.RequiresGrad,
        };
    }

    private static readonly string[] WrapperKeys = ["state_dict", "model_state_dict", "model", "module"];

    /// <summary>
    /// Steps into a wrapper key when the outer dict holds no tensors itself and the wrapped dict does (runs after
    /// materialisation, so tensors are <see cref="TensorEntry"/> here).
    /// </summary>
    private static object? Unwrap(object? root, string path)
    {
        for (int i = 0; i < 4 && root is PickleDict d; i++)
        {
            if (d.Any(kv => kv.Value is TensorEntry)) break;
            object? inner = null;
            foreach (var k in WrapperKeys)
                if (d.TryGetValue(k, out var v) && v is PickleDict { Count: > 0 } && Flatten(v, path).Count > 0) { inner = v; break; }
            if (inner is null) break;
            root = inner;
        }
        return root;
    }

    /// <summary>Depth-first walk with a nesting bound and cycle guard (pickles can build self-referencing containers).</summary>
    private static Dictionary<string, TensorEntry> Flatten(object? root, string path)
    {
        var result = new Dictionary<string, TensorEntry>(StringComparer.Ordinal);
        var active = new HashSet<object>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<(object? Node, string Prefix, int Depth)>();
        stack.Push((root, "", 0));
        // Children are pushed in reverse so insertion order (state_dict order) is preserved in the result.
        while (stack.Count > 0)
        {
            var (node, prefix, depth) = stack.Pop();
            if (node is TensorEntry e)
            {
                result.TryAdd(prefix, e.Name == prefix ? e : e.WithName(prefix));
                continue;
            }
            IEnumerable<(string, object?)>? children = node switch
            {
                PickleDict d => d.Select(kv => (KeyString(kv.Key), kv.Value)),
                List<object?> l => l.Select((v, i) => (i.ToString(), v)),
                PickleTuple tu => tu.Select((v, i) => (i.ToString(), v)),
                _ => null,
            };
            if (children is null) continue;
            if (depth >= MaxNesting) throw new InvalidCheckpointException(path, $"checkpoint nests containers deeper than {MaxNesting} levels");
            if (!active.Add(node!)) continue; // already visited (shared or cyclic container)
            foreach (var (k, v) in children.Reverse())
                stack.Push((v, prefix.Length == 0 ? k : prefix + "." + k, depth + 1));
        }
        return result;
    }

    /// <summary>Replaces every rebuilt-tensor placeholder in the tree by a <see cref="TensorEntry"/> named by its first path.</summary>
    private static object? MaterializeTree(object? root, string path)
    {
        if (root is PickledTensor rt) return rt.Materialized ??= Materialize(rt, "", path);
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<(object Node, string Prefix, int Depth)>();
        if (root is not null) stack.Push((root, "", 0));
        while (stack.Count > 0)
        {
            var (node, prefix, depth) = stack.Pop();
            if (depth >= MaxNesting) throw new InvalidCheckpointException(path, $"checkpoint nests containers deeper than {MaxNesting} levels");
            if (node is not (PickleDict or List<object?> or PickleTuple) || !seen.Add(node)) continue;
            string Child(string k) => prefix.Length == 0 ? k : prefix + "." + k;
            object? Fix(object? v, string name)
            {
                if (v is PickledTensor t) return t.Materialized ??= Materialize(t, name, path);
                if (v is not null) stack.Push((v, name, depth + 1));
                return v;
            }
            switch (node)
            {
                case PickleDict d:
                    var pairs = d.ToList();
                    for (int i = 0; i < pairs.Count; i++)
                        if (pairs[i].Value is PickledTensor) d.SetAt(i, Fix(pairs[i].Value, Child(KeyString(pairs[i].Key))));
                        else Fix(pairs[i].Value, Child(KeyString(pairs[i].Key)));
                    break;
                case List<object?> l:
                    for (int i = 0; i < l.Count; i++) l[i] = Fix(l[i], Child(i.ToString()));
                    break;
                case PickleTuple tu:
                    for (int i = 0; i < tu.Count; i++) tu.Items[i] = Fix(tu.Items[i], Child(i.ToString()));
                    break;
            }
        }
        return root;
    }

    private static string KeyString(object k) => k switch
    {
        string s => s,
        bool b => b ? "True" : "False",
        _ => k.ToString() ?? "",
    };
}
