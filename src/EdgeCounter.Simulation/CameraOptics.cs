using OpenCvSharp;

namespace EdgeCounter.Simulation;

/// <summary>
/// What the optics and sensor do to a composed field: motion blur along the stage travel during the exposure,
/// defocus blur, vignetting, sensor noise (a fresh pattern per frame), and optional JPEG artefacts.
/// </summary>
internal sealed class CameraOptics
{
    private const int GainShift = 14;
    private const int NoiseBits = 22;
    private readonly int _width;
    private readonly int _height;
    private readonly ushort[] _gain;
    private readonly sbyte[] _noise = new sbyte[1 << NoiseBits];

    public CameraOptics(int width, int height, double vignetteStrength, double noiseSigma, ulong seed)
    {
        _width = width;
        _height = height;
        _gain = new ushort[width * height];
        var cx = (width - 1) / 2.0;
        var cy = (height - 1) / 2.0;
        var rmax2 = cx * cx + cy * cy;
        for (var y = 0; y < height; y++)
            for (var x = 0; x < width; x++)
            {
                var r2 = ((x - cx) * (x - cx) + (y - cy) * (y - cy)) / rmax2;
                _gain[y * width + x] = (ushort)Math.Round((1 - vignetteStrength * r2) * (1 << GainShift));
            }
        var rng = new DeterministicRandom(Hashing.Of(seed, 0x4015E));
        for (var i = 0; i < _noise.Length; i++) _noise[i] = (sbyte)Math.Clamp(Math.Round(rng.Normal() * noiseSigma), -127, 127);
    }

    /// <summary>Motion blur (stage travel dx, dy in pixels during the exposure), then defocus.</summary>
    public static void Blur(Mat frame, double dx, double dy, double defocusSigma)
    {
        var length = Math.Sqrt(dx * dx + dy * dy);
        if (length >= 0.75)
        {
            var k = Math.Max(2, (int)Math.Round(length));
            if (Math.Abs(dy) <= 0.05 * length) Cv2.Blur(frame, frame, new Size(k, 1), borderType: BorderTypes.Reflect101);
            else if (Math.Abs(dx) <= 0.05 * length) Cv2.Blur(frame, frame, new Size(1, k), borderType: BorderTypes.Reflect101);
            else
            {
                // Oblique travel (revisits): a line kernel along the direction of travel.
                var size = k | 1;
                using var line = new Mat(size, size, MatType.CV_8UC1, Scalar.All(0));
                var c = size / 2.0;
                var (ux, uy) = (dx / length * (k - 1) / 2.0, dy / length * (k - 1) / 2.0);
                Cv2.Line(line, new Point((int)Math.Round(c - ux), (int)Math.Round(c - uy)), new Point((int)Math.Round(c + ux), (int)Math.Round(c + uy)), Scalar.All(255), 1, LineTypes.AntiAlias);
                using var kernel = new Mat();
                line.ConvertTo(kernel, MatType.CV_32FC1, 1.0 / Cv2.Sum(line).Val0);
                Cv2.Filter2D(frame, frame, -1, kernel, borderType: BorderTypes.Reflect101);
            }
        }
        if (defocusSigma > 0.05) Cv2.GaussianBlur(frame, frame, new Size(0, 0), defocusSigma, defocusSigma, BorderTypes.Reflect101);
    }

    /// <summary>Vignetting and sensor noise in one pass; the noise pattern is chosen by noiseSeed.</summary>
    public unsafe void Sensor(Mat frame, ulong noiseSeed)
    {
        if (frame.Width != _width || frame.Height != _height || frame.Type() != MatType.CV_8UC3)
            throw new ArgumentException("frame does not match the camera");
        const int mask = (1 << NoiseBits) - 1;
        var rowBytes = _width * 3;
        fixed (ushort* gain = _gain)
        fixed (sbyte* noise = _noise)
        {
            for (var y = 0; y < _height; y++)
            {
                var row = (byte*)frame.Ptr(y);
                var g = gain + y * _width;
                var offset = (int)(Hashing.Of(noiseSeed, y) & mask);
                if (offset + rowBytes > mask) offset = mask - rowBytes;
                var n = noise + offset;
                for (var x = 0; x < _width; x++)
                {
                    var gx = g[x];
                    var p = row + x * 3;
                    p[0] = Clamp(((p[0] * gx) >> GainShift) + n[0]);
                    p[1] = Clamp(((p[1] * gx) >> GainShift) + n[1]);
                    p[2] = Clamp(((p[2] * gx) >> GainShift) + n[2]);
                    n += 3;
                }
            }
        }
    }

    private static byte Clamp(int v) => (byte)(v < 0 ? 0 : v > 255 ? 255 : v);

    /// <summary>Round-trips the frame through JPEG at the given quality (deterministic in OpenCV).</summary>
    public static void Jpeg(Mat frame, int quality)
    {
        if (quality <= 0) return;
        Cv2.ImEncode(".jpg", frame, out var bytes, new ImageEncodingParam(ImwriteFlags.JpegQuality, quality));
        using var decoded = Cv2.ImDecode(bytes, ImreadModes.Color);
        decoded.CopyTo(frame);
    }
}
