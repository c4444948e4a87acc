using System.Buffers.Binary;
using System.Numerics;
using System.Text;
using MedVL.Tensors;

namespace MedVL.Formats;

/// <summary>A torch storage named by a persistent id: ('storage', torch.XStorage, key, location, numel[, view_metadata]).</summary>
internal sealed class StorageRef(string key, DType dtype, long numel, string location)
{
    public string Key { get; } = key;
    public DType DType { get; } = dtype;
    public long Numel { get; } = numel;
    public string Location { get; } = location;
    public ReadOnlyMemory<byte>? Bytes { get; set; }
    public MappedFile? Owner { get; set; }
}

/// <summary>What torch._utils._rebuild_tensor_v2 / _rebuild_parameter would have produced, before storages are attached.</summary>
internal sealed class PickledTensor(StorageRef storage, long offset, int[] size, long[] stride)
{
    public StorageRef Storage { get; } = storage;
    public long Offset { get; } = offset;
    public int[] Size { get; } = size;
    public long[] Stride { get; } = stride;
    public bool RequiresGrad { get; set; }
    public bool IsParameter { get; set; }
    public TensorEntry? Materialized { get; set; }
}

/// <summary>
/// A restricted pickle virtual machine (opcodes of protocols 0-5 that data pickles use; format per CPython
/// Lib/pickletools.py). Nothing is imported or executed: GLOBAL/STACK_GLOBAL only produce <see cref="PickleGlobal"/>
/// markers for an allow-list, and REDUCE/NEWOBJ/BUILD are interpreted for those markers alone (tensor and parameter
/// rebuilds, OrderedDict, torch.Size, _codecs.encode for protocol-2 bytes). Any other global is rejected with
/// <see cref="UnsafePickleException"/>. Every length is checked against the remaining input before allocating, and the
/// stack, mark depth, memo and integer sizes are bounded, so hostile input fails fast with an
/// <see cref="InvalidCheckpointException"/>.
/// </summary>
internal sealed class Unpickler
{
    public const int MaxMemo = 1 << 22;
    public const int MaxStack = 1 << 24;
    public const int MaxMarkDepth = 1 << 12;
    public const int MaxLineLength = 1024;
    public const int MaxLongBytes = 64;
    public const int MaxTupleNesting = 256;
    /// <summary>Total items that may be placed into lists, dicts and sets over one load.</summary>
    public const long MaxContainerElements = 1L << 26;

    private readonly ReadOnlyMemory<byte> _data;
    private readonly string _path;
    private readonly Func<PickleTuple, object?>? _persistentLoad;
    private readonly Dictionary<long, object?> _memo = new();
    private List<object?> _stack = new();
    private readonly Stack<List<object?>> _marks = new();
    private int _pos;
    private long _elements;

    public int Position => _pos;

    public Unpickler(ReadOnlyMemory<byte> data, int start, string path, Func<PickleTuple, object?>? persistentLoad)
    {
        _data = data; _pos = start; _path = path; _persistentLoad = persistentLoad;
    }

    /// <summary>Allowed globals. Storage types map to the dtype torch gives tensors built on them.</summary>
    internal static readonly Dictionary<string, DType> StorageTypes = new(StringComparer.Ordinal)
    {
        ["FloatStorage"] = DType.F32, ["HalfStorage"] = DType.F16, ["BFloat16Storage"] = DType.BF16,
        ["DoubleStorage"] = DType.F64, ["LongStorage"] = DType.I64, ["IntStorage"] = DType.I32,
        ["ShortStorage"] = DType.I16, ["CharStorage"] = DType.I8, ["ByteStorage"] = DType.U8, ["BoolStorage"] = DType.Bool,
    };

    private static readonly HashSet<string> AllowedCallables = new(StringComparer.Ordinal)
    {
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
        "torch._tensor._rebuild_from_type_v2", "torch.Tensor", "torch.nn.parameter.Parameter",
        "torch.Size", "torch.device", "_codecs.encode",
    };

    private Exception Bad(string msg) => new InvalidCheckpointException(_path, $"pickle: {msg} (at byte {_pos})");

    private PickleGlobal FindClass(string module, string name)
    {
        string full = module + "." + name;
        if (module == "__builtin__") full = "builtins." + name;
        if (AllowedCallables.Contains(full)) return new PickleGlobal(module, name);
        if (module == "torch" && StorageTypes.ContainsKey(name)) return new PickleGlobal(module, name);
        if (module == "torch" && name.EndsWith("Storage", StringComparison.Ordinal))
            throw new InvalidCheckpointException(_path, $"unsupported storage type torch.{name} (MedVL has no matching dtype)");
        throw new UnsafePickleException(_path, full);
    }

    public object? Load()
    {
        var span = _data.Span;
        while (true)
        {
            if (_pos >= span.Length) throw Bad("input ends before STOP");
            byte op = span[_pos++];
            switch (op)
            {
                case 0x80: ReadByte(); break;                                       // PROTO
                case 0x95: ReadU64(); break;                                         // FRAME (framing is advisory)
                case 0x2e: return Pop();                                             // STOP
                case 0x28: PushMark(); break;                                        // MARK
                case 0x30: Pop(); break;                                             // POP
                case 0x31: PopMark(); break;                                         // POP_MARK
                case 0x32: Push(Peek()); break;                                      // DUP
                case 0x4e: Push(null); break;                                        // NONE
                case 0x88: Push(true); break;                                        // NEWTRUE
                case 0x89: Push(false); break;                                       // NEWFALSE
                case 0x4a: Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break;   // BININT
                case 0x4b: Push((long)ReadByte()); break;                                          // BININT1
                case 0x4d: Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break;  // BININT2
                case 0x8a: Push(ReadLong(ReadByte())); break;                                      // LONG1
                case 0x8b: Push(ReadLong(ReadLength(BinaryPrimitives.ReadInt32LittleEndian(Take(4))))); break; // LONG4
                case 0x47: Push(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break;            // BINFLOAT
                case 0x58: Push(Utf8(ReadLength(BinaryPrimitives.ReadUInt32LittleEndian(Take(4))))); break; // BINUNICODE
                case 0x8c: Push(Utf8(ReadByte())); break;                                          // SHORT_BINUNICODE
                case 0x8d: Push(Utf8(ReadLength(ReadU64()))); break;                               // BINUNICODE8
                case 0x54: Push(Encoding.Latin1.GetString(Take(ReadLength(BinaryPrimitives.ReadInt32LittleEndian(Take(4)))))); break; // BINSTRING
                case 0x55: Push(Encoding.Latin1.GetString(Take(ReadByte()))); break;              // SHORT_BINSTRING
                case 0x42: Push(Take(ReadLength(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))).ToArray()); break; // BINBYTES
                case 0x43: Push(Take(ReadByte()).ToArray()); break;                                // SHORT_BINBYTES
                case 0x8e: Push(Take(ReadLength(ReadU64())).ToArray()); break;                     // BINBYTES8
                case 0x96: Push(Take(ReadLength(ReadU64())).ToArray()); break;                     // BYTEARRAY8
                case 0x29: Push(PickleTuple.Empty); break;                                         // EMPTY_TUPLE
                case 0x85: { var a = Pop(); Push(Tuple([a])); break; }                   // TUPLE1
                case 0x86: { var b = Pop(); var a = Pop(); Push(Tuple([a, b])); break; } // TUPLE2
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(Tuple([a, b, c])); break; } // TUPLE3
                case 0x74: Push(Tuple(PopMark().ToArray())); break;                      // TUPLE
                case 0x5d: Push(new List<object?>()); break;                                       // EMPTY_LIST
                case 0x6c: Push(PopMark()); break;                                                 // LIST
                case 0x7d: Push(new PickleDict()); break;                                          // EMPTY_DICT
                case 0x64: { var items = PopMark(); var d = new PickleDict(); SetItems(d, items); Push(d); break; } // DICT
                case 0x8f: Push(new PickleSet(new List<object?>())); break;                        // EMPTY_SET
                case 0x90: { var items = PopMark(); if (Peek() is not PickleSet s) throw Bad("ADDITEMS target is not a set"); Count(items.Count); s.Items.AddRange(items); break; }
                case 0x91: Push(new PickleSet(PopMark())); break;                                  // FROZENSET
                case 0x61: { var v = Pop(); Count(1); AsList(Peek(), "APPEND").Add(v); break; }    // APPEND
                case 0x65: { var items = PopMark(); Count(items.Count); AsList(Peek(), "APPENDS").AddRange(items); break; } // APPENDS
                case 0x73: { var v = Pop(); var k = Pop(); SetItem(Peek(), k, v); break; }         // SETITEM
                case 0x75: { var items = PopMark(); var d = Peek(); SetItems(d, items); break; }   // SETITEMS
                case 0x71: MemoPut(ReadByte()); break;                                             // BINPUT
                case 0x72: MemoPut(BinaryPrimitives.ReadUInt32LittleEndian(Take(4))); break;      // LONG_BINPUT
                case 0x94: MemoPut(_memo.Count); break;                                            // MEMOIZE
                case 0x68: Push(MemoGet(ReadByte())); break;                                       // BINGET
                case 0x6a: Push(MemoGet(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))); break; // LONG_BINGET
                case 0x63: { var m = ReadLine(); var n = ReadLine(); Push(FindClass(m, n)); break; } // GLOBAL
                case 0x93:                                                                           // STACK_GLOBAL
                {
                    var n = Pop(); var m = Pop();
                    if (m is not string ms || n is not string ns) throw Bad("STACK_GLOBAL needs two strings");
                    Push(FindClass(ms, ns));
                    break;
                }
                case 0x52: { var args = Pop(); var f = Pop(); Push(Reduce(f, args)); break; }      // REDUCE
                case 0x81: { var args = Pop(); var cls = Pop(); Push(NewObj(cls, args)); break; }  // NEWOBJ
                case 0x92: { Pop(); var args = Pop(); var cls = Pop(); Push(NewObj(cls, args)); break; } // NEWOBJ_EX (kwargs ignored)
                case 0x62: { var state = Pop(); Build(Peek(), state); break; }                     // BUILD
                case 0x51:                                                                           // BINPERSID
                {
                    var pid = Pop();
                    if (_persistentLoad is null) throw Bad("persistent id in a pickle that must not have any");
                    if (pid is not PickleTuple t) throw Bad("persistent id is not a tuple");
                    Push(_persistentLoad(t));
                    break;
                }
                default:
                    throw Bad(op switch
                    {
                        0x69 or 0x6f => $"opcode {(op == 0x69 ? "INST" : "OBJ")} instantiates arbitrary classes and is not supported",
                        0x82 or 0x83 or 0x84 => "extension registry opcodes (EXT1/2/4) are not supported",
                        0x97 or 0x98 => "out-of-band buffers (protocol 5) are not supported",
                        _ => $"unsupported or invalid opcode 0x{op:x2}",
                    });
            }
        }
    }

    // ---- interpretation of allow-listed callables (pure data transformations) ----------------------------------

    private object? Reduce(object? f, object? args)
    {
        if (f is not PickleGlobal g) throw Bad($"REDUCE on a non-callable {Describe(f)}");
        if (args is not PickleTuple a) throw Bad($"REDUCE arguments for {g.FullName} are not a tuple");
        switch (g.FullName)
        {
            case "collections.OrderedDict":
                if (a.Count != 0) throw Bad("collections.OrderedDict with constructor arguments is not supported");
                return new PickleDict { IsOrderedDict = true };
            case "torch._utils._rebuild_tensor_v2": // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
                if (a.Count is < 6 or > 7) throw Bad($"_rebuild_tensor_v2 takes 6 or 7 arguments, got {a.Count}");
                return RebuildTensor(a, requiresGrad: a[4] is true);
            case "torch._utils._rebuild_tensor": // legacy: (storage, storage_offset, size, stride)
                if (a.Count != 4) throw Bad($"_rebuild_tensor takes 4 arguments, got {a.Count}");
                return RebuildTensor(a, requiresGrad: false);
            case "torch._utils._rebuild_parameter": // (data, requires_grad, backward_hooks)
            case "torch._utils._rebuild_parameter_with_state": // (data, requires_grad, backward_hooks, state)
            {
                if (a.Count < 3 || a[0] is not PickledTensor t) throw Bad($"{g.Name} expects (tensor, requires_grad, backward_hooks, ...)");
                t.IsParameter = true;
                t.RequiresGrad = a[1] is true;
                return t;
            }
            case "torch._tensor._rebuild_from_type_v2": // (func, type, args, state): only plain torch.Tensor/Parameter types
            {
                if (a.Count != 4 || a[1] is not PickleGlobal { FullName: "torch.Tensor" or "torch.nn.parameter.Parameter" })
                    throw Bad("_rebuild_from_type_v2 is only supported for torch.Tensor (tensor subclasses are not loaded)");
                return Reduce(a[0], a[2]);
            }
            case "torch.Size":
                if (a.Count != 1 || a[0] is not PickleTuple sz) throw Bad("torch.Size expects one tuple");
                return sz;
            case "torch.device":
                if (a.Count is < 1 or > 2 || a[0] is not string dev) throw Bad("torch.device expects a string");
                return a.Count == 2 ? $"{dev}:{a[1]}" : dev;
            case "_codecs.encode": // protocol 2 pickles Python 3 bytes as _codecs.encode(str, 'latin1')
                if (a.Count != 2 || a[0] is not string s || a[1] is not ("latin1" or "latin-1"))
                    throw Bad("_codecs.encode is only supported as (str, 'latin1')");
                return Encoding.Latin1.GetBytes(s);
            default:
                throw Bad($"{g.FullName} cannot be called (it is only valid as a storage type or type marker)");
        }
    }

    private object? NewObj(object? cls, object? args)
    {
        if (cls is PickleGlobal { FullName: "collections.OrderedDict" }) return new PickleDict { IsOrderedDict = true };
        throw Bad($"NEWOBJ of {Describe(cls)} is not supported");
    }

    private void Build(object? target, object? state)
    {
        switch (target)
        {
            case PickleDict d when state is PickleDict attrs: d.Attributes = attrs; return; // OrderedDict.__dict__ (state_dict._metadata)
            case PickleDict when state is null: return;
            case PickledTensor: return; // tensor python state (e.g. _rebuild_parameter_with_state extras) carries no data
            default: throw Bad($"BUILD on {Describe(target)} is not supported");
        }
    }

    private PickledTensor RebuildTensor(PickleTuple a, bool requiresGrad)
    {
        if (a[0] is not StorageRef st) throw Bad($"tensor rebuild expects a storage, got {Describe(a[0])}");
        if (a[1] is not long off) throw Bad("tensor storage_offset must be an int");
        if (a[2] is not PickleTuple size || a[3] is not PickleTuple stride) throw Bad("tensor size/stride must be tuples");
        if (size.Count != stride.Count) throw Bad($"tensor size has {size.Count} dims but stride has {stride.Count}");
        if (size.Count > TensorEntry.MaxRank) throw Bad($"tensor rank {size.Count} exceeds {TensorEntry.MaxRank}");
        var shape = new int[size.Count];
        var strides = new long[size.Count];
        for (int i = 0; i < shape.Length; i++)
        {
            if (size[i] is not long d || d < 0 || d > int.MaxValue) throw Bad($"tensor size entry {Describe(size[i])} is not a valid dimension");
            if (stride[i] is not long s || s < 0) throw Bad($"tensor stride entry {Describe(stride[i])} is not a non-negative int");
            shape[i] = (int)d; strides[i] = s;
        }
        return new PickledTensor(st, off, shape, strides) { RequiresGrad = requiresGrad };
    }

    // ---- stack, memo and input helpers ---------------------------------------------------------------------

    private void Push(object? o)
    {
        if (_stack.Count >= MaxStack) throw Bad($"stack exceeds {MaxStack} items");
        _stack.Add(o);
    }

    private object? Pop()
    {
        if (_stack.Count == 0) throw Bad("stack underflow");
        var o = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return o;
    }

    private object? Peek() => _stack.Count == 0 ? throw Bad("stack underflow") : _stack[^1];

    private void PushMark()
    {
        if (_marks.Count >= MaxMarkDepth) throw Bad($"MARK nesting exceeds {MaxMarkDepth}");
        _marks.Push(_stack);
        _stack = new List<object?>();
    }

    private List<object?> PopMark()
    {
        if (_marks.Count == 0) throw Bad("no MARK on the stack");
        var items = _stack;
        _stack = _marks.Pop();
        return items;
    }

    private void MemoPut(long index)
    {
        if (_memo.Count >= MaxMemo && !_memo.ContainsKey(index)) throw Bad($"memo exceeds {MaxMemo} entries");
        _memo[index] = Peek();
    }

    private object? MemoGet(long index) =>
        _memo.TryGetValue(index, out var v) ? v : throw Bad($"memo key {index} was never stored");


    private List<object?> AsList(object? o, string op) => o as List<object?> ?? throw Bad($"{op} target is {Describe(o)}, not a list");

    private PickleTuple Tuple(object?[] items)
    {
        var t = new PickleTuple(items);
        if (t.Depth > MaxTupleNesting) throw Bad($"tuples nest deeper than {MaxTupleNesting} levels");
        return t;
    }

    private void Count(long n)
    {
        _elements += n;
        if (_elements > MaxContainerElements) throw Bad($"containers hold more than {MaxContainerElements} items in total");
    }

    private void SetItem(object? target, object? key, object? value)
    {
        Count(1);
        if (target is not PickleDict d) throw Bad($"SETITEM target is {Describe(target)}, not a dict");
        if (key is null or List<object?> or PickleDict or PickleSet or PickledTensor or StorageRef)
            throw Bad($"unhashable or unsupported dict key {Describe(key)}");
        d.Set(key, value);
    }

    private void SetItems(object? target, List<object?> items)
    {
        if (items.Count % 2 != 0) throw Bad("SETITEMS with an odd number of items");
        for (int i = 0; i < items.Count; i += 2) SetItem(target, items[i], items[i + 1]);
    }

    private byte ReadByte()
    {
        var s = _data.Span;
        if (_pos >= s.Length) throw Bad("input truncated");
        return s[_pos++];
    }

    private ulong ReadU64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8));

    private int ReadLength(long n)
    {
        if (n < 0 || n > _data.Length - _pos) throw Bad($"length {n} exceeds the {_data.Length - _pos} bytes left");
        return (int)n;
    }

    private int ReadLength(ulong n) => n > int.MaxValue ? throw Bad($"length {n} exceeds the {_data.Length - _pos} bytes left") : ReadLength((long)n);

    private ReadOnlySpan<byte> Take(int n)
    {
        if (n < 0 || n > _data.Length - _pos) throw Bad($"input truncated (needs {n} more bytes, {_data.Length - _pos} left)");
        var s = _data.Span.Slice(_pos, n);
        _pos += n;
        return s;
    }

    private string Utf8(int n)
    {
        var bytes = Take(n);
        try { return StrictUtf8.GetString(bytes); }
        catch (DecoderFallbackException) { throw Bad("string is not valid UTF-8"); }
    }

    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    private object ReadLong(int n)
    {
        if (n > MaxLongBytes) throw Bad($"integer of {n} bytes exceeds the {MaxLongBytes}-byte limit");
        var b = Take(n);
        if (n == 0) return 0L;
        var big = new BigInteger(b, isUnsigned: false, isBigEndian: false); // two's complement, little-endian
        if (big >= long.MinValue && big <= long.MaxValue) return (long)big; // (a ?: would widen both arms to BigInteger)
        return big;
    }

    private string ReadLine()
    {
        var s = _data.Span;
        int start = _pos;
        int end = s[start..].IndexOf((byte)'\n');
        if (end < 0 || end > MaxLineLength) throw Bad("GLOBAL name is not a short newline-terminated line");
        _pos = start + end + 1;
        return Encoding.ASCII.GetString(s.Slice(start, end));
    }

    internal static string Describe(object? o) => o switch
    {
        null => "None",
        PickleGlobal g => g.FullName,
        PickledTensor => "a tensor",
        StorageRef => "a storage",
        string => "a str",
        _ => o.GetType().Name,
    };
}

/// <summary>
/// Public entry to the restricted unpickler for plain pickle files (no persistent ids). Same allow-list and bounds as
/// checkpoint loading: anything outside it raises <see cref="UnsafePickleException"/>; nothing is executed.
/// </summary>
public static class SafePickle
{
    public static object? Load(ReadOnlyMemory<byte> data, string nameForErrors) =>
        new Unpickler(data, 0, nameForErrors, null).Load();

    public static object? Load(string path) => Load(File.ReadAllBytes(path), path);
}
