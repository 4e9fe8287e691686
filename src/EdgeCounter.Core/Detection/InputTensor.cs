using OpenCvSharp;

namespace EdgeCounter.Detection;

/// <summary>
/// How a frame becomes the model input: resized by the pixel-scale factor, then padded with the model's pad value up
/// to a multiple of its size rule (or to its fixed input size, shrunk to fit when larger): bottom/right, or on every
/// side evenly (<see cref="OffsetX"/>, <see cref="OffsetY"/>: a letterbox). <see cref="ScaleX"/>/<see cref="ScaleY"/>
/// are the factors actually applied (rounding to whole pixels), so boxes map back exactly.
/// </summary>
public readonly record struct InputGeometry(int FrameWidth, int FrameHeight, int ResizedWidth, int ResizedHeight, int PaddedWidth, int PaddedHeight,
    int OffsetX = 0, int OffsetY = 0)
{
    public double ScaleX => (double)ResizedWidth / FrameWidth;
    public double ScaleY => (double)ResizedHeight / FrameHeight;
    public bool NeedsResize => ResizedWidth != FrameWidth || ResizedHeight != FrameHeight;

    public static InputGeometry For(int frameWidth, int frameHeight, double scale, int sizeMultiple) =>
        For(frameWidth, frameHeight, scale, sizeMultiple, fixedSize: null, centred: false);

    /// <param name="fixedSize">The graph's fixed input (width, height), or null when it takes any multiple of
    /// <paramref name="sizeMultiple"/>.</param>
    /// <param name="centred">Pad evenly on both sides (a letterbox) instead of bottom/right.</param>
    public static InputGeometry For(int frameWidth, int frameHeight, double scale, int sizeMultiple, (int Width, int Height)? fixedSize, bool centred)
    {
        if (frameWidth <= 0 || frameHeight <= 0) throw new ArgumentException($"empty image ({frameWidth}x{frameHeight})");
        if (!(scale > 0)) throw new ArgumentOutOfRangeException(nameof(scale), scale, "scale must be positive");
        if (sizeMultiple <= 0) throw new ArgumentOutOfRangeException(nameof(sizeMultiple));
        if (fixedSize is { } f && (f.Width > 0 && f.Height > 0) is false) throw new ArgumentOutOfRangeException(nameof(fixedSize));
        // A fixed-size graph cannot take more than its size: the frame is shrunk to fit, its aspect kept.
        if (fixedSize is { } fit) scale = Math.Min(scale, Math.Min((double)fit.Width / frameWidth, (double)fit.Height / frameHeight));
        var rw = Math.Max(1, (int)Math.Round(frameWidth * scale));
        var rh = Math.Max(1, (int)Math.Round(frameHeight * scale));
        if (fixedSize is { } size) { rw = Math.Min(rw, size.Width); rh = Math.Min(rh, size.Height); }
        var (pw, ph) = fixedSize ?? (RoundUp(rw, sizeMultiple), RoundUp(rh, sizeMultiple));
        return centred
            ? new InputGeometry(frameWidth, frameHeight, rw, rh, pw, ph, (pw - rw) / 2, (ph - rh) / 2)
            : new InputGeometry(frameWidth, frameHeight, rw, rh, pw, ph);
    }

    private static int RoundUp(int value, int multiple) => (value + multiple - 1) / multiple * multiple;

    /// <summary>Maps a box from padded-input pixels back to frame pixels, clipped to the frame.</summary>
    public BoxF ToFrame(in BoxF inputBox)
    {
        float sx = (float)(1 / ScaleX), sy = (float)(1 / ScaleY);
        return new BoxF(
            Math.Clamp((inputBox.X1 - OffsetX) * sx, 0, FrameWidth),
            Math.Clamp((inputBox.Y1 - OffsetY) * sy, 0, FrameHeight),
            Math.Clamp((inputBox.X2 - OffsetX) * sx, 0, FrameWidth),
            Math.Clamp((inputBox.Y2 - OffsetY) * sy, 0, FrameHeight));
    }
}

/// <summary>
/// How a model wants its pixels (sidecar <c>input</c>): channel order, value range, per-channel mean and standard
/// deviation, and the value of the padding (in 0..255 pixel units). Precomputed as one lookup table per input plane,
/// so writing a frame costs the same whatever the convention.
/// </summary>
public sealed class PixelConvention
{
    /// <summary>RGB, 0..1, no normalisation, black padding: EdgeCounter's own graphs.</summary>
    public static readonly PixelConvention RgbUnit = new(bgr: false, maxValue: 1, mean: null, std: null, padValue: 0);

    private readonly float[][] _planeLut = new float[3][];

    /// <param name="bgr">Planes in B, G, R order (OpenCV's) instead of R, G, B.</param>
    /// <param name="maxValue">What a 255 pixel becomes before normalisation: 1 (0..1) or 255 (0..255).</param>
    /// <param name="mean">Per plane, subtracted after scaling (null: 0).</param>
    /// <param name="std">Per plane, divided by after the mean (null: 1).</param>
    /// <param name="padValue">The padding's pixel value, 0..255 in every channel (Ultralytics letterboxes with 114).</param>
    public PixelConvention(bool bgr, double maxValue, IReadOnlyList<double>? mean, IReadOnlyList<double>? std, int padValue)
    {
        if (!(maxValue > 0)) throw new ArgumentOutOfRangeException(nameof(maxValue));
        if (mean is not null && mean.Count != 3) throw new ArgumentException("mean needs three values", nameof(mean));
        if (std is not null && (std.Count != 3 || std.Any(s => !(s > 0)))) throw new ArgumentException("std needs three positive values", nameof(std));
        if (padValue is < 0 or > 255) throw new ArgumentOutOfRangeException(nameof(padValue));
        Bgr = bgr;
        PadValue = padValue;
        for (var plane = 0; plane < 3; plane++)
        {
            var lut = new float[256];
            double m = mean?[plane] ?? 0, sd = std?[plane] ?? 1;
            for (var v = 0; v < 256; v++) lut[v] = (float)((v * maxValue / 255.0 - m) / sd);
            _planeLut[plane] = lut;
        }
        PadOfPlane = [_planeLut[0][padValue], _planeLut[1][padValue], _planeLut[2][padValue]];
    }

    public bool Bgr { get; }
    public int PadValue { get; }
    /// <summary>The padding's value in each input plane, after normalisation.</summary>
    public IReadOnlyList<float> PadOfPlane { get; }

    /// <summary>The value table of input plane <paramref name="plane"/> (0..2, in the model's channel order).</summary>
    internal float[] Lut(int plane) => _planeLut[plane];
}

/// <summary>Writes an 8-bit BGR image straight into an NCHW float tensor in the model's <see cref="PixelConvention"/>,
/// without intermediate float images.</summary>
public static class InputTensorWriter
{
    /// <summary>
    /// Fills <paramref name="destination"/> (length ≥ 3·paddedHeight·paddedWidth) with planes R, G, B of
    /// <paramref name="bgr"/> scaled to 0..1; the area right of and below the image is set to 0 (black padding).
    /// </summary>
    public static void Write(Mat bgr, Span<float> destination, int paddedWidth, int paddedHeight) =>
        Write(bgr, destination, paddedWidth, paddedHeight, 0, 0, PixelConvention.RgbUnit);

    /// <summary>
    /// A frame as the model takes it: resized as <paramref name="geometry"/> says (by <paramref name="resizer"/>, whose
    /// buffers are reused across calls), then written at its place in the input.
    /// </summary>
    public static void WriteFrame(Mat bgr, InputGeometry geometry, Span<float> destination, PixelConvention convention, FrameResizer resizer)
    {
        var source = geometry.NeedsResize ? resizer.Resize(bgr, geometry.ResizedWidth, geometry.ResizedHeight) : bgr;
        Write(source, destination, geometry.PaddedWidth, geometry.PaddedHeight, geometry.OffsetX, geometry.OffsetY, convention);
    }

    /// <summary>
    /// Fills <paramref name="destination"/> (length ≥ 3·paddedHeight·paddedWidth) with the three planes of
    /// <paramref name="bgr"/> placed at (<paramref name="offsetX"/>, <paramref name="offsetY"/>), in the order and
    /// values of <paramref name="convention"/>; everything around the image is the convention's padding.
    /// </summary>
    public static unsafe void Write(Mat bgr, Span<float> destination, int paddedWidth, int paddedHeight, int offsetX, int offsetY, PixelConvention convention)
    {
        if (bgr.Type() != MatType.CV_8UC3) throw new ArgumentException($"expected an 8-bit 3-channel BGR image, got {bgr.Type()}");
        int rows = bgr.Rows, cols = bgr.Cols;
        if (offsetX < 0 || offsetY < 0 || offsetX + cols > paddedWidth || offsetY + rows > paddedHeight)
            throw new ArgumentException($"image {cols}x{rows} at ({offsetX}, {offsetY}) does not fit the input {paddedWidth}x{paddedHeight}");
        var plane = paddedWidth * paddedHeight;
        if (destination.Length < 3 * plane) throw new ArgumentException($"destination holds {destination.Length} floats, needs {3 * plane}");

        // Plane p reads source channel p of BGR, or 2 - p for RGB.
        var first = convention.Bgr ? 0 : 2;
        var last = 2 - first;
        var step = (long)bgr.Step();
        var data = (byte*)bgr.Data;
        // The padding only (the image's own pixels are written below): rows above and below it, then each image row's
        // left and right margins.
        if (cols < paddedWidth || rows < paddedHeight)
            for (var p = 0; p < 3; p++)
            {
                var pad = convention.PadOfPlane[p];
                var planeSpan = destination.Slice(p * plane, plane);
                planeSpan[..(offsetY * paddedWidth)].Fill(pad);
                planeSpan[((offsetY + rows) * paddedWidth)..].Fill(pad);
                if (cols == paddedWidth) continue;
                for (var y = offsetY; y < offsetY + rows; y++)
                {
                    var row = planeSpan.Slice(y * paddedWidth, paddedWidth);
                    row[..offsetX].Fill(pad);
                    row[(offsetX + cols)..].Fill(pad);
                }
            }
        fixed (float* dst = destination)
        fixed (float* lut0 = convention.Lut(0))
        fixed (float* lut1 = convention.Lut(1))
        fixed (float* lut2 = convention.Lut(2))
        {
            float* p0 = dst, p1 = dst + plane, p2 = dst + 2 * plane;
            for (var y = 0; y < rows; y++)
            {
                var src = data + y * step;
                var rowStart = (y + offsetY) * paddedWidth + offsetX;
                float* a = p0 + rowStart, b = p1 + rowStart, c = p2 + rowStart;
                for (var x = 0; x < cols; x++)
                {
                    var px = src + 3 * x;
                    a[x] = lut0[px[first]];
                    b[x] = lut1[px[1]];
                    c[x] = lut2[px[last]];
                }
            }
        }
    }
}
