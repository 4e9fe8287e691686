using System.Runtime.Intrinsics;
using OpenCvSharp;

namespace EdgeCounter.Fields;

/// <summary>Motion and focus of one frame, scored on a small grey copy.</summary>
/// <param name="Motion">Mean absolute grey difference to the previous frame (0..255); +inf for the first frame.</param>
/// <param name="Focus">Variance of the Laplacian of the grey copy: higher is sharper; only comparable within one optical setup.</param>
public readonly record struct FrameScore(double Motion, double Focus);

/// <summary>
/// Scores frames for motion (against the previous frame) and focus. Keeps its buffers between calls so the per-frame
/// path allocates nothing once warm. Not thread-safe: one capture loop owns one scorer.
/// </summary>
/// <remarks>
/// The grey copy is an area-average downscale (it averages sensor noise away and makes the rest cheap) followed by
/// the BGR-to-grey weights, as OpenCV's INTER_AREA resize + BGR2GRAY would give. When the frame is a whole multiple of
/// the scoring size (640, 1280, 1920, 2560 wide at 4:3 or 16:9, ...) it is computed here in one pass straight from
/// the frame's pixels: no OpenCV call, hence none of OpenCvSharp's per-call proxy objects. Other sizes and pixel
/// formats go through OpenCV. Focus (variance of the 3x3 Laplacian, reflected border) and motion (mean absolute
/// difference) are computed on the small grey copy in managed code for both paths.
/// </remarks>
public sealed class FrameScorer : IDisposable
{
    // OpenCV's fixed-point BGR2GRAY weights (0.114, 0.587, 0.299 in 1/16384).
    private const int BlueWeight = 1868, GreenWeight = 9617, RedWeight = 4899, GreyShift = 14;
    // Vertical sums are kept in 16 bits: up to 257 rows of 255.
    private const int MaxBlock = 257;

    private readonly int _width;
    private byte[] _grey = [];
    private byte[] _previousGrey = [];
    private ushort[] _columnSums = [];
    private bool _hasPrevious;
    // Only for frames that are not a whole multiple of the scoring size, or not 8-bit grey/BGR.
    private Mat? _small;
    private Mat? _smallGrey;

    public FrameScorer(int scoringWidth = 160) => _width = scoringWidth;

    public FrameScore Score(Mat bgr)
    {
        if (bgr.Empty()) throw new ArgumentException("empty frame", nameof(bgr));
        int cols = bgr.Cols, rows = bgr.Rows;
        var height = Math.Max(1, (int)Math.Round(rows * (double)_width / cols));
        var n = _width * height;
        if (_grey.Length != n)
        {
            _grey = new byte[n];
            _previousGrey = new byte[n];
            _hasPrevious = false; // a different size: nothing to compare with
        }

        var type = bgr.Type();
        var block = cols / _width;
        var channels = type == MatType.CV_8UC3 ? 3 : type == MatType.CV_8UC1 ? 1 : 0;
        if (channels > 0 && block is >= 1 and <= MaxBlock && cols == block * _width && rows == block * height)
            DownscaleToGrey(bgr, block, channels, height);
        else
            DownscaleToGreyWithOpenCv(bgr, height);

        var focus = LaplacianVariance(_grey, _width, height);
        var motion = _hasPrevious ? MeanAbsoluteDifference(_grey, _previousGrey) : double.PositiveInfinity;
        (_previousGrey, _grey) = (_grey, _previousGrey);
        _hasPrevious = true;
        return new FrameScore(motion, focus);
    }

    /// <summary>The small grey copy of the frame scored last (row-major, <see cref="GreyWidth"/> x <see cref="GreyHeight"/>);
    /// valid until the next <see cref="Score"/>. The stage odometry works on it, so the frame is downscaled once.</summary>
    public ReadOnlySpan<byte> Grey => _hasPrevious ? _previousGrey : ReadOnlySpan<byte>.Empty;

    public int GreyWidth => _width;

    public int GreyHeight => _previousGrey.Length / _width;

    /// <summary>Forget the previous frame (after a source reopens), so no motion is measured across the gap.</summary>
    public void Reset() => _hasPrevious = false;

    /// <summary>Block-average the frame by an integer factor into the grey buffer, one pass over the frame.</summary>
    private unsafe void DownscaleToGrey(Mat image, int block, int channels, int height)
    {
        var rowBytes = image.Cols * channels;
        if (_columnSums.Length < rowBytes) _columnSums = new ushort[rowBytes];
        var step = (long)image.Step();
        var data = (byte*)image.Data;
        var area = block * block;
        fixed (ushort* sums = _columnSums)
        fixed (byte* grey = _grey)
        {
            for (var oy = 0; oy < height; oy++)
            {
                // Vertical: sum the block's rows, byte by byte (SIMD); horizontal: sum each block's columns per channel.
                new Span<ushort>(sums, rowBytes).Clear();
                var top = data + (long)oy * block * step;
                for (var k = 0; k < block; k++) AddRow(top + k * step, sums, rowBytes);
                var output = grey + oy * _width;
                var p = sums;
                if (channels == 3)
                {
                    for (var ox = 0; ox < _width; ox++)
                    {
                        int b = 0, g = 0, r = 0;
                        for (var k = 0; k < block; k++, p += 3)
                        {
                            b += p[0];
                            g += p[1];
                            r += p[2];
                        }
                        // Round each channel's mean to 8 bits (as the resized BGR image would hold), then grey.
                        int mb = (2 * b + area) / (2 * area), mg = (2 * g + area) / (2 * area), mr = (2 * r + area) / (2 * area);
                        output[ox] = (byte)((mb * BlueWeight + mg * GreenWeight + mr * RedWeight + (1 << (GreyShift - 1))) >> GreyShift);
                    }
                }
                else
                {
                    for (var ox = 0; ox < _width; ox++)
                    {
                        var s = 0;
                        for (var k = 0; k < block; k++, p++) s += p[0];
                        output[ox] = (byte)((2 * s + area) / (2 * area));
                    }
                }
            }
        }
    }

    private static unsafe void AddRow(byte* source, ushort* sums, int count)
    {
        var x = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; x <= count - Vector256<byte>.Count; x += Vector256<byte>.Count)
            {
                var (lower, upper) = Vector256.Widen(Vector256.Load(source + x));
                Vector256.Store(Vector256.Load(sums + x) + lower, sums + x);
                Vector256.Store(Vector256.Load(sums + x + Vector256<ushort>.Count) + upper, sums + x + Vector256<ushort>.Count);
            }
        }
        if (Vector128.IsHardwareAccelerated)
        {
            for (; x <= count - Vector128<byte>.Count; x += Vector128<byte>.Count)
            {
                var (lower, upper) = Vector128.Widen(Vector128.Load(source + x));
                Vector128.Store(Vector128.Load(sums + x) + lower, sums + x);
                Vector128.Store(Vector128.Load(sums + x + Vector128<ushort>.Count) + upper, sums + x + Vector128<ushort>.Count);
            }
        }
        for (; x < count; x++) sums[x] += source[x];
    }

    /// <summary>Any size or format: OpenCV's area resize and grey conversion, copied into the grey buffer.</summary>
    private unsafe void DownscaleToGreyWithOpenCv(Mat image, int height)
    {
        _small ??= new Mat();
        _smallGrey ??= new Mat();
        Cv2.Resize(image, _small, new Size(_width, height), 0, 0, InterpolationFlags.Area);
        var grey = _small;
        if (_small.Channels() == 3) { Cv2.CvtColor(_small, _smallGrey, ColorConversionCodes.BGR2GRAY); grey = _smallGrey; }
        else if (_small.Channels() == 4) { Cv2.CvtColor(_small, _smallGrey, ColorConversionCodes.BGRA2GRAY); grey = _smallGrey; }
        if (grey.Type() != MatType.CV_8UC1) throw new ArgumentException($"expected an 8-bit image, got {image.Type()}", nameof(image));
        var step = (long)grey.Step();
        var data = (byte*)grey.Data;
        for (var y = 0; y < height; y++)
            new ReadOnlySpan<byte>(data + y * step, _width).CopyTo(_grey.AsSpan(y * _width, _width));
    }

    /// <summary>Population variance of the Laplacian (kernel 0 1 0 / 1 -4 1 / 0 1 0, border reflected about the edge pixel).</summary>
    private static double LaplacianVariance(byte[] grey, int width, int height)
    {
        long sum = 0, sumOfSquares = 0;
        for (var y = 0; y < height; y++)
        {
            var row = y * width;
            var up = (y > 0 ? y - 1 : Math.Min(1, height - 1)) * width;
            var down = (y < height - 1 ? y + 1 : Math.Max(0, height - 2)) * width;
            for (var x = 0; x < width; x++)
            {
                var left = x > 0 ? x - 1 : Math.Min(1, width - 1);
                var right = x < width - 1 ? x + 1 : Math.Max(0, width - 2);
                var value = grey[up + x] + grey[down + x] + grey[row + left] + grey[row + right] - 4 * grey[row + x];
                sum += value;
                sumOfSquares += value * value;
            }
        }
        var n = (double)width * height;
        var mean = sum / n;
        return Math.Max(0, sumOfSquares / n - mean * mean);
    }

    private static double MeanAbsoluteDifference(byte[] a, byte[] b)
    {
        long sum = 0;
        for (var i = 0; i < a.Length; i++) sum += Math.Abs(a[i] - b[i]);
        return sum / (double)a.Length;
    }

    public void Dispose()
    {
        _small?.Dispose();
        _smallGrey?.Dispose();
    }
}
