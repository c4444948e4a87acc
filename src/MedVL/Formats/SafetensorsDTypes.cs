using MedVL.Tensors;

namespace MedVL.Formats;

/// <summary>
/// The dtype strings of the safetensors spec, in the order of the reference <c>Dtype</c> enum
/// (huggingface/safetensors safetensors/src/tensor.rs), which is increasing alignment; the writer sorts by it.
/// </summary>
internal static class SafetensorsDTypes
{
    // Rank = position in the reference enum. Null DType = defined by the spec but not representable in MedVL.
    private static readonly (string Name, DType? DType)[] Spec =
    [
        ("BOOL", DType.Bool), ("F4", null), ("F6_E2M3", null), ("F6_E3M2", null), ("U8", DType.U8), ("I8", DType.I8),
        ("F8_E5M2", DType.F8_E5M2), ("F8_E4M3", DType.F8_E4M3), ("F8_E8M0", null), ("F8_E4M3FNUZ", null), ("F8_E5M2FNUZ", null),
        ("I16", DType.I16), ("U16", DType.U16), ("F16", DType.F16), ("BF16", DType.BF16), ("I32", DType.I32), ("U32", DType.U32),
        ("F32", DType.F32), ("C64", null), ("F64", DType.F64), ("I64", DType.I64), ("U64", DType.U64),
    ];

    public static DType Parse(string s, string tensor, string path)
    {
        foreach (var (name, dt) in Spec)
        {
            if (name != s) continue;
            if (dt is null)
                throw new InvalidCheckpointException(path, $"unsupported dtype {s} for tensor '{tensor}' (valid safetensors dtype, but MedVL has no {s} element type)");
            return dt.Value;
        }
        throw new InvalidCheckpointException(path, $"tensor '{tensor}': unknown dtype \"{s}\"; expected one of {string.Join(", ", Spec.Select(x => x.Name))}");
    }

    public static string Name(DType t)
    {
        foreach (var (name, dt) in Spec) if (dt == t) return name;
        throw new NotSupportedException($"dtype {t} has no safetensors name");
    }

    /// <summary>Position in the reference enum (alignment order).</summary>
    public static int Rank(DType t)
    {
        for (int i = 0; i < Spec.Length; i++) if (Spec[i].DType == t) return i;
        throw new NotSupportedException($"dtype {t} has no safetensors name");
    }
}
