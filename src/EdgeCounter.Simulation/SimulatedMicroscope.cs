using System.Diagnostics;
using System.Runtime.CompilerServices;
using OpenCvSharp;

namespace EdgeCounter.Simulation;

/// <summary>
/// A microscope with a motorised stage and a camera over one procedurally generated slide.
/// Frame n is taken at time n / FramesPerSecond, exposed for Exposure; everything (slide, path, noise) follows
/// from the options (copied at construction), so the same options give the same frames. Safe to call from
/// several threads: calls are serialised (one frame renders at a time).
/// </summary>
public sealed class SimulatedMicroscope : IDisposable
{
    private readonly MicroscopeOptions _options;
    private readonly SlideRenderer _slide;
    private readonly CameraOptics _optics;
    private readonly StageScript _stage;
    private readonly double _fps;
    private readonly double _exposure;
    private readonly List<(long Id, CellType Type)[]> _stopCells = new();
    private readonly Dictionary<long, CellType> _countable = new();
    private int _countedStops; // stops [0, _countedStops) already folded into _countable
    private long _countedUpTo = -1;
    private readonly Lock _gate = new();

    // Frame times are n / fps in floating point; a frame "at" a stop's arrival must count as being there.
    private const double TimeEpsilon = 1e-9;

    public SimulatedMicroscope(MicroscopeOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options.Copy();
        options = _options;
        _fps = options.FramesPerSecond;
        _exposure = options.Exposure.TotalSeconds;
        var slideSeed = Hashing.Of(options.Seed, 0x511DE);
        _slide = new SlideRenderer(slideSeed, options.Profile, options.MicrometresPerPixel, options.SlideWidthPixels, options.SlideHeightPixels,
            options.NoiseSigma, options.EffectiveTileCacheCapacity);
        _optics = new CameraOptics(options.Width, options.Height, _slide.Palette.VignetteStrength, _slide.Palette.NoiseSigma, slideSeed);
        _stage = new StageScript(options);
    }

    public MicroscopeOptions Options => _options;

    public TimeSpan FrameInterval => TimeSpan.FromSeconds(1 / _fps);

    /// <summary>Slide tiles rendered so far (the rest came from the cache).</summary>
    public long TilesRendered { get { lock (_gate) return _slide.TilesRendered; } }

    /// <summary>Slide tiles held in the cache now (bounded by TileCacheCapacity).</summary>
    public int CachedTiles { get { lock (_gate) return _slide.CachedTiles; } }

    internal SlideLayout Layout => _slide.Layout;

    /// <summary>The stage's stop with this index (generated on demand).</summary>
    public StopInfo GetStop(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        lock (_gate) return _stage.Info(index);
    }

    /// <summary>The last stop reached by the given frame's exposure start (the stage is there or moving on from it).</summary>
    public int StopIndexAt(long frameIndex)
    {
        lock (_gate) return _stage.LastStopBy(frameIndex / _fps + TimeEpsilon);
    }

    /// <summary>The first frame at the stop that is still and sharp, or -1 if the stop ends before one.</summary>
    public long FirstCountableFrame(int stopIndex)
    {
        lock (_gate) return FirstCountableFrameCore(stopIndex);
    }

    private long FirstCountableFrameCore(int stopIndex)
    {
        var from = Math.Max(_stage.ArriveSeconds(stopIndex), _stage.SharpFromSeconds(stopIndex));
        var frame = (long)Math.Ceiling(from * _fps - TimeEpsilon * _fps);
        return frame / _fps + _exposure <= _stage.LeaveSeconds(stopIndex) + TimeEpsilon ? frame : -1;
    }

    /// <summary>Cells of a stop that a perfect counter counts there: those whose centre lies inside the field.</summary>
    public IReadOnlyList<(long Id, CellType Type)> CountableCellsAt(int stopIndex)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(stopIndex);
        lock (_gate) return CountableCellsAtCore(stopIndex);
    }

    private (long Id, CellType Type)[] CountableCellsAtCore(int stopIndex)
    {
        while (_stopCells.Count <= stopIndex)
        {
            var (x, y) = _stage.StopPosition(_stopCells.Count);
            _stopCells.Add(_slide.Layout.CellsIn(x, y, x + _options.Width, y + _options.Height)
                .Where(c => c.Cx >= x && c.Cx < x + _options.Width && c.Cy >= y && c.Cy < y + _options.Height)
                .Select(c => (c.Id, c.Type)).ToArray());
        }
        return _stopCells[stopIndex];
    }

    /// <summary>
    /// The distinct cells a perfect counter has counted by the given frame: the union, over every stop that had
    /// at least one still and sharp frame at or before lastFrameIndex, of the cells whose centre lies in that field.
    /// A revisit or an overlapping neighbour adds nothing for cells already counted.
    /// </summary>
    public IReadOnlyDictionary<long, CellType> CountableCellTypes(long lastFrameIndex)
    {
        lock (_gate) return CountableCellTypesCore(lastFrameIndex);
    }

    private Dictionary<long, CellType> CountableCellTypesCore(long lastFrameIndex)
    {
        if (lastFrameIndex < _countedUpTo) return Countable(lastFrameIndex, 0, new Dictionary<long, CellType>());
        _countedStops = Fold(lastFrameIndex, _countedStops, _countable);
        _countedUpTo = lastFrameIndex;
        return new Dictionary<long, CellType>(_countable);
    }

    /// <summary>The ids of <see cref="CountableCellTypes"/>.</summary>
    public IReadOnlySet<long> CountableCells(long lastFrameIndex) => CountableCellTypes(lastFrameIndex).Keys.ToHashSet();

    private Dictionary<long, CellType> Countable(long lastFrameIndex, int fromStop, Dictionary<long, CellType> into)
    {
        Fold(lastFrameIndex, fromStop, into);
        return into;
    }

    /// <summary>Adds countable stops from fromStop on; returns the first stop not yet complete (still able to become countable).</summary>
    private int Fold(long lastFrameIndex, int fromStop, Dictionary<long, CellType> into)
    {
        if (lastFrameIndex < 0) return fromStop;
        var lastStop = _stage.LastStopBy(lastFrameIndex / _fps + TimeEpsilon);
        var firstOpen = fromStop;
        for (var i = fromStop; i <= lastStop; i++)
        {
            var first = FirstCountableFrameCore(i);
            if (first >= 0 && first <= lastFrameIndex)
                foreach (var (id, type) in CountableCellsAtCore(i)) into.TryAdd(id, type);
            else if (first > lastFrameIndex) continue; // may still become countable later
            if (firstOpen == i) firstOpen = i + 1;
        }
        return firstOpen;
    }

    /// <summary>Renders frame n (BGR 8UC3, caller disposes) and says what was true when it was taken.</summary>
    public Mat RenderFrame(long frameIndex, out FrameTruth truth)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(frameIndex);
        lock (_gate) return RenderFrameCore(frameIndex, out truth);
    }

    /// <summary>What was true when frame n was taken (the same truth <see cref="RenderFrame"/> gives), without rendering it.</summary>
    public FrameTruth TruthAt(long frameIndex)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(frameIndex);
        lock (_gate) return TruthOf(ViewAt(frameIndex));
    }

    /// <summary>Where the stage is during frame n's exposure, and how the frame is blurred.</summary>
    private readonly record struct FrameView(long FrameIndex, double T0, int Stop, bool Still, double X0, double Y0, double X1, double Y1, int X, int Y, double Defocus);

    private FrameView ViewAt(long frameIndex)
    {
        var t0 = frameIndex / _fps;
        var t1 = t0 + _exposure;
        var stop = _stage.LastStopBy(t0 + TimeEpsilon);
        var still = t1 <= _stage.LeaveSeconds(stop) + TimeEpsilon && t0 + TimeEpsilon >= _stage.ArriveSeconds(stop);
        // Still: exactly the stop's position. Moving: the position mid-exposure, blurred by the travel.
        var (x0, y0) = still ? _stage.StopPosition(stop) : _stage.PositionAt(t0);
        var (x1, y1) = still ? _stage.StopPosition(stop) : _stage.PositionAt(t1);
        var (xm, ym) = still ? _stage.StopPosition(stop) : _stage.PositionAt((t0 + t1) / 2);
        var defocus = still ? _stage.DefocusAt(stop, t0 + TimeEpsilon) : _options.MovingDefocusSigma;
        return new FrameView(frameIndex, t0, stop, still, x0, y0, x1, y1, (int)Math.Round(xm), (int)Math.Round(ym), defocus);
    }

    private FrameTruth TruthOf(FrameView view) => new(
        view.FrameIndex, TimeSpan.FromTicks((long)Math.Round(view.T0 * TimeSpan.TicksPerSecond)), view.X, view.Y, !view.Still, view.Defocus,
        view.Still ? view.Stop : -1, view.Still ? _stage.Info(view.Stop).RevisitOf : -1,
        CellsInView(_slide.Layout, view.X, view.Y, _options.Width, _options.Height));

    private Mat RenderFrameCore(long frameIndex, out FrameTruth truth)
    {
        var view = ViewAt(frameIndex);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var frame = new Mat(_options.Height, _options.Width, MatType.CV_8UC3);
        try
        {
            _slide.Compose(frame, view.X, view.Y);
            // The field slides under the camera: image content moves opposite to the stage.
            if (!view.Still) CameraOptics.Blur(frame, view.X1 - view.X0, view.Y1 - view.Y0, view.Defocus);
            else CameraOptics.Blur(frame, 0, 0, view.Defocus);
            _optics.Sensor(frame, Hashing.Of(_options.Seed, 0xF4A3E, frameIndex));
            CameraOptics.Jpeg(frame, _options.JpegQuality);
        }
        catch
        {
            frame.Dispose();
            throw;
        }

        if (view.Still && _options.PrefetchBudget > TimeSpan.Zero && _stage.LeaveSeconds(view.Stop) < double.PositiveInfinity)
            _slide.Prefetch(PathAhead(view.Stop), clock, _options.PrefetchBudget);

        truth = TruthOf(view);
        return frame;
    }

    /// <summary>
    /// The camera's stream. Real time: frame n is delivered at n x FrameInterval after the first; when rendering or
    /// the consumer falls behind, the camera skips to the frame due now (indices jump, as a real camera drops
    /// frames). Otherwise: frames 0, 1, 2... as fast as they render. Each frame's Mat belongs to the consumer.
    /// </summary>
    public async IAsyncEnumerable<SimulatedFrame> FramesAsync(bool realTime, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var clock = Stopwatch.StartNew();
        long next = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            if (realTime)
            {
                var due = TimeSpan.FromSeconds(next / _fps);
                var wait = due - clock.Elapsed;
                if (wait > TimeSpan.Zero) await Task.Delay(wait, cancellationToken).ConfigureAwait(false);
                else next = Math.Max(next, (long)Math.Floor(clock.Elapsed.TotalSeconds * _fps));
            }
            var image = RenderFrame(next, out var truth);
            yield return new SimulatedFrame(image, truth);
            next++;
            if (!realTime) await Task.Yield();
        }
    }

    /// <summary>Fields along the move from this stop to the next, nearest first, then the next field itself.</summary>
    private IEnumerable<Rect> PathAhead(int stop)
    {
        var (x0, y0) = _stage.StopPosition(stop);
        var (x1, y1) = _stage.StopPosition(stop + 1);
        var distance = Math.Sqrt((double)(x1 - x0) * (x1 - x0) + (double)(y1 - y0) * (y1 - y0));
        var steps = Math.Max(1, (int)Math.Ceiling(distance / (SlideRenderer.TileSize / 2.0)));
        for (var i = 1; i <= steps; i++)
        {
            var f = (double)i / steps;
            yield return new Rect((int)Math.Round(x0 + (x1 - x0) * f), (int)Math.Round(y0 + (y1 - y0) * f), _options.Width, _options.Height);
        }
    }

    /// <summary>Cells whose drawn box meets the view, boxes in view pixels clipped to it.</summary>
    internal static IReadOnlyList<CellTruth> CellsInView(SlideLayout layout, int x, int y, int width, int height)
    {
        var cells = layout.CellsIn(x, y, x + width, y + height);
        var result = new List<CellTruth>(cells.Count);
        foreach (var c in cells)
        {
            var left = Math.Max(c.X0 - x, 0);
            var top = Math.Max(c.Y0 - y, 0);
            var right = Math.Min(c.X1 - x, width);
            var bottom = Math.Min(c.Y1 - y, height);
            if (right <= left || bottom <= top) continue;
            var truncated = c.X0 - x < 0 || c.Y0 - y < 0 || c.X1 - x > width || c.Y1 - y > height;
            result.Add(new CellTruth(c.Id, c.Type, new Rect2f((float)left, (float)top, (float)(right - left), (float)(bottom - top))) { Truncated = truncated, SlideX = c.Cx, SlideY = c.Cy, Radius = c.Radius });
        }
        return result;
    }

    public void Dispose()
    {
        lock (_gate) _slide.Dispose();
    }
}

/// <summary>One frame of the simulated camera: the image (BGR 8UC3, owned by whoever holds it) and its truth.</summary>
public sealed record SimulatedFrame(Mat Image, FrameTruth Truth) : IDisposable
{
    public void Dispose() => Image.Dispose();
}
