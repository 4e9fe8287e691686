using EdgeCounter.Simulation;
using OpenCvSharp;

namespace EdgeCounter.Tests.Simulation;

internal static class SimulationTestKit
{
    public static byte[] Bytes(Mat mat)
    {
        Assert.True(mat.IsContinuous());
        var bytes = new byte[mat.Total() * mat.ElemSize()];
        System.Runtime.InteropServices.Marshal.Copy(mat.Data, bytes, 0, bytes.Length);
        return bytes;
    }

    /// <summary>Mean absolute difference between two images of the same size, grey levels.</summary>
    public static double MeanAbsDiff(Mat a, Mat b)
    {
        using var diff = new Mat();
        Cv2.Absdiff(a, b, diff);
        var m = Cv2.Mean(diff);
        return (m.Val0 + m.Val1 + m.Val2) / 3;
    }

    /// <summary>Gradient energy (mean squared Sobel response) along x and y of the grey image; blur along an axis lowers it.</summary>
    public static (double Dx, double Dy) Gradients(Mat bgr)
    {
        using var grey = new Mat();
        Cv2.CvtColor(bgr, grey, ColorConversionCodes.BGR2GRAY);
        using var gx = new Mat();
        using var gy = new Mat();
        Cv2.Sobel(grey, gx, MatType.CV_32F, 1, 0);
        Cv2.Sobel(grey, gy, MatType.CV_32F, 0, 1);
        using var ax = gx.Mul(gx).ToMat();
        using var ay = gy.Mul(gy).ToMat();
        return (Cv2.Mean(ax).Val0, Cv2.Mean(ay).Val0);
    }

    /// <summary>Variance of the Laplacian: high for a sharp image, low for a blurred one.</summary>
    public static double Sharpness(Mat bgr)
    {
        using var grey = new Mat();
        Cv2.CvtColor(bgr, grey, ColorConversionCodes.BGR2GRAY);
        using var lap = new Mat();
        Cv2.Laplacian(grey, lap, MatType.CV_64F);
        Cv2.MeanStdDev(lap, out _, out var std);
        return std.Val0 * std.Val0;
    }

    public static MicroscopeOptions Scripted(params ScriptedStop[] stops) => new()
    {
        Seed = 42,
        Width = 640,
        Height = 480,
        FramesPerSecond = 10,
        Exposure = TimeSpan.FromMilliseconds(10),
        NoiseSigma = 0,
        MovingDefocusSigma = 0,
        FocusSettleTime = TimeSpan.FromSeconds(0.4),
        Stops = stops,
    };
}
