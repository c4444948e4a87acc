namespace MedVL.Models.Blocks;

/// <summary>
/// A per-call value that flows with the async context (AsyncLocal) for the duration of a scope: how a forward call hands
/// its adapter selection or routing collector to the layers without storing anything on the shared model.
/// </summary>
public sealed class CallContext<T> where T : class
{
    private readonly AsyncLocal<T?> _value = new();

    public T? Current => _value.Value;

    /// <summary>Makes <paramref name="value"/> current until the scope is disposed (then the previous value returns).</summary>
    public Scope Use(T? value)
    {
        var previous = _value.Value;
        _value.Value = value;
        return new Scope(this, previous);
    }

    /// <summary>As <see cref="Use"/> when <paramref name="value"/> is set; otherwise a scope that changes nothing.</summary>
    public Scope UseIfSet(T? value) => value is null ? default : Use(value);

    public readonly struct Scope(CallContext<T>? owner, T? previous) : IDisposable
    {
        public void Dispose()
        {
            if (owner is not null) owner._value.Value = previous;
        }
    }
}
