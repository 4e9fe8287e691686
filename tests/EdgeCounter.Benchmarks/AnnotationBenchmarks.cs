using BenchmarkDotNet.Attributes;
using EdgeCounter.Detection;
using EdgeCounter.Publishing;
using OpenCvSharp;

namespace EdgeCounter.Benchmarks;

/// <summary>P/field/image for a 2560x1920 camera as the field publisher makes it (Mqtt:ImageHeight 480, quality 80):
/// annotated at the published height, against the previous way (annotated at full size, then shrunk by the encoder).</summary>
[MemoryDiagnoser]
public class AnnotationBenchmarks
{
    private const int Height = 480, Quality = 80, Budget = 900 * 1024;
    private static readonly string[] Header = ["sample S-1  field 12  white cells 37/100 (37%)  running", "WBC 37  granulocyte 24", "RBC 1304  Platelets 96"];
    private Mat _large = null!;
    private List<Detection.Detection> _detections = [];
    private readonly FieldAnnotator _annotator = new(["WBC", "RBC", "Platelets"]);

    [GlobalSetup]
    public void Setup()
    {
        _large = Frames.Render(2560, 1920, 1, micrometresPerPixel: 0.04)[0];
        var random = new Random(3);
        // 60 boxes of red-cell size at this scale (~200 px), as many as a field holds.
        _detections = Enumerable.Range(0, 60).Select(i =>
        {
            float x = random.Next(0, 2300), y = random.Next(0, 1700);
            return new Detection.Detection(i % 10 == 0 ? "WBC" : "RBC", i % 10 == 0 ? "WBC" : "RBC", 0.9f, new BoxF(x, y, x + 200, y + 200));
        }).ToList();
    }

    [Benchmark(Baseline = true, Description = "annotate 2560x1920, then JPEG at 480 lines")]
    public int AnnotateFullSize()
    {
        using var annotated = _annotator.Annotate(_large, _detections, Header);
        return JpegBudgetEncoder.Encode(annotated, Budget, Height, Quality).Bytes.Length;
    }

    [Benchmark(Description = "annotate at 480 lines, then JPEG")]
    public int AnnotateAtPublishedHeight()
    {
        using var annotated = _annotator.AnnotateAtHeight(_large, _detections, Header, Height);
        return JpegBudgetEncoder.Encode(annotated, Budget, Height, Quality).Bytes.Length;
    }

    [GlobalCleanup]
    public void Cleanup() => _large.Dispose();
}
