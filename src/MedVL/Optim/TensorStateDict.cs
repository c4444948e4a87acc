using System.Collections;
using System.Diagnostics.CodeAnalysis;

namespace MedVL.Optim;

/// <summary>
/// Named tensors (an optimizer's or scheduler's state) that the dictionary owns: Dispose releases every tensor.
/// Keys use '.' separators so the whole dict can be written as one safetensors file and read back.
/// </summary>
public sealed class TensorStateDict : IReadOnlyDictionary<string, Tensor>, IDisposable
{
    private readonly Dictionary<string, Tensor> _items = new(StringComparer.Ordinal);

    internal void Add(string key, Tensor value)
    {
        if (!_items.TryAdd(key, value))
        {
            value.Dispose();
            throw new InvalidOperationException($"duplicate state key '{key}'");
        }
    }

    internal void AddScalar(string key, double value) => Add(key, Tensor.FromArray(new[] { value }, Array.Empty<int>()));
    internal void AddScalar(string key, long value) => Add(key, Tensor.FromArray(new[] { value }, Array.Empty<int>()));

    public Tensor this[string key] => _items[key];
    public IEnumerable<string> Keys => _items.Keys;
    public IEnumerable<Tensor> Values => _items.Values;
    public int Count => _items.Count;
    public bool ContainsKey(string key) => _items.ContainsKey(key);
    public bool TryGetValue(string key, [MaybeNullWhen(false)] out Tensor value) => _items.TryGetValue(key, out value);
    public IEnumerator<KeyValuePair<string, Tensor>> GetEnumerator() => _items.GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public void Dispose()
    {
        foreach (var t in _items.Values) t.Dispose();
        _items.Clear();
    }

    /// <summary>Read a scalar entry of any numeric dtype as double (names the key on failure).</summary>
    internal static double ReadScalar(IReadOnlyDictionary<string, Tensor> state, string key)
    {
        var t = state[key];
        if (t.Numel != 1) throw new ArgumentException($"optimizer state '{key}': expected a scalar, got {t.Describe()}");
        return t.DType switch
        {
            Tensors.DType.F64 => t.ToArray<double>()[0],
            Tensors.DType.I64 => t.ToArray<long>()[0],
            Tensors.DType.I32 => t.ToArray<int>()[0],
            Tensors.DType.F32 => t.ToArray<float>()[0],
            _ => throw new ArgumentException($"optimizer state '{key}': expected a numeric scalar, got {t.Describe()}"),
        };
    }
}
