namespace MedVL.Vision.Codecs;

/// <summary>
/// Loads any supported image (PNG, JPEG, DICOM, NIfTI-1 .nii/.nii.gz), choosing the decoder from the file's
/// magic bytes: PNG signature, JPEG SOI (FF D8 FF), "DICM" at offset 128 or a raw dataset starting in group
/// 0002/0008, NIfTI sizeof_hdr = 348 (either byte order) or a gzip stream named *.nii.gz.
/// </summary>
public static class ImageLoader
{
    public static DecodedImage Load(string path, ImageLoadOptions? options = null)
    {
        options ??= new ImageLoadOptions();
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"Image file not found: {path}", path);
        if (info.Length > options.MaxFileBytes)
            throw new InvalidImageException(path, $"file is {info.Length} bytes, above the {options.MaxFileBytes}-byte limit");
        return Load(File.ReadAllBytes(path), path, options);
    }

    public static DecodedImage Load(byte[] data, string source, ImageLoadOptions? options = null)
    {
        options ??= new ImageLoadOptions();
        var format = Sniff(data, source);
        try
        {
            return format switch
            {
                ImageFormat.Png => PngDecoder.Decode(data, source, options),
                ImageFormat.Jpeg => JpegDecoder.Decode(data, source, options),
                ImageFormat.Dicom => DicomDecoder.Decode(data, source, options),
                _ => NiftiDecoder.Decode(data, source, options),
            };
        }
        catch (Exception e) when (e is IndexOutOfRangeException or ArgumentException or OverflowException or InvalidCastException)
        {
            // Last line of defence: a decoder bug on malformed input must still surface as a clean, named error.
            throw new InvalidImageException(source, $"{format}: malformed file ({e.GetType().Name}: {e.Message})", e);
        }
    }

    /// <summary>Identifies the format from magic bytes (and, for gzip, the .nii.gz extension).</summary>
    public static ImageFormat Sniff(ReadOnlySpan<byte> data, string source)
    {
        if (PngDecoder.IsPng(data)) return ImageFormat.Png;
        if (JpegDecoder.IsJpeg(data)) return ImageFormat.Jpeg;
        if (data.Length >= 132 && data.Slice(128, 4).SequenceEqual("DICM"u8)) return ImageFormat.Dicom;
        if (NiftiDecoder.LooksLikeNifti(data)) return ImageFormat.Nifti;
        if (NiftiDecoder.IsGzip(data))
        {
            if (source.EndsWith(".nii.gz", StringComparison.OrdinalIgnoreCase) || source.EndsWith(".nii", StringComparison.OrdinalIgnoreCase))
                return ImageFormat.Nifti;
            throw new InvalidImageException(source, "gzip-compressed file: only .nii.gz (NIfTI-1) is supported");
        }
        if (DicomDataset.LooksLikeDicom(data)) return ImageFormat.Dicom;
        throw new InvalidImageException(source, "unrecognised image format: expected PNG, JPEG, DICOM or NIfTI-1 (.nii/.nii.gz)");
    }
}
