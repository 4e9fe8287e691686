using BenchmarkDotNet.Attributes;
using EdgeCounter.Fields;
using EdgeCounter.Testing;
using OpenCvSharp;

namespace EdgeCounter.Benchmarks;

/// <summary>Per-frame cost of the capture side: motion + focus on alternating frames, as a still stage gives them.</summary>
[MemoryDiagnoser]
public class ScoringBenchmarks
{
    private Mat[] _frames = [];
    private FrameScorer _scorer = null!;
    private OpenCvReferenceScorer _openCv = null!;
    private int _next;

    [Params("640x480", "1920x1080", "2560x1920")]
    public string Size { get; set; } = "1920x1080";

    [GlobalSetup]
    public void Setup()
    {
        var (w, h) = Frames.Parse(Size);
        _frames = Frames.Render(w, h);
        _scorer = new FrameScorer();
        _openCv = new OpenCvReferenceScorer();
    }

    [Benchmark(Baseline = true, Description = "FrameScorer.Score")]
    public FrameScore Score() => _scorer.Score(_frames[_next++ & 1]);

    [Benchmark(Description = "OpenCV calls (previous FrameScorer)")]
    public FrameScore ScoreWithOpenCv() => _openCv.Score(_frames[_next++ & 1]);

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var f in _frames) f.Dispose();
        _scorer.Dispose();
        _openCv.Dispose();
    }
}
