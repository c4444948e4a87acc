namespace MedVL.Models.Blocks;

/// <summary>
/// The adapters one forward call runs with: the names of the adapter sets to apply (LoRA, H-LoRA plugins, …, attached
/// to the shared model by MedVL.Adapters), whether it is a training call (adapter dropout on, drawn from
/// <see cref="DropoutRng"/>), and optional per-task replacements of the token embeddings and the output head (HealthGPT's
/// generation plugin brings its own, with the extended vocabulary). Nothing here is stored on the model: the selection
/// travels with the call (<see cref="DecoderForwardOptions.Adapters"/>, or <see cref="Use"/> around any code that runs
/// the model's layers), so two requests with different adapters can run on one model instance at the same time.
/// </summary>
public sealed class AdapterSelection
{
    private static readonly CallContext<AdapterSelection> s_current = new();

    public AdapterSelection(IEnumerable<string> names, bool training = false, Random? dropoutRng = null)
    {
        Names = new HashSet<string>(names, StringComparer.Ordinal);
        Training = training;
        if (training && dropoutRng is null) throw new ArgumentException("a training selection needs a dropout RNG (seeded by the trainer)", nameof(dropoutRng));
        DropoutRng = dropoutRng;
    }

    /// <summary>Base model only.</summary>
    public static AdapterSelection None { get; } = new(Array.Empty<string>());

    public IReadOnlySet<string> Names { get; }
    public bool Training { get; }
    public Random? DropoutRng { get; }
    /// <summary>Replaces model.embed_tokens.weight [V', H] for this call (e.g. a plugin's resized vocabulary).</summary>
    public Tensor? TokenEmbeddings { get; init; }
    /// <summary>Replaces lm_head for this call.</summary>
    public LinearLayer? LmHead { get; init; }
    /// <summary>Replaces a LLaVA model's mm_projector for this call (HealthGPT: one projector per task).</summary>
    public MultimodalProjector? Projector { get; init; }
    /// <summary>Replaces mm_vision_select_layer for this call (HealthGPT: −2 comprehension, 1 generation).</summary>
    public int? VisionSelectLayer { get; init; }

    public bool IsActive(string name) => Names.Contains(name);

    /// <summary>The selection of the current call (flows with the async context), or null for the base model.</summary>
    public static AdapterSelection? Current => s_current.Current;

    /// <summary>Makes <paramref name="selection"/> current until the returned scope is disposed (restores the previous one).</summary>
    public static CallContext<AdapterSelection>.Scope Use(AdapterSelection? selection) => s_current.Use(selection);

    /// <summary>As <see cref="Use"/> when <paramref name="selection"/> is set, else keeps the caller's selection.</summary>
    public static CallContext<AdapterSelection>.Scope UseIfSet(AdapterSelection? selection) => s_current.UseIfSet(selection);
}
