using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using OpenCvSharp;

namespace EdgeCounter.Simulation;

/// <summary>
/// What the optics and sensor do to a composed field: motion blur along the stage travel during the exposure,
/// defocus blur, vignetting, sensor noise (a fresh pattern per frame), and optional JPEG artefacts.
/// Written for speed: a 1920x1080 frame must be finished well inside a 30 fps frame time on one core.
/// </summary>
internal sealed class CameraOptics
{
    private const int NoiseBits = 22;
    private readonly int _width;
    private readonly int _height;
    private readonly ushort[] _columnGain; // per byte of a row, 256 = 1.0
    private readonly ushort[] _rowGain;    // per row, 256 = 1.0
    private readonly sbyte[] _noise = new sbyte[1 << NoiseBits];

    public CameraOptics(int width, int height, double vignetteStrength, double noiseSigma, ulong seed)
    {
        _width = width;
        _height = height;
        // Vignetting 1 - s * r^2, taken as (1 - s * dx^2)(1 - s * dy^2): separable, so a row's gains are one
        // multiply away; the cross term it adds is below 2 % at the corners.
        var cx = (width - 1) / 2.0;
        var cy = (height - 1) / 2.0;
        var rmax2 = cx * cx + cy * cy;
        _columnGain = new ushort[width * 3];
        for (var x = 0; x < width; x++)
        {
            var g = (ushort)Math.Round((1 - vignetteStrength * (x - cx) * (x - cx) / rmax2) * 256);
            _columnGain[x * 3] = _columnGain[x * 3 + 1] = _columnGain[x * 3 + 2] = g;
        }
        _rowGain = new ushort[height];
        for (var y = 0; y < height; y++) _rowGain[y] = (ushort)Math.Round((1 - vignetteStrength * (y - cy) * (y - cy) / rmax2) * 256);
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
        Defocus(frame, defocusSigma);
    }

    /// <summary>
    /// Gaussian defocus. Wide blurs run on a shrunken copy (area-averaged, blurred, scaled back): the result is
    /// smooth anyway and it costs a fraction of a full-size wide kernel.
    /// </summary>
    public static void Defocus(Mat frame, double sigma)
    {
        if (sigma <= 0.05) return;
        if (sigma < 2.5)
        {
            var k = 2 * (int)Math.Ceiling(2.5 * sigma) + 1;
            Cv2.GaussianBlur(frame, frame, new Size(k, k), sigma, sigma, BorderTypes.Reflect101);
            return;
        }
        var factor = sigma < 5 ? 2 : 4;
        using var small = new Mat();
        Cv2.Resize(frame, small, new Size((frame.Width + factor - 1) / factor, (frame.Height + factor - 1) / factor), 0, 0, InterpolationFlags.Area);
        // Area averaging over factor x factor pixels already blurs by about factor/sqrt(12); take it off.
        var residual = Math.Sqrt(Math.Max(sigma * sigma - factor * factor / 12.0, 0.25)) / factor;
        var ks = 2 * (int)Math.Ceiling(2.5 * residual) + 1;
        Cv2.GaussianBlur(small, small, new Size(ks, ks), residual, residual, BorderTypes.Reflect101);
        Cv2.Resize(small, frame, frame.Size(), 0, 0, InterpolationFlags.Linear);
    }

    /// <summary>Vignetting and sensor noise in one pass; the noise pattern is chosen by noiseSeed.</summary>
    public unsafe void Sensor(Mat frame, ulong noiseSeed)
    {
        if (frame.Width != _width || frame.Height != _height || frame.Type() != MatType.CV_8UC3)
            throw new ArgumentException("frame does not match the camera");
        const int mask = (1 << NoiseBits) - 1;
        var rowBytes = _width * 3;
        var gains = stackalloc ushort[rowBytes];
        fixed (ushort* columnGain = _columnGain)
        fixed (sbyte* noise = _noise)
        {
            for (var y = 0; y < _height; y++)
            {
                var row = (byte*)frame.Ptr(y);
                var rowGain = _rowGain[y];
                for (var i = 0; i < rowBytes; i++) gains[i] = (ushort)((columnGain[i] * rowGain) >> 8);
                var offset = (int)(Hashing.Of(noiseSeed, y) & mask);
                if (offset + rowBytes > mask) offset = mask - rowBytes;
                var n = noise + offset;
                var i0 = 0;
                if (Sse41.IsSupported)
                {
                    var zero = Vector128<byte>.Zero;
                    for (; i0 + 16 <= rowBytes; i0 += 16)
                    {
                        var p = Sse2.LoadVector128(row + i0);
                        var lo = Sse2.ShiftRightLogical(Sse2.MultiplyLow(Sse2.UnpackLow(p, zero).AsUInt16(), Sse2.LoadVector128(gains + i0)), 8).AsInt16();
                        var hi = Sse2.ShiftRightLogical(Sse2.MultiplyLow(Sse2.UnpackHigh(p, zero).AsUInt16(), Sse2.LoadVector128(gains + i0 + 8)), 8).AsInt16();
                        var nv = Sse2.LoadVector128(n + i0);
                        lo = Sse2.Add(lo, Sse41.ConvertToVector128Int16(nv));
                        hi = Sse2.Add(hi, Sse41.ConvertToVector128Int16(Sse2.ShiftRightLogical128BitLane(nv, 8)));
                        Sse2.Store(row + i0, Sse2.PackUnsignedSaturate(lo, hi));
                    }
                }
                for (var i = i0; i < rowBytes; i++) row[i] = Clamp(((row[i] * gains[i]) >> 8) + n[i]);
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
