using EdgeCounter.Acquisition;
using Microsoft.Extensions.Logging;

namespace EdgeCounter.Simulation;

/// <summary>
/// The built-in simulated microscope as a frame source: a synthetic smear under a scripted stage. Frames carry no
/// ground truth (production types know nothing of the simulator); <see cref="TruthOf"/> serves it by frame index. Frames carry simulated capture times (start + n / fps), so the field stage debounces on
/// the simulator's clock whether frames come in real time or as fast as they can be rendered.
/// </summary>
public sealed class SimulatedFrameSource : IFrameSource
{
    private readonly SourceOptions _options;
    private readonly ILogger<SimulatedFrameSource> _logger;
    private SimulatedMicroscope? _microscope;
    private long _index;
    private readonly FramePacer _pacer;

    public SimulatedFrameSource(SourceOptions options, ILogger<SimulatedFrameSource> logger, TimeProvider? clock = null)
    {
        _options = options;
        _logger = logger;
        _pacer = new FramePacer(clock ?? TimeProvider.System, options.RealTime);
        MicroscopeOptions = options.Simulator.ToMicroscopeOptions();
    }

    private MicroscopeOptions MicroscopeOptions { get; }

    /// <summary>The microscope behind the frames (for tests that compare with ground truth).</summary>
    public SimulatedMicroscope? Microscope => _microscope;

    /// <summary>What was true when frame <paramref name="frameIndex"/> (<see cref="Frame.Index"/>) was taken.</summary>
    public FrameTruth TruthOf(long frameIndex) => (_microscope ?? throw new InvalidOperationException("OpenAsync first")).TruthAt(frameIndex);

    public string Description =>
        $"simulated microscope ({_options.Simulator.Profile}, seed {_options.Simulator.Seed}, {MicroscopeOptions.Width}x{MicroscopeOptions.Height} at {MicroscopeOptions.FramesPerSecond} fps{(_options.RealTime ? "" : ", as fast as possible")})";

    public Task OpenAsync(CancellationToken cancellationToken)
    {
        // Reopening continues the same run (same slide, same stage clock): a simulated camera does not rewind.
        if (_microscope is null)
        {
            _microscope = new SimulatedMicroscope(MicroscopeOptions);
            _pacer.Restart();
            _logger.LogInformation("Simulated microscope ready: {Description}", Description);
        }
        return Task.CompletedTask;
    }

    public async ValueTask<Frame?> ReadAsync(CancellationToken cancellationToken)
    {
        var microscope = _microscope ?? throw new InvalidOperationException("OpenAsync first");
        var offset = TimeSpan.FromTicks(microscope.FrameInterval.Ticks * _index);
        await _pacer.WaitForAsync(offset, cancellationToken).ConfigureAwait(false);
        var image = microscope.RenderFrame(_index, out _);
        return new Frame(image, _index++, _pacer.TimestampOf(offset), offset);
    }

    public ValueTask DisposeAsync()
    {
        _microscope?.Dispose();
        _microscope = null;
        return ValueTask.CompletedTask;
    }
}
