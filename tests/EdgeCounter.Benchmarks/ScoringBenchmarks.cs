using BenchmarkDotNet.Attributes;
using EdgeCounter.Fields;
using OpenCvSharp;

namespace EdgeCounter.Benchmarks;

/// <summary>Per-frame cost of the capture side: motion + focus on alternating frames, as a still stage gives them.</summary>
[MemoryDiagnoser]
public class ScoringBenchmarks
{
    private Mat[] _frames = [];
    private FrameScorer _scorer = null!;
    private OpenCvFrameScorer _openCv = null!;
    private int _next;

    [Params("640x480", "1920x1080", "2560x1920")]
    public string Size { get; set; } = "1920x1080";

    [GlobalSetup]
    public void Setup()
    {
        var (w, h) = Frames.Parse(Size);
        _frames = Frames.Render(w, h);
        _scorer = new FrameScorer();
        _openCv = new OpenCvFrameScorer();
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

/// <summary>The scorer as it was before the managed grey copy (OpenCV resize, cvtColor, Laplacian, meanStdDev,
/// absdiff, mean): kept here as the baseline it is compared with.</summary>
public sealed class OpenCvFrameScorer(int scoringWidth = 160) : IDisposable
{
    private readonly Mat _small = new();
    private Mat _grey = new();
    private Mat _previousGrey = new();
    private readonly Mat _diff = new();
    private readonly Mat _laplacian = new();
    private bool _hasPrevious;

    public FrameScore Score(Mat bgr)
    {
        var height = Math.Max(1, (int)Math.Round(bgr.Rows * (double)scoringWidth / bgr.Cols));
        Cv2.Resize(bgr, _small, new Size(scoringWidth, height), 0, 0, InterpolationFlags.Area);
        Cv2.CvtColor(_small, _grey, ColorConversionCodes.BGR2GRAY);
        Cv2.Laplacian(_grey, _laplacian, MatType.CV_16S, 1);
        Cv2.MeanStdDev(_laplacian, out _, out var stddev);
        var motion = double.PositiveInfinity;
        if (_hasPrevious)
        {
            Cv2.Absdiff(_grey, _previousGrey, _diff);
            motion = Cv2.Mean(_diff).Val0;
        }
        (_previousGrey, _grey) = (_grey, _previousGrey);
        _hasPrevious = true;
        return new FrameScore(motion, stddev.Val0 * stddev.Val0);
    }

    public void Dispose()
    {
        _small.Dispose();
        _grey.Dispose();
        _previousGrey.Dispose();
        _diff.Dispose();
        _laplacian.Dispose();
    }
}
