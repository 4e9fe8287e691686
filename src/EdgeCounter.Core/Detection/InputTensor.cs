using OpenCvSharp;

namespace EdgeCounter.Detection;

/// <summary>
/// How a frame becomes the model input: resized by the pixel-scale factor, then padded bottom/right with black up
/// to a multiple of the model's size rule. <see cref="ScaleX"/>/<see cref="ScaleY"/> are the factors actually applied
/// (rounding to whole pixels), so boxes map back exactly.
/// </summary>
public readonly record struct InputGeometry(int FrameWidth, int FrameHeight, int ResizedWidth, int ResizedHeight, int PaddedWidth, int PaddedHeight)
{
    public double ScaleX => (double)ResizedWidth / FrameWidth;
    public double ScaleY => (double)ResizedHeight / FrameHeight;
    public bool NeedsResize => ResizedWidth != FrameWidth || ResizedHeight != FrameHeight;

    public static InputGeometry For(int frameWidth, int frameHeight, double scale, int sizeMultiple)
    {
        if (frameWidth <= 0 || frameHeight <= 0) throw new ArgumentException($"empty image ({frameWidth}x{frameHeight})");
        if (!(scale > 0)) throw new ArgumentOutOfRangeException(nameof(scale), scale, "scale must be positive");
        if (sizeMultiple <= 0) throw new ArgumentOutOfRangeException(nameof(sizeMultiple));
        var rw = Math.Max(1, (int)Math.Round(frameWidth * scale));
        var rh = Math.Max(1, (int)Math.Round(frameHeight * scale));
        return new InputGeometry(frameWidth, frameHeight, rw, rh, RoundUp(rw, sizeMultiple), RoundUp(rh, sizeMultiple));
    }

    private static int RoundUp(int value, int multiple) => (value + multiple - 1) / multiple * multiple;

    /// <summary>Maps a box from padded-input pixels back to frame pixels, clipped to the frame.</summary>
    public BoxF ToFrame(in BoxF inputBox)
    {
        float sx = (float)(1 / ScaleX), sy = (float)(1 / ScaleY);
        return new BoxF(
            Math.Clamp(inputBox.X1 * sx, 0, FrameWidth),
            Math.Clamp(inputBox.Y1 * sy, 0, FrameHeight),
            Math.Clamp(inputBox.X2 * sx, 0, FrameWidth),
            Math.Clamp(inputBox.Y2 * sy, 0, FrameHeight));
    }
}

/// <summary>Writes an 8-bit BGR image straight into an NCHW RGB 0..1 float tensor, without intermediate float images.</summary>
public static class InputTensorWriter
{
    private static readonly float[] ByteToUnit = CreateByteToUnit();

    private static float[] CreateByteToUnit()
    {
        var t = new float[256];
        for (var i = 0; i < 256; i++) t[i] = i / 255f;
        return t;
    }

    /// <summary>
    /// Fills <paramref name="destination"/> (length ≥ 3·paddedHeight·paddedWidth) with planes R, G, B of
    /// <paramref name="bgr"/> scaled to 0..1; the area right of and below the image is set to 0 (black padding).
    /// </summary>
    public static unsafe void Write(Mat bgr, Span<float> destination, int paddedWidth, int paddedHeight)
    {
        if (bgr.Type() != MatType.CV_8UC3) throw new ArgumentException($"expected an 8-bit 3-channel BGR image, got {bgr.Type()}");
        int rows = bgr.Rows, cols = bgr.Cols;
        if (cols > paddedWidth || rows > paddedHeight) throw new ArgumentException($"image {cols}x{rows} is larger than the input {paddedWidth}x{paddedHeight}");
        var plane = paddedWidth * paddedHeight;
        if (destination.Length < 3 * plane) throw new ArgumentException($"destination holds {destination.Length} floats, needs {3 * plane}");

        var lut = ByteToUnit;
        var step = (long)bgr.Step();
        var data = (byte*)bgr.Data;
        fixed (float* dst = destination)
        fixed (float* unit = lut)
        {
            float* r = dst, g = dst + plane, b = dst + 2 * plane;
            for (var y = 0; y < rows; y++)
            {
                var src = data + y * step;
                var rowStart = y * paddedWidth;
                float* rr = r + rowStart, gg = g + rowStart, bb = b + rowStart;
                for (var x = 0; x < cols; x++)
                {
                    var p = src + 3 * x;
                    bb[x] = unit[p[0]];
                    gg[x] = unit[p[1]];
                    rr[x] = unit[p[2]];
                }
                if (cols < paddedWidth)
                {
                    var pad = paddedWidth - cols;
                    new Span<float>(rr + cols, pad).Clear();
                    new Span<float>(gg + cols, pad).Clear();
                    new Span<float>(bb + cols, pad).Clear();
                }
            }
            if (rows < paddedHeight)
            {
                var start = rows * paddedWidth;
                var count = plane - start;
                new Span<float>(r + start, count).Clear();
                new Span<float>(g + start, count).Clear();
                new Span<float>(b + start, count).Clear();
            }
        }
    }
}
