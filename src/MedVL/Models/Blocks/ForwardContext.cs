namespace MedVL.Models.Blocks;

/// <summary>What every layer of one decoder forward needs: positions, rotary table, cache, mask. Built by the model.</summary>
public sealed class DecoderStep
{
    public required int Batch { get; init; }
    /// <summary>New tokens in this call.</summary>
    public required int Length { get; init; }
    /// <summary>Tokens already in the cache before this call (absolute position of the first new token without padding).</summary>
    public required int PastLength { get; init; }
    /// <summary>T positions shared by the batch, or B·T (left-padded batches).</summary>
    public required int[] PositionIds { get; init; }
    public required Kernels.RotaryEmbedding Rope { get; init; }
    public KvCache? Cache { get; init; }
    /// <summary>Additive mask [B, 1, T, PastLength+T] (0 visible, large negative hidden) from an attention mask, or null.</summary>
    public Tensor? Mask { get; init; }
    public CancellationToken CancellationToken { get; init; }
}
