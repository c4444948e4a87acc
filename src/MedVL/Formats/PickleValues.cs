using System.Collections;

namespace MedVL.Formats;

/// <summary>A Python tuple from a pickle: immutable, compared structurally (so it can be a dict key).</summary>
public sealed class PickleTuple : IReadOnlyList<object?>, IEquatable<PickleTuple>
{
    internal readonly object?[] Items;
    public static readonly PickleTuple Empty = new([]);

    /// <summary>Tuple-in-tuple nesting (Equals and ToString recurse through it, so the unpickler bounds it).</summary>
    public int Depth { get; }

    public PickleTuple(object?[] items)
    {
        Items = items;
        int d = 0;
        foreach (var x in items) if (x is PickleTuple t && t.Depth > d) d = t.Depth;
        Depth = d + 1;
    }
    public object? this[int index] => Items[index];
    public int Count => Items.Length;
    public IEnumerator<object?> GetEnumerator() => ((IEnumerable<object?>)Items).GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => Items.GetEnumerator();
    public bool Equals(PickleTuple? other) =>
        other is not null && other.Items.Length == Items.Length && Items.Zip(other.Items).All(p => Equals(p.First, p.Second));
    public override bool Equals(object? obj) => Equals(obj as PickleTuple);
    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var x in Items) h.Add(x is PickleTuple ? 0 : x); // nested tuples: shallow hash keeps it bounded
        return h.ToHashCode();
    }
    /// <summary>A short rendering for error messages: at most 3 levels and 8 items per level.</summary>
    public override string ToString() => Format(3);

    private string Format(int levels)
    {
        if (levels == 0) return "(...)";
        var parts = Items.Take(8).Select(x => x switch
        {
            null => "None",
            PickleTuple t => t.Format(levels - 1),
            string s => "'" + (s.Length > 40 ? s[..40] + "..." : s) + "'",
            _ => x.ToString() ?? "",
        });
        return "(" + string.Join(", ", parts) + (Items.Length > 8 ? ", ...)" : Items.Length == 1 ? ",)" : ")");
    }
}

/// <summary>A Python dict or collections.OrderedDict from a pickle; insertion order is preserved.</summary>
public sealed class PickleDict : IEnumerable<KeyValuePair<object, object?>>
{
    private readonly OrderedDictionary<object, object?> _items = new();
    /// <summary>True when it was built by collections.OrderedDict (state_dicts are).</summary>
    public bool IsOrderedDict { get; internal set; }
    /// <summary>Attributes set by BUILD (an OrderedDict's __dict__, e.g. a state_dict's _metadata); kept, not interpreted.</summary>
    public PickleDict? Attributes { get; internal set; }

    public int Count => _items.Count;
    public object? this[object key] => _items[key];
    public bool TryGetValue(object key, out object? value) => _items.TryGetValue(key, out value);
    public IEnumerable<object> Keys => _items.Keys;
    internal void Set(object key, object? value) => _items[key] = value;
    internal void SetAt(int index, object? value) => _items.SetAt(index, value);
    public IEnumerator<KeyValuePair<object, object?>> GetEnumerator() => _items.GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>A Python set/frozenset from a pickle (kept as a list of items).</summary>
public sealed class PickleSet(List<object?> items)
{
    public List<object?> Items { get; } = items;
}

/// <summary>A reference to an allow-listed global (module.name). Never resolved to code: the unpickler interprets it.</summary>
public sealed record PickleGlobal(string Module, string Name)
{
    public string FullName => $"{Module}.{Name}";
    public override string ToString() => FullName;
}
