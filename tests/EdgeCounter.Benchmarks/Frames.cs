using EdgeCounter.Simulation;
using OpenCvSharp;

namespace EdgeCounter.Benchmarks;

/// <summary>Still frames of the simulated microscope, as the camera would deliver them.</summary>
internal static class Frames
{
    public static Mat[] Render(int width, int height, int count = 2, double micrometresPerPixel = 0.1)
    {
        using var microscope = new SimulatedMicroscope(new MicroscopeOptions
        {
            Seed = 7, Width = width, Height = height, FramesPerSecond = 30, MicrometresPerPixel = micrometresPerPixel,
            StopDuration = TimeSpan.FromSeconds(5), StopDurationJitter = TimeSpan.Zero, DefocusProbability = 0,
        });
        return Enumerable.Range(10, count).Select(i => microscope.RenderFrame(i, out _)).ToArray();
    }

    public static (int Width, int Height) Parse(string size)
    {
        var parts = size.Split('x');
        return (int.Parse(parts[0]), int.Parse(parts[1]));
    }
}
