namespace MedVL.Vision.Codecs;

/// <summary>The container format an image was decoded from.</summary>
public enum ImageFormat { Png, Jpeg, Dicom, Nifti }

/// <summary>
/// Display/metadata information carried alongside the pixels. Only DICOM and NIfTI fill most of it;
/// PNG/JPEG images have identity rescale and no window.
/// </summary>
public sealed record ImageMetadata
{
    /// <summary>DICOM Modality (0008,0060), e.g. "CT", "MR"; null when unknown.</summary>
    public string? Modality { get; init; }
    /// <summary>DICOM Photometric Interpretation (0028,0004) or a PNG/JPEG equivalent ("MONOCHROME2", "RGB").</summary>
    public string? PhotometricInterpretation { get; init; }
    /// <summary>Rescale slope (DICOM 0028,1053 / NIfTI scl_slope); 1 when absent.</summary>
    public double RescaleSlope { get; init; } = 1.0;
    /// <summary>Rescale intercept (DICOM 0028,1052 / NIfTI scl_inter); 0 when absent.</summary>
    public double RescaleIntercept { get; init; }
    /// <summary>First value of Window Center (0028,1050), in rescaled units; null when absent.</summary>
    public double? WindowCenter { get; init; }
    /// <summary>First value of Window Width (0028,1051), in rescaled units; null when absent.</summary>
    public double? WindowWidth { get; init; }
    /// <summary>DICOM Transfer Syntax UID (0002,0010) the pixels were stored with.</summary>
    public string? TransferSyntaxUid { get; init; }
    /// <summary>Total number of frames (DICOM) or slices along the chosen axis (NIfTI).</summary>
    public int NumberOfFrames { get; init; } = 1;
    /// <summary>Which frame/slice was decoded.</summary>
    public int FrameIndex { get; init; }
    /// <summary>Whether stored values are signed (DICOM PixelRepresentation = 1, NIfTI signed types).</summary>
    public bool IsSigned { get; init; }
}

/// <summary>
/// A decoded 2-D image: interleaved (row-major, channel-last) samples. <see cref="StoredValues"/> are the
/// values exactly as stored in the file (after colour-model decoding: JPEG YCbCr -> RGB, PNG palette -> RGB);
/// <see cref="RescaledValues"/> apply the modality rescale (slope*stored + intercept), e.g. Hounsfield units for CT.
/// Doubles are used so 32-bit integers and float64 NIfTI voxels are represented exactly.
/// </summary>
public sealed class DecodedImage
{
    public int Width { get; }
    public int Height { get; }
    /// <summary>1 = gray, 2 = gray+alpha, 3 = RGB, 4 = RGBA.</summary>
    public int Channels { get; }
    /// <summary>Bits per stored sample (1..16 for PNG/DICOM integers, 8 for JPEG, 32/64 for float NIfTI).</summary>
    public int BitDepth { get; }
    public ImageFormat Format { get; }
    public double[] StoredValues { get; }
    public double[] RescaledValues { get; }
    public ImageMetadata Metadata { get; }

    public DecodedImage(int width, int height, int channels, int bitDepth, ImageFormat format,
        double[] storedValues, double[]? rescaledValues = null, ImageMetadata? metadata = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        if (channels is < 1 or > 4) throw new ArgumentOutOfRangeException(nameof(channels), "channels must be 1..4");
        if (storedValues.Length != (long)width * height * channels)
            throw new ArgumentException($"storedValues has {storedValues.Length} samples, expected {width}x{height}x{channels}");
        if (rescaledValues is not null && rescaledValues.Length != storedValues.Length)
            throw new ArgumentException("rescaledValues length differs from storedValues");
        Width = width; Height = height; Channels = channels; BitDepth = bitDepth; Format = format;
        StoredValues = storedValues;
        RescaledValues = rescaledValues ?? storedValues;
        Metadata = metadata ?? new ImageMetadata();
    }

    /// <summary>Sample (x, y, c) of the stored values.</summary>
    public double this[int x, int y, int c] => StoredValues[((long)y * Width + x) * Channels + c];

    /// <summary>Maximum representable stored value for unsigned integer data (e.g. 255, 65535).</summary>
    public double MaxStoredValue => BitDepth <= 16 ? (1 << BitDepth) - 1 : double.MaxValue;
}

/// <summary>Options shared by all decoders in <see cref="ImageLoader"/>.</summary>
public sealed record ImageLoadOptions
{
    /// <summary>DICOM multi-frame: which frame to decode (0-based).</summary>
    public int Frame { get; init; }
    /// <summary>NIfTI: axis (0 = i, 1 = j, 2 = k, i.e. x/y/z in voxel order) perpendicular to the 2-D slice.</summary>
    public int SliceAxis { get; init; } = 2;
    /// <summary>NIfTI: slice index along <see cref="SliceAxis"/>; null = middle slice.</summary>
    public int? SliceIndex { get; init; }
    /// <summary>NIfTI 4-D: the volume (t index) to take the slice from.</summary>
    public int Volume { get; init; }
    /// <summary>Upper bound on decoded samples (guards against decompression bombs). Default 256 Mi samples.</summary>
    public long MaxSamples { get; init; } = 256L * 1024 * 1024;
    /// <summary>Upper bound on the input size accepted, bytes. Default 2 GiB.</summary>
    public long MaxFileBytes { get; init; } = 2L * 1024 * 1024 * 1024;
}
