using OpenCvSharp;

namespace EdgeCounter.Publishing;

/// <summary>A JPEG and how it was made.</summary>
public sealed record JpegEncoding(byte[] Bytes, int Quality, double Scale, int Width, int Height);

/// <summary>Encodes a BGR image as JPEG under a byte budget: lowers the quality first, then the scale. A height cap
/// and a starting quality make the small snapshots dashboards want (Frigate's are 270 px at quality 70).</summary>
public static class JpegBudgetEncoder
{
    private static readonly int[] Qualities = [90, 80, 70, 60, 50, 40];
    private const double ScaleStep = 0.75;
    private const int MinSide = 64;

    /// <param name="maxHeight">Scaled down to at most this height first (0: as it is).</param>
    /// <param name="quality">The quality tried first (then lower ones).</param>
    public static JpegEncoding Encode(Mat bgr, int maxBytes, int maxHeight = 0, int quality = 90)
    {
        ArgumentNullException.ThrowIfNull(bgr);
        if (bgr.Empty()) throw new ArgumentException("Image is empty.", nameof(bgr));
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBytes, 1024);
        ArgumentOutOfRangeException.ThrowIfNegative(maxHeight);
        ArgumentOutOfRangeException.ThrowIfLessThan(quality, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(quality, 100);
        int[] qualities = [quality, .. Qualities.Where(q => q < quality)];

        var scale = maxHeight > 0 && bgr.Height > maxHeight ? (double)maxHeight / bgr.Height : 1.0;
        while (true)
        {
            var width = (int)Math.Round(bgr.Width * scale);
            var height = (int)Math.Round(bgr.Height * scale);
            if (Math.Min(width, height) < MinSide)
                throw new InvalidOperationException($"Cannot fit a {bgr.Width}x{bgr.Height} image into {maxBytes} bytes.");

            // Full size encodes the caller's image as it is; only a smaller try needs a resized copy.
            using var resized = scale == 1.0 ? null : bgr.Resize(new Size(width, height), 0, 0, InterpolationFlags.Area);
            var scaled = resized ?? bgr;
            foreach (var q in qualities)
            {
                Cv2.ImEncode(".jpg", scaled, out var bytes, new ImageEncodingParam(ImwriteFlags.JpegQuality, q));
                if (bytes.Length <= maxBytes) return new JpegEncoding(bytes, q, scale, width, height);
            }
            scale *= ScaleStep;
        }
    }
}
