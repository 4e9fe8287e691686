using BenchmarkDotNet.Attributes;
using EdgeCounter.Detection;
using OpenCvSharp;

namespace EdgeCounter.Benchmarks;

/// <summary>The detector's pre-processing: resize (when the camera scale differs from the model's) and the NCHW tensor
/// written straight from the Mat's pixels.</summary>
[MemoryDiagnoser]
public class PreprocessBenchmarks
{
    private Mat _vga = null!;
    private Mat _large = null!;
    private readonly FrameResizer _resizer = new();
    private readonly Mat _oneStep = new();
    private float[] _tensor = [];

    [GlobalSetup]
    public void Setup()
    {
        _vga = Frames.Render(640, 480, 1)[0];
        _large = Frames.Render(2560, 1920, 1, micrometresPerPixel: 0.04)[0];
        _tensor = new float[3 * 1024 * 768];
    }

    [Benchmark(Description = "tensor 640x480 (no resize)")]
    public void Tensor640x480() => InputTensorWriter.Write(_vga, _tensor, 640, 480);

    [Benchmark(Description = "2560x1920 -> FrameResizer 1024x768 + tensor")]
    public void ResizeAndTensor2560x1920() => InputTensorWriter.Write(_resizer.Resize(_large, 1024, 768), _tensor, 1024, 768);

    // The previous pre-processing: one OpenCV area resize at the non-whole factor 2.5.
    [Benchmark(Description = "2560x1920 -> one-step INTER_AREA 1024x768 + tensor")]
    public void OneStepAreaAndTensor2560x1920()
    {
        Cv2.Resize(_large, _oneStep, new Size(1024, 768), 0, 0, InterpolationFlags.Area);
        InputTensorWriter.Write(_oneStep, _tensor, 1024, 768);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _vga.Dispose();
        _large.Dispose();
        _resizer.Dispose();
        _oneStep.Dispose();
    }
}

/// <summary>The detector's post-processing on outputs shaped like the model's for a 640x480 field: heatmap decode and
/// class-aware NMS. Peaks are laid out like a blood smear (many RBC, some platelets, a few WBC), with duplicates for NMS.</summary>
[MemoryDiagnoser]
public class PostprocessBenchmarks
{
    private const int Stride = 4, GridWidth = 160, GridHeight = 120, Classes = 3, Subtypes = 5;
    private readonly OutputGeometry _geometry = new(Classes, Subtypes, GridHeight, GridWidth, Stride);
    private float[] _heatmap = [], _size = [], _offset = [], _subtype = [];
    private readonly float[] _thresholds = [0.5f, 0.08f, 0.5f];
    private readonly List<RawDetection> _decoded = new(1024);
    private RawDetection[] _candidates = [];

    [Params(100, 400)]
    public int Peaks { get; set; } = 100;

    [GlobalSetup]
    public void Setup()
    {
        var plane = GridWidth * GridHeight;
        _heatmap = new float[Classes * plane];
        _size = new float[2 * plane];
        _offset = new float[2 * plane];
        _subtype = new float[Subtypes * plane];
        var random = new Random(5);
        for (var i = 0; i < Peaks; i++)
        {
            var cls = i % 10 == 0 ? 0 : i % 5 == 0 ? 2 : 1;
            var k = random.Next(plane);
            _heatmap[cls * plane + k] = 0.3f + 0.7f * random.NextSingle();
            var side = cls == 0 ? 60f : cls == 1 ? 36f : 12f;
            _size[k] = side;
            _size[plane + k] = side;
            _offset[k] = random.NextSingle();
            _offset[plane + k] = random.NextSingle();
            for (var s = 0; s < Subtypes; s++) _subtype[s * plane + k] = random.NextSingle();
        }
        _decoded.Clear();
        Decode();
        _candidates = _decoded.ToArray();
    }

    [Benchmark(Description = "HeatmapDecoder.Decode")]
    public int Decode()
    {
        _decoded.Clear();
        HeatmapDecoder.Decode(_heatmap, _size, _offset, _subtype, _geometry, _thresholds, subtypeClassIndex: 0, _decoded);
        return _decoded.Count;
    }

    [Benchmark(Description = "MultiClassNms.Apply")]
    public int Nms()
    {
        _decoded.Clear();
        _decoded.AddRange(_candidates);
        MultiClassNms.Apply(_decoded, 0.5f, 300);
        return _decoded.Count;
    }
}
