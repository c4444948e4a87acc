using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using MedVL.Tensors;

namespace MedVL.Formats;

/// <summary>
/// A memory-mapped, read-only safetensors file. The header is parsed and validated exactly as the reference
/// implementation does (huggingface/safetensors, <c>SafeTensors::read_metadata</c> and <c>Metadata::validate</c>):
/// u64 LE header length N ≤ 100,000,000; N bytes of UTF-8 JSON starting with '{' (trailing spaces allowed);
/// data_offsets relative to the byte buffer after the header, end exclusive; sorted by offset the tensors must tile the
/// buffer exactly (no holes, no overlaps, and the last one ends at end of file); byte length = numel × dtype size.
/// Tensor data is never copied at open: <see cref="TensorEntry.Data"/> is a span into the mapping.
/// </summary>
public sealed class SafetensorsFile : ITensorSource
{
    public const long MaxHeaderSize = 100_000_000;

    private readonly MappedFile _map;
    private readonly Dictionary<string, TensorEntry> _tensors;

    public string Path { get; }
    /// <summary>The "__metadata__" map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }
    /// <summary>Tensor names in storage order (increasing data offset).</summary>
    public IReadOnlyList<string> Names { get; }
    public IReadOnlyDictionary<string, TensorEntry> Tensors => _tensors;
    /// <summary>Header length N (bytes of JSON, including padding).</summary>
    public long HeaderSize { get; }
    /// <summary>Absolute file offset of the byte buffer (8 + N).</summary>
    public long DataOffset => 8 + HeaderSize;

    private SafetensorsFile(string path, MappedFile map, long headerSize, Dictionary<string, TensorEntry> tensors,
        IReadOnlyDictionary<string, string> metadata, IReadOnlyList<string> names)
    {
        Path = path; _map = map; HeaderSize = headerSize; _tensors = tensors; Metadata = metadata; Names = names;
    }

    public static SafetensorsFile Open(string path)
    {
        var map = new MappedFile(path);
        try
        {
            return Parse(path, map);
        }
        catch
        {
            map.Dispose();
            throw;
        }
    }

    public int Count => _tensors.Count;
    public bool Contains(string name) => _tensors.ContainsKey(name);
    public bool TryGet(string name, out TensorEntry entry) => _tensors.TryGetValue(name, out entry!);

    public TensorEntry this[string name] =>
        _tensors.TryGetValue(name, out var e) ? e : throw new KeyNotFoundException($"{Path}: no tensor named '{name}'");

    public void Dispose() => _map.Dispose();

    private sealed record Info(string Name, string DTypeName, int[] Shape, ulong Start, ulong End);

    private static SafetensorsFile Parse(string path, MappedFile map)
    {
        long fileLen = map.Length;
        if (fileLen < 8)
            throw new InvalidCheckpointException(path, $"file is {fileLen} bytes; a safetensors file starts with an 8-byte header length");
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(map.Span(0, 8));
        if (n > MaxHeaderSize)
            throw new InvalidCheckpointException(path, $"header length {n} exceeds the safetensors limit of {MaxHeaderSize} bytes");
        if ((long)n > fileLen - 8)
            throw new InvalidCheckpointException(path, $"header length {n} runs past the end of the file ({fileLen} bytes)");
        var header = map.Span(8, (int)n);
        if (header.Length == 0 || header[0] != (byte)'{')
            throw new InvalidCheckpointException(path, "header must be a JSON object starting with '{'");

        var (infos, metadata) = ParseHeader(path, header);

        // Validate the tiling as the reference Metadata::validate: sort by offsets, each start == previous end.
        var order = infos.Select((x, i) => (x, i)).OrderBy(p => p.x.Start).ThenBy(p => p.x.End).ThenBy(p => p.i).Select(p => p.x).ToList();
        ulong bufferLen = (ulong)(fileLen - 8) - n;
        ulong pos = 0;
        var tensors = new Dictionary<string, TensorEntry>(order.Count, StringComparer.Ordinal);
        var names = new List<string>(order.Count);
        foreach (var t in order)
        {
            if (t.End < t.Start)
                throw new InvalidCheckpointException(path, $"tensor '{t.Name}': data_offsets [{t.Start}, {t.End}] end before they start");
            if (t.Start != pos)
                throw new InvalidCheckpointException(path, t.Start > pos
                    ? $"tensor '{t.Name}': data_offsets start at {t.Start} but the previous tensor ends at {pos} (a hole in the byte buffer)"
                    : $"tensor '{t.Name}': data_offsets start at {t.Start}, overlapping the previous tensor which ends at {pos}");
            if (t.End > bufferLen)
                throw new InvalidCheckpointException(path, $"tensor '{t.Name}': data_offsets end {t.End} is past the byte buffer ({bufferLen} bytes after the header)");
            var dtype = SafetensorsDTypes.Parse(t.DTypeName, t.Name, path);
            ulong expected;
            try
            {
                checked
                {
                    ulong numel = 1;
                    foreach (int d in t.Shape) numel *= (ulong)d;
                    expected = numel * (ulong)dtype.SizeOf();
                }
            }
            catch (OverflowException)
            {
                throw new InvalidCheckpointException(path, $"tensor '{t.Name}': shape [{string.Join(", ", t.Shape)}] overflows 64-bit byte counts");
            }
            if (t.End - t.Start != expected)
                throw new InvalidCheckpointException(path,
                    $"tensor '{t.Name}': {dtype}[{string.Join(", ", t.Shape)}] needs {expected} bytes but data_offsets [{t.Start}, {t.End}] span {t.End - t.Start}");
            if (expected > int.MaxValue)
                throw new InvalidCheckpointException(path, $"tensor '{t.Name}' is {expected} bytes; MedVL limits a single tensor to 2 GiB");
            pos = t.End;
            var mem = map.Memory(8 + (long)n + (long)t.Start, (int)expected);
            tensors.Add(t.Name, new TensorEntry(t.Name, dtype, t.Shape, TensorEntry.ContiguousStrides(t.Shape), 0, mem, map, path, null));
            names.Add(t.Name);
        }
        if (pos != bufferLen)
            throw new InvalidCheckpointException(path, $"tensors cover {pos} bytes of the {bufferLen}-byte buffer; the file has trailing or missing data");
        return new SafetensorsFile(path, map, (long)n, tensors, metadata, names);
    }

    private static (List<Info>, Dictionary<string, string>) ParseHeader(string path, ReadOnlySpan<byte> header)
    {
        var infos = new List<Info>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            var r = new Utf8JsonReader(header, new JsonReaderOptions { MaxDepth = 8, CommentHandling = JsonCommentHandling.Disallow });
            if (!r.Read() || r.TokenType != JsonTokenType.StartObject) throw Bad(path, "header is not a JSON object");
            while (true)
            {
                Next(ref r, path);
                if (r.TokenType == JsonTokenType.EndObject) break;
                string key = r.GetString()!;
                if (!seen.Add(key)) throw Bad(path, $"duplicate key '{key}' in header");
                Next(ref r, path);
                if (key == "__metadata__")
                {
                    if (r.TokenType == JsonTokenType.Null) continue;
                    Expect(ref r, JsonTokenType.StartObject, path, "__metadata__", "an object of string values");
                    while (true)
                    {
                        Next(ref r, path);
                        if (r.TokenType == JsonTokenType.EndObject) break;
                        string mk = r.GetString()!;
                        Next(ref r, path);
                        Expect(ref r, JsonTokenType.String, path, $"__metadata__.{mk}", "a string");
                        if (!metadata.TryAdd(mk, r.GetString()!)) throw Bad(path, $"duplicate key '{mk}' in __metadata__");
                    }
                    continue;
                }
                infos.Add(ParseTensorInfo(ref r, key, path));
            }
            if (r.Read()) throw Bad(path, "unexpected content after the header's JSON object");
        }
        catch (JsonException e)
        {
            throw new InvalidCheckpointException(path, $"header is not valid JSON: {e.Message}", e);
        }
        catch (InvalidOperationException e) // Utf8JsonReader.GetString on invalid UTF-8 escapes
        {
            throw new InvalidCheckpointException(path, $"header is not valid JSON/UTF-8: {e.Message}", e);
        }
        return (infos, metadata);
    }

    private static Info ParseTensorInfo(ref Utf8JsonReader r, string name, string path)
    {
        Expect(ref r, JsonTokenType.StartObject, path, name, "an object with dtype, shape and data_offsets");
        string? dtype = null; int[]? shape = null; ulong[]? offsets = null;
        var fields = new HashSet<string>(StringComparer.Ordinal);
        while (true)
        {
            Next(ref r, path);
            if (r.TokenType == JsonTokenType.EndObject) break;
            string f = r.GetString()!;
            if (!fields.Add(f)) throw Bad(path, $"tensor '{name}': duplicate field '{f}'");
            Next(ref r, path);
            switch (f)
            {
                case "dtype":
                    Expect(ref r, JsonTokenType.String, path, $"{name}.dtype", "a string");
                    dtype = r.GetString();
                    break;
                case "shape":
                    Expect(ref r, JsonTokenType.StartArray, path, $"{name}.shape", "an array of non-negative integers");
                    var dims = new List<int>();
                    while (true)
                    {
                        Next(ref r, path);
                        if (r.TokenType == JsonTokenType.EndArray) break;
                        if (r.TokenType != JsonTokenType.Number || !r.TryGetUInt64(out ulong d))
                            throw Bad(path, $"tensor '{name}': shape entries must be non-negative integers");
                        if (d > int.MaxValue) throw Bad(path, $"tensor '{name}': dimension {d} exceeds {int.MaxValue}");
                        if (dims.Count >= TensorEntry.MaxRank) throw Bad(path, $"tensor '{name}': rank exceeds {TensorEntry.MaxRank}");
                        dims.Add((int)d);
                    }
                    shape = dims.ToArray();
                    break;
                case "data_offsets":
                    Expect(ref r, JsonTokenType.StartArray, path, $"{name}.data_offsets", "[begin, end]");
                    var offs = new List<ulong>(2);
                    while (true)
                    {
                        Next(ref r, path);
                        if (r.TokenType == JsonTokenType.EndArray) break;
                        if (r.TokenType != JsonTokenType.Number || !r.TryGetUInt64(out ulong o) || offs.Count >= 2)
                            throw Bad(path, $"tensor '{name}': data_offsets must be exactly two non-negative integers [begin, end]");
                        offs.Add(o);
                    }
                    if (offs.Count != 2) throw Bad(path, $"tensor '{name}': data_offsets must be exactly two non-negative integers [begin, end]");
                    offsets = offs.ToArray();
                    break;
                default:
                    r.Skip(); // the reference deserializer ignores unknown fields
                    break;
            }
        }
        if (dtype is null) throw Bad(path, $"tensor '{name}': missing field 'dtype'");
        if (shape is null) throw Bad(path, $"tensor '{name}': missing field 'shape'");
        if (offsets is null) throw Bad(path, $"tensor '{name}': missing field 'data_offsets'");
        return new Info(name, dtype, shape, offsets[0], offsets[1]);
    }

    private static void Next(ref Utf8JsonReader r, string path)
    {
        if (!r.Read()) throw Bad(path, "header JSON ends unexpectedly");
    }

    private static void Expect(ref Utf8JsonReader r, JsonTokenType t, string path, string field, string what)
    {
        if (r.TokenType != t) throw Bad(path, $"'{field}' must be {what}, found {r.TokenType}");
    }

    private static InvalidCheckpointException Bad(string path, string msg) => new(path, msg);
}
