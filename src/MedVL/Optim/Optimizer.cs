using System.Globalization;
using MedVL.Tensors;

namespace MedVL.Optim;

/// <summary>
/// Per-parameter optimizer state: torch's optimizer.state[p] (step count and float32 buffers such as exp_avg), plus
/// a float32 master copy of a bf16/f16 parameter ("master"), which the update reads and writes so that small updates
/// are not lost to bf16 rounding; the parameter receives the master rounded to its dtype after each step.
/// </summary>
public sealed class ParamState
{
    internal readonly Dictionary<string, Tensor> Buffers = new(StringComparer.Ordinal);
    /// <summary>Optimizer steps taken on this parameter (torch's state['step']; 0 before the first).</summary>
    public long Step { get; internal set; }
    public IReadOnlyDictionary<string, Tensor> BufferViews => Buffers;

    internal Tensor GetOrCreate(string name, Tensor param, bool zero = true)
    {
        if (!Buffers.TryGetValue(name, out var t))
        {
            t = zero ? Tensor.Zeros(param.ShapeArray()) : Tensor.Empty(param.ShapeArray());
            Buffers[name] = t;
        }
        return t;
    }

    internal void Clear()
    {
        foreach (var t in Buffers.Values) t.Dispose();
        Buffers.Clear();
        Step = 0;
    }
}

/// <summary>
/// Base of the optimizers: parameter groups, lazily created per-parameter state, zero_grad, the gradient hook
/// (data-parallel all-reduce point) and state_dict/load_state_dict as named tensors.
/// The training loop, as torch and HF Trainer order it:
/// <code>
/// loss.Backward();
/// optimizer.SynchronizeGradients(ct);          // data-parallel all-reduce (no-op without a GradientHook)
/// GradClip.ClipGradNorm(parameters, 1.0);      // on the averaged gradients
/// optimizer.Step(ct);
/// scheduler.Step();
/// optimizer.ZeroGrad();
/// </code>
/// State-dict keys: "state.{param}.{buffer}" (param = the parameter's Name when every parameter has a distinct
/// name, else its index in group order, as torch's integer ids) and "param_groups.{g}.{hyperparameter}".
/// </summary>
public abstract class Optimizer : IDisposable
{
    private const string MasterBuffer = "master";
    private readonly ParamGroup[] _groups;
    private readonly Tensor[] _params;
    private readonly string[] _keys;
    private readonly ParamState[] _states;
    private bool _gradientsSynchronized;
    private bool _disposed;

    protected Optimizer(IEnumerable<ParamGroup> groups)
    {
        ArgumentNullException.ThrowIfNull(groups);
        _groups = groups.ToArray();
        if (_groups.Length == 0) throw new ArgumentException($"{GetType().Name}: got an empty parameter group list");
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        var all = new List<Tensor>();
        for (int g = 0; g < _groups.Length; g++)
        {
            var group = _groups[g] ?? throw new ArgumentException($"{GetType().Name}: param group {g} is null");
            foreach (var p in group.Parameters)
            {
                if (!seen.Add(p))
                    throw new ArgumentException($"{GetType().Name}: parameter {p.Describe()} appears in more than one parameter group");
                if (p.GradFn is not null)
                    throw new ArgumentException($"{GetType().Name}: can only optimize leaf tensors; {p.Describe()} is the output of {p.GradFn.Name}");
                if (p.DType is not (DType.F32 or DType.BF16 or DType.F16))
                    throw new ArgumentException($"{GetType().Name}: parameter {p.Describe()} has dtype {p.DType}; expected f32, bf16 or f16");
                if (!p.IsContiguous)
                    throw new ArgumentException($"{GetType().Name}: parameter {p.Describe()} is not contiguous");
                all.Add(p);
            }
        }
        _params = all.ToArray();
        bool named = _params.All(p => p.Name is not null) && _params.Select(p => p.Name).Distinct(StringComparer.Ordinal).Count() == _params.Length;
        _keys = _params.Select((p, i) => named ? p.Name! : i.ToString(CultureInfo.InvariantCulture)).ToArray();
        _states = _params.Select(_ => new ParamState()).ToArray();
    }

    public IReadOnlyList<ParamGroup> ParamGroups => _groups;
    public IReadOnlyList<Tensor> Parameters => _params;

    /// <summary>
    /// Runs on every step's gradients between backward and clipping/update; plug a data-parallel all-reduce here
    /// (<see cref="DataParallelGradientHook"/>). Null: single process.
    /// </summary>
    public IGradientHook? GradientHook { get; set; }

    /// <summary>The state of a parameter (steps taken, moment buffers). Throws if it is not optimized here.</summary>
    public ParamState State(Tensor parameter) => _states[IndexOf(parameter)];

    /// <summary>
    /// Run <see cref="GradientHook"/> on the current gradients (once per step: a second call before
    /// <see cref="Step"/> does nothing). <see cref="Step"/> calls it itself if the loop did not.
    /// </summary>
    public void SynchronizeGradients(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        if (_gradientsSynchronized) return;
        GradientHook?.OnGradientsReady(_params, cancellationToken);
        _gradientsSynchronized = true;
    }

    /// <summary>One optimizer step over every parameter that has a gradient (parameters without one are skipped, as torch).</summary>
    public void Step(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        SynchronizeGradients(cancellationToken);
        int k = 0;
        for (int g = 0; g < _groups.Length; g++)
        {
            var group = _groups[g];
            var label = group.Label(g);
            foreach (var p in group.Parameters)
            {
                int index = k++;
                cancellationToken.ThrowIfCancellationRequested();
                var grad = p.Grad;
                if (grad is null) continue;
                if (grad.DType != DType.F32 || !grad.IsContiguous || !grad.Shape.SequenceEqual(p.Shape))
                    throw new InvalidOperationException($"{GetType().Name} ({label}): gradient {grad.Describe()} of parameter {p.Describe()} must be a contiguous float32 tensor of the parameter's shape");
                var state = _states[index];
                Span<float> values;
                Tensor? master = null;
                if (p.DType == DType.F32) values = p.Span<float>();
                else
                {
                    if (!state.Buffers.TryGetValue(MasterBuffer, out master))
                    {
                        master = p.To(DType.F32);
                        state.Buffers[MasterBuffer] = master;
                    }
                    values = master.Span<float>();
                }
                UpdateParameter(group, label, p, state, values, grad.Span<float>());
                if (master is not null)
                {
                    if (p.DType == DType.BF16) FloatConvert.F32ToBF16(master.Span<float>(), p.Span<ushort>());
                    else FloatConvert.F32ToF16(master.Span<float>(), p.Span<ushort>());
                }
            }
        }
        _gradientsSynchronized = false;
    }

    /// <summary>
    /// Update one parameter in place. <paramref name="values"/> is the float32 parameter (or its master copy);
    /// implementations create their buffers through <see cref="ParamState"/> on the first step.
    /// </summary>
    protected abstract void UpdateParameter(ParamGroup group, string groupLabel, Tensor parameter, ParamState state,
        Span<float> values, ReadOnlySpan<float> grad);

    /// <summary>The buffers this optimizer keeps for a parameter of <paramref name="group"/> (for state-dict validation).</summary>
    protected abstract IEnumerable<string> BufferNames(ParamGroup group);
    /// <summary>Whether per-parameter step counts are part of the state (Adam: yes; SGD: no, as torch).</summary>
    protected abstract bool HasStepCount { get; }
    /// <summary>The group hyperparameters saved in the state dict.</summary>
    protected abstract IEnumerable<(string Name, Func<ParamGroup, double?> Get, Action<ParamGroup, double> Set)> Hyperparameters { get; }

    /// <summary>Set every gradient to null (torch's set_to_none=True, the default since 2.0) or fill it with zeros.</summary>
    public void ZeroGrad(bool setToNone = true)
    {
        ThrowIfDisposed();
        foreach (var p in _params)
        {
            if (p.Grad is null) continue;
            if (setToNone)
            {
                p.Grad.Dispose();
                p.Grad = null;
            }
            else p.Grad.Span<float>().Clear();
        }
        _gradientsSynchronized = false;
    }

    /// <summary>
    /// The optimizer state as named tensors (copies; the caller disposes the returned dict): per-parameter step
    /// counts (int64 scalars) and float32 buffers, and every group's hyperparameters (float64 scalars, lr included).
    /// Writing it out and loading it into a fresh optimizer over the same parameters resumes bit-exactly.
    /// </summary>
    public TensorStateDict StateDict()
    {
        ThrowIfDisposed();
        var dict = new TensorStateDict();
        try
        {
            for (int i = 0; i < _params.Length; i++)
            {
                var s = _states[i];
                if (s.Step == 0 && s.Buffers.Count == 0) continue; // never stepped: torch has no entry either
                if (HasStepCount) dict.AddScalar($"state.{_keys[i]}.step", s.Step);
                foreach (var (name, t) in s.Buffers) dict.Add($"state.{_keys[i]}.{name}", t.Clone());
            }
            for (int g = 0; g < _groups.Length; g++)
            {
                var group = _groups[g];
                if (group.Lr is { } lr) dict.AddScalar($"param_groups.{g}.lr", lr);
                if (group.InitialLr is { } ilr) dict.AddScalar($"param_groups.{g}.initial_lr", ilr);
                foreach (var (name, get, _) in Hyperparameters)
                    if (get(group) is { } v) dict.AddScalar($"param_groups.{g}.{name}", v);
            }
        }
        catch
        {
            dict.Dispose();
            throw;
        }
        return dict;
    }

    /// <summary>
    /// Restore state written by <see cref="StateDict"/> (values are copied; the caller keeps ownership of
    /// <paramref name="state"/>). Every key must belong to this optimizer and every tensor must have its parameter's
    /// shape; parameters with no entries start fresh. Group hyperparameters present in the dict replace the current ones.
    /// </summary>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(state);
        var keyIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < _keys.Length; i++) keyIndex[_keys[i]] = i;
        var hyper = Hyperparameters.ToDictionary(h => h.Name, StringComparer.Ordinal);
        var groupOf = new int[_params.Length];
        for (int g = 0, k = 0; g < _groups.Length; g++)
            foreach (var _ in _groups[g].Parameters) groupOf[k++] = g;

        // Validate everything before changing anything.
        var parsed = new List<(int Param, string Buffer, Tensor Value)>();
        var groupValues = new List<(int Group, string Name, double Value)>();
        foreach (var (key, value) in state)
        {
            if (value is null) throw new ArgumentException($"optimizer state '{key}' is null");
            if (key.StartsWith("state.", StringComparison.Ordinal))
            {
                int dot = key.LastIndexOf('.');
                string pkey = dot > 6 ? key[6..dot] : "";
                string buffer = key[(dot + 1)..];
                if (!keyIndex.TryGetValue(pkey, out int pi))
                    throw new ArgumentException($"optimizer state '{key}': no parameter '{pkey}' in this {GetType().Name}");
                if (buffer == "step")
                {
                    if (!HasStepCount) throw new ArgumentException($"optimizer state '{key}': {GetType().Name} keeps no step count");
                    double step = TensorStateDict.ReadScalar(state, key);
                    if (step < 0 || step != Math.Floor(step)) throw new ArgumentException($"optimizer state '{key}': step must be a non-negative integer, got {step}");
                }
                else
                {
                    var p = _params[pi];
                    bool known = buffer == MasterBuffer ? p.DType != DType.F32 : BufferNames(_groups[groupOf[pi]]).Contains(buffer);
                    if (!known) throw new ArgumentException($"optimizer state '{key}': {GetType().Name} has no buffer '{buffer}' for parameter {p.Describe()}");
                    if (!value.Shape.SequenceEqual(p.Shape))
                        throw new ArgumentException($"optimizer state '{key}': shape {Tensor.FormatShape(value.Shape)} does not match parameter {p.Describe()}");
                }
                parsed.Add((pi, buffer, value));
            }
            else if (key.StartsWith("param_groups.", StringComparison.Ordinal))
            {
                var parts = key.Split('.');
                if (parts.Length != 3 || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int g) || g >= _groups.Length)
                    throw new ArgumentException($"optimizer state '{key}': expected param_groups.<index below {_groups.Length}>.<name>");
                string name = parts[2];
                if (name is not ("lr" or "initial_lr") && !hyper.ContainsKey(name))
                    throw new ArgumentException($"optimizer state '{key}': {GetType().Name} has no hyperparameter '{name}'");
                groupValues.Add((g, name, TensorStateDict.ReadScalar(state, key)));
            }
            else throw new ArgumentException($"optimizer state '{key}': expected a key starting with 'state.' or 'param_groups.'");
        }

        foreach (var s in _states) s.Clear();
        foreach (var (pi, buffer, value) in parsed)
        {
            var s = _states[pi];
            if (buffer == "step") s.Step = checked((long)TensorStateDict.ReadScalar(state, $"state.{_keys[pi]}.step"));
            else
            {
                var t = Tensor.Empty(_params[pi].ShapeArray());
                t.CopyFrom(value);
                s.Buffers[buffer] = t;
            }
        }
        foreach (var (g, name, v) in groupValues)
        {
            if (name == "lr") _groups[g].Lr = v;
            else if (name == "initial_lr") _groups[g].InitialLr = v;
            else hyper[name].Set(_groups[g], v);
        }
        _gradientsSynchronized = false;
    }

    private int IndexOf(Tensor parameter)
    {
        for (int i = 0; i < _params.Length; i++)
            if (ReferenceEquals(_params[i], parameter)) return i;
        throw new ArgumentException($"{parameter.Describe()} is not optimized by this {GetType().Name}");
    }

    protected static void Validate(bool ok, string group, string message)
    {
        if (!ok) throw new ArgumentException($"{group}: {message}");
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    /// <summary>Release the optimizer state (the parameters and their gradients stay with their owner).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var s in _states) s.Clear();
        GC.SuppressFinalize(this);
    }
}
