using OpenCvSharp;

namespace EdgeCounter.Simulation;

/// <summary>One stop of the stage: where, when, and how the focus behaved.</summary>
/// <param name="Index">0-based order of the stop in the run.</param>
/// <param name="Field">The field of view on the slide, slide pixels.</param>
/// <param name="RevisitOf">The earlier stop this one returns to (same field), or -1.</param>
/// <param name="Arrive">The stage stops moving.</param>
/// <param name="Leave">The stage starts moving again (TimeSpan.MaxValue for the last scripted stop).</param>
/// <param name="InitialDefocusSigma">Defocus on arrival (frame pixels); it settles linearly to 0.</param>
/// <param name="SharpFrom">From this time on the field is in focus (DefocusSigma = 0).</param>
public sealed record StopInfo(int Index, Rect Field, int RevisitOf, TimeSpan Arrive, TimeSpan Leave, double InitialDefocusSigma, TimeSpan SharpFrom);

/// <summary>
/// The technician's stage path: stop, move, stop... Either an explicit list of stops, or an endless meander
/// (battlement track) over the slide: along a row field by field, one row down, back along the next row;
/// neighbouring fields overlap by FieldOverlap (plus jitter); now and then the stage goes back to one of the
/// last few fields (a revisit). When the meander reaches the end of the slide it starts again at the top with
/// fresh jitter, for ever. Moves follow a trapezoidal speed profile (accelerate, cruise, decelerate).
/// Times are seconds from the start of the run. Stops are generated lazily, in order.
/// </summary>
internal sealed class StageScript
{
    private sealed record Stop(int Index, int X, int Y, int RevisitOf, double Arrive, double Leave, double Defocus, double SharpFrom);

    private readonly MicroscopeOptions _o;
    private readonly List<Stop> _stops = new();
    private readonly double _acceleration; // px/s^2
    private readonly double _speed;        // px/s
    private readonly double _settle;
    private DeterministicRandom _rng;
    private int _row, _column;
    private readonly int _columns, _rows;

    public StageScript(MicroscopeOptions options)
    {
        _o = options;
        _acceleration = options.StageAcceleration / options.MicrometresPerPixel;
        _speed = options.StageSpeed / options.MicrometresPerPixel;
        _settle = options.FocusSettleTime.TotalSeconds;
        _rng = new DeterministicRandom(Hashing.Of(options.Seed, 0x57A6E));
        var stepX = options.Width * (1 - options.FieldOverlap);
        var stepY = options.Height * (1 - options.FieldOverlap);
        _columns = Math.Max(1, (int)Math.Floor((options.SlideWidthPixels - options.Width * (1 + 2 * options.FieldJitter)) / stepX) + 1);
        _rows = Math.Max(1, (int)Math.Floor((options.SlideHeightPixels - options.Height * (1 + 2 * options.FieldJitter)) / stepY) + 1);
    }

    public StopInfo Info(int index)
    {
        var s = Get(index);
        return new StopInfo(s.Index, new Rect(s.X, s.Y, _o.Width, _o.Height), s.RevisitOf, Seconds(s.Arrive), Seconds(s.Leave), s.Defocus, Seconds(s.SharpFrom));
    }

    private static TimeSpan Seconds(double s) => double.IsPositiveInfinity(s) ? TimeSpan.MaxValue : TimeSpan.FromTicks((long)Math.Round(s * TimeSpan.TicksPerSecond));

    public (int X, int Y) StopPosition(int index) { var s = Get(index); return (s.X, s.Y); }

    public double ArriveSeconds(int index) => Get(index).Arrive;
    public double LeaveSeconds(int index) => Get(index).Leave;
    public double SharpFromSeconds(int index) => Get(index).SharpFrom;

    /// <summary>The last stop that has arrived by time t (the stage is at it, or moving away from it).</summary>
    public int LastStopBy(double t)
    {
        if (_stops.Count == 0) Generate();
        while (_stops[^1].Leave < t) Generate();
        int lo = 0, hi = _stops.Count - 1;
        while (lo < hi)
        {
            var mid = (lo + hi + 1) / 2;
            if (_stops[mid].Arrive <= t) lo = mid; else hi = mid - 1;
        }
        return lo;
    }

    /// <summary>Stage position (field top-left, slide pixels) at time t.</summary>
    public (double X, double Y) PositionAt(double t)
    {
        var i = LastStopBy(t);
        var s = _stops[i];
        if (t <= s.Leave) return (s.X, s.Y);
        var next = Get(i + 1);
        var dx = next.X - s.X;
        var dy = next.Y - s.Y;
        var distance = Math.Sqrt(dx * dx + dy * dy);
        var travelled = Travelled(distance, t - s.Leave);
        var f = distance > 0 ? travelled / distance : 1;
        return (s.X + dx * f, s.Y + dy * f);
    }

    /// <summary>Defocus sigma at time t while at stop i (linear settle from the initial blur to sharp).</summary>
    public double DefocusAt(int index, double t)
    {
        var s = Get(index);
        if (t >= s.SharpFrom) return 0;
        return s.Defocus * (1 - (t - s.Arrive) / (s.SharpFrom - s.Arrive));
    }

    /// <summary>Time a move of the given length takes (trapezoidal, or triangular for short moves).</summary>
    public double MoveTime(double distance)
    {
        if (distance <= 0) return 0;
        var a = _acceleration;
        var v = _speed;
        return distance < v * v / a ? 2 * Math.Sqrt(distance / a) : distance / v + v / a;
    }

    private double Travelled(double distance, double tau)
    {
        var total = MoveTime(distance);
        if (tau >= total) return distance;
        var a = _acceleration;
        var v = _speed;
        if (distance < v * v / a)
            return tau < total / 2 ? 0.5 * a * tau * tau : distance - 0.5 * a * (total - tau) * (total - tau);
        var ta = v / a;
        if (tau < ta) return 0.5 * a * tau * tau;
        if (tau < total - ta) return 0.5 * a * ta * ta + v * (tau - ta);
        return distance - 0.5 * a * (total - tau) * (total - tau);
    }

    private Stop Get(int index)
    {
        while (_stops.Count <= index) Generate();
        return _stops[index];
    }

    private void Generate()
    {
        var index = _stops.Count;
        var previous = index > 0 ? _stops[index - 1] : null;
        if (_o.Stops is { } script)
        {
            if (index >= script.Count) throw new InvalidOperationException("the last scripted stop lasts for ever");
            var s = script[index];
            var revisit = -1;
            for (var j = 0; j < index; j++)
                if (_stops[j].X == s.X && _stops[j].Y == s.Y) { revisit = j; break; }
            var last = index == script.Count - 1;
            Add(index, s.X, s.Y, revisit, s.Duration.TotalSeconds, s.InitialDefocusSigma, previous, last);
            return;
        }

        int x, y, revisitOf = -1;
        if (previous is not null && previous.RevisitOf < 0 && index >= 2 && _rng.Chance(_o.RevisitProbability))
        {
            // Back to one of the last few fields (never the one the stage is on).
            var back = 2 + _rng.Next(Math.Min(4, index - 1));
            var target = _stops[index - back];
            revisitOf = target.RevisitOf >= 0 ? target.RevisitOf : target.Index;
            (x, y) = (_stops[revisitOf].X, _stops[revisitOf].Y);
        }
        else
        {
            (x, y) = NextMeanderField();
        }
        var duration = _o.StopDuration.TotalSeconds + _rng.Range(-1, 1) * _o.StopDurationJitter.TotalSeconds;
        var defocus = _rng.Chance(_o.DefocusProbability)
            ? _rng.Range(1, Math.Max(1, _o.MaxInitialDefocusSigma)) * 0.1 / _o.MicrometresPerPixel
            : 0;
        Add(index, x, y, revisitOf, duration, defocus, previous, last: false);
    }

    private void Add(int index, int x, int y, int revisitOf, double duration, double defocus, Stop? previous, bool last)
    {
        var arrive = previous is null ? 0 : previous.Leave + MoveTime(Math.Sqrt(Math.Pow(x - previous.X, 2) + Math.Pow(y - previous.Y, 2)));
        var sharpFrom = defocus > 0 ? arrive + _settle : arrive;
        _stops.Add(new Stop(index, x, y, revisitOf, arrive, last ? double.PositiveInfinity : arrive + duration, defocus, sharpFrom));
    }

    private (int X, int Y) NextMeanderField()
    {
        var stepX = _o.Width * (1 - _o.FieldOverlap);
        var stepY = _o.Height * (1 - _o.FieldOverlap);
        var jx = _o.FieldJitter * _o.Width;
        var jy = _o.FieldJitter * _o.Height;
        // Battlement track: even rows left to right, odd rows right to left.
        var column = _row % 2 == 0 ? _column : _columns - 1 - _column;
        var x = jx + column * stepX + _rng.Range(-jx, jx);
        var y = jy + _row * stepY + _rng.Range(-jy, jy);
        // A diagonal step: off the row by up to half the part of a field the rows do not share (never drawn when off,
        // so runs without diagonal moves keep their stops).
        if (_o.DiagonalMoveProbability > 0 && _rng.Chance(_o.DiagonalMoveProbability))
            y += _rng.Range(-0.5, 0.5) * stepY;
        if (++_column >= _columns)
        {
            _column = 0;
            if (++_row >= _rows) _row = 0; // next pass: same track, fresh jitter
        }
        var maxX = _o.SlideWidthPixels - _o.Width;
        var maxY = _o.SlideHeightPixels - _o.Height;
        return ((int)Math.Clamp(Math.Round(x), 0, maxX), (int)Math.Clamp(Math.Round(y), 0, maxY));
    }
}
