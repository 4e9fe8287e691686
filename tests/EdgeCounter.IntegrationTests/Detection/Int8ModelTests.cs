using EdgeCounter.Acquisition;
using EdgeCounter.Detection;
using Microsoft.Extensions.Logging.Abstractions;
using OpenCvSharp;

namespace EdgeCounter.IntegrationTests.Detection;

/// <summary>
/// models/cellnet-int8.onnx (models/training/quantize.sh) finds the cells the fp32 graph finds: on the parity image
/// and on simulated fields, every clear detection of one (score at least 0.1 above its class's threshold) has a
/// detection of the same class in the other, boxes overlapping by IoU ≥ 0.7, and the counts agree.
/// </summary>
public class Int8ModelTests
{
    private static readonly string Int8Path = Path.Combine(RealModel.RepositoryRoot ?? ".", "models", "cellnet-int8.onnx");

    private static OnnxCellDetector Open(string path) => CellDetectorFactory.Open(new DetectorOptions
    {
        ModelPath = path, ExecutionProvider = ExecutionProviderPreference.Cpu, IntraOpThreads = 2, InputScale = 1, UseSubtypeStage = false,
    }, NullLogger.Instance);

    private static IEnumerable<Mat> Fields()
    {
        yield return Cv2.ImRead(Path.Combine(RealModel.ParityDirectory, "input.png"), ImreadModes.Color);
        using var microscope = new EdgeCounter.Simulation.SimulatedMicroscope(new EdgeCounter.Simulation.MicroscopeOptions
        {
            Seed = 21, Width = 640, Height = 480, FramesPerSecond = 30, MicrometresPerPixel = 0.1,
            StopDuration = TimeSpan.FromSeconds(5), StopDurationJitter = TimeSpan.Zero, DefocusProbability = 0,
        });
        for (var i = 0; i < 3; i++) yield return microscope.RenderFrame(10 + 200 * i, out _);
    }

    [Fact]
    public void TheInt8GraphFindsTheCellsTheFp32GraphFinds()
    {
        Assert.True(File.Exists(Int8Path), $"{Int8Path} is missing: models/training/quantize.sh makes it");
        using var fp32 = Open(RealModel.ModelPath);
        using var int8 = Open(Int8Path);
        Assert.Equal(fp32.Labels.Classes, int8.Labels.Classes);
        var classes = fp32.Labels.Classes.ToList();
        int clearFp32 = 0, clearInt8 = 0;
        foreach (var field in Fields())
            using (field)
            {
                var a = fp32.Detect(field).Detections;
                var b = int8.Detect(field).Detections;
                bool Clear(EdgeCounter.Detection.Detection d) => d.Score >= fp32.ScoreThresholds[classes.IndexOf(d.Class)] + 0.1f;
                bool Found(EdgeCounter.Detection.Detection d, IReadOnlyList<EdgeCounter.Detection.Detection> other) =>
                    other.Any(o => o.Class == d.Class && o.Box.IoU(d.Box) >= 0.7f);
                foreach (var d in a.Where(Clear)) { clearFp32++; Assert.True(Found(d, b), $"fp32 found {d}; int8 has no such cell"); }
                foreach (var d in b.Where(Clear)) { clearInt8++; Assert.True(Found(d, a), $"int8 found {d}; fp32 has no such cell"); }
                foreach (var c in classes)
                {
                    int na = a.Count(d => d.Class == c), nb = b.Count(d => d.Class == c);
                    Assert.True(Math.Abs(na - nb) <= Math.Max(2, na / 10), $"{c}: fp32 counts {na}, int8 {nb}");
                }
            }
        Assert.True(clearFp32 >= 50, $"only {clearFp32} clear cells: the fields should hold more");
        Assert.True(clearInt8 >= 50);
    }
}
