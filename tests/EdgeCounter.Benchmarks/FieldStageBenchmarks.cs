using BenchmarkDotNet.Attributes;
using EdgeCounter.Fields;
using EdgeCounter.Simulation;
using OpenCvSharp;

namespace EdgeCounter.Benchmarks;

/// <summary>
/// Per-frame cost of the whole capture-side field stage on a 1080p camera: scoring (motion, focus), stage odometry
/// (phase correlation with its candidate checks: the expensive case, frames of a move) and the stable-field decision.
/// The budget: under 3 ms per 1080p frame.
/// </summary>
[MemoryDiagnoser]
public class FieldStageBenchmarks
{
    private Mat[] _moving = [];
    private Mat[] _still = [];
    private FrameScorer _scorer = null!;
    private StageOdometry _odometry = null!;
    private StableFieldDetector _fields = null!;
    private int _next;
    private TimeSpan _time = TimeSpan.Zero;

    [GlobalSetup]
    public void Setup()
    {
        // A 30 fps camera over a move of three fields and a half (peak speed: a sixth of the frame per frame).
        using var microscope = new SimulatedMicroscope(new MicroscopeOptions
        {
            Seed = 7, Width = 1920, Height = 1080, FramesPerSecond = 30,
            Stops = [new ScriptedStop(0, 0, TimeSpan.FromSeconds(0.5)), new ScriptedStop(6000, 300, TimeSpan.FromSeconds(5))],
        });
        var frames = Enumerable.Range(0, 60).Select(i => (Image: microscope.RenderFrame(i, out var truth), truth.Moving)).ToList();
        _moving = frames.Where(f => f.Moving).Select(f => f.Image).ToArray();
        _still = frames.Where(f => !f.Moving).Take(2).Select(f => f.Image).ToArray();
        foreach (var f in frames.Where(f => !_moving.Contains(f.Image) && !_still.Contains(f.Image))) f.Image.Dispose();
        _scorer = new FrameScorer();
        _odometry = new StageOdometry();
        _fields = new StableFieldDetector(new FieldOptions());
    }

    private FieldDecision Step(Mat frame)
    {
        var score = _scorer.Score(frame);
        _odometry.Update(_scorer.Grey, _scorer.GreyWidth, _scorer.GreyHeight, frame.Cols / (double)_scorer.GreyWidth, still: score.Motion <= 2.0);
        _time += TimeSpan.FromMilliseconds(33.3);
        return _fields.Next(_time, score);
    }

    [Benchmark(Description = "score + odometry + field decision, 1080p frame of a move")]
    public FieldDecision Moving() => Step(_moving[_next++ % _moving.Length]);

    [Benchmark(Description = "score + odometry + field decision, 1080p still frame")]
    public FieldDecision Still() => Step(_still[_next++ & 1]);

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var f in _moving.Concat(_still)) f.Dispose();
        _scorer.Dispose();
        _odometry.Dispose();
    }
}
