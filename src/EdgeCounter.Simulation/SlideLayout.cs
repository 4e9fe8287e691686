namespace EdgeCounter.Simulation;

/// <summary>Noise textures of one slide, scaled to the pixel size (granules about 0.5 um, chromatin about 1 um).</summary>
internal sealed class SlideTextures(ulong slideSeed, double micrometresPerPixel)
{
    public NoiseTexture Fine { get; } = new(Hashing.Of(slideSeed, 0xF1), 0.4 / micrometresPerPixel);

    /// <summary>Fine, sparse dots: neutrophil granules, platelet granulomere.</summary>
    public NoiseTexture FineGranules { get; } = new(Hashing.Of(slideSeed, 0x61), 0.12 / micrometresPerPixel, 0.25);

    /// <summary>Coarse, packed dots: eosinophil and basophil granules.</summary>
    public NoiseTexture Granule { get; } = new(Hashing.Of(slideSeed, 0x62), 0.3 / micrometresPerPixel, 0.75);
    public NoiseTexture Medium { get; } = new(Hashing.Of(slideSeed, 0x3E), 1.0 / micrometresPerPixel);
    public NoiseTexture Coarse { get; } = new(Hashing.Of(slideSeed, 0xC0), 3.0 / micrometresPerPixel);
    public NoiseTexture Film { get; } = new(Hashing.Of(slideSeed, 0xF7), 12.0 / micrometresPerPixel);
}

/// <summary>
/// Where the cells are. The slide is cut into square slots per layer (megakaryocytes, white cells, red cells,
/// platelets); each slot holds at most one cell, jittered inside it, decided by a hash of (seed, layer, slot).
/// So any region can be generated on demand, in any order, with the same result, and nothing gigapixel is
/// ever held in memory. Heavy overlap is avoided by the bounded jitter within a layer and, across layers, by
/// dropping a cell that would overlap a cell of an earlier layer (a pure function too: earlier layers never
/// look at later ones).
/// </summary>
internal sealed class SlideLayout
{
    private enum Layer { Megakaryocyte = 0, White = 1, Red = 2, Platelet = 3 }

    private sealed record LayerSpec(double Spacing, double Jitter, double Occupancy, double MaxRadius);

    private readonly record struct Footprint(double X, double Y, double R, CellType Type, ulong Hash);

    private static readonly Layer[] Layers = [Layer.Megakaryocyte, Layer.White, Layer.Red, Layer.Platelet];

    private readonly ulong _seed;
    private readonly double _mpp;
    private readonly SlideProfile _profile;
    private readonly LayerSpec?[] _specs = new LayerSpec?[4];
    // At their full size from the start: growing, each doubled its table on the large-object heap over the first
    // half hour of a soak, memory that is the simulator's and not the service's (docs/reliability.md, run K).
    private readonly Dictionary<long, Footprint?> _footprints = new(2 * CellCacheLimit + 1);
    private readonly Dictionary<long, SlideCell?> _cells = new(CellCacheLimit + 1);

    public SlideLayout(ulong slideSeed, SlideProfile profile, double micrometresPerPixel, int widthPixels, int heightPixels)
    {
        _seed = slideSeed;
        _mpp = micrometresPerPixel;
        _profile = profile;
        Width = widthPixels;
        Height = heightPixels;
        double Px(double um) => um / micrometresPerPixel;
        // Spacing, jitter (fraction of spacing either way), occupancy. Tuned so a 64 x 48 um field holds on
        // average ~15 RBC, ~1-2 platelets and ~1 white cell (blood) or ~2.5 (marrow), like a BCCD field.
        if (profile == SlideProfile.Marrow)
        {
            _specs[(int)Layer.Megakaryocyte] = new LayerSpec(Px(220), 0.2, 0.35, Px(30));
            // Blasts reach 20 um, so the marrow white layer's largest radius is 10 um (blood keeps 9).
            _specs[(int)Layer.White] = new LayerSpec(Px(30), 0.15, 0.75, Px(10));
            _specs[(int)Layer.Red] = new LayerSpec(Px(12), 0.2, 0.62, Px(4.2));
            _specs[(int)Layer.Platelet] = new LayerSpec(Px(24), 0.35, 0.5, Px(1.8));
        }
        else
        {
            _specs[(int)Layer.White] = new LayerSpec(Px(42), 0.22, 0.55, Px(9));
            _specs[(int)Layer.Red] = new LayerSpec(Px(11.5), 0.2, 0.75, Px(4.2));
            _specs[(int)Layer.Platelet] = new LayerSpec(Px(24), 0.35, 0.6, Px(1.8));
        }
    }

    public int Width { get; }
    public int Height { get; }

    /// <summary>Every cell whose box meets [x0, x1) x [y0, y1), slide pixels.</summary>
    public List<SlideCell> CellsIn(double x0, double y0, double x1, double y1)
    {
        var result = new List<SlideCell>();
        foreach (var layer in Layers)
        {
            if (_specs[(int)layer] is not { } spec) continue;
            var reach = spec.MaxRadius * 1.15 + 2;
            var sx0 = (long)Math.Floor((x0 - reach) / spec.Spacing);
            var sx1 = (long)Math.Floor((x1 + reach) / spec.Spacing);
            var sy0 = (long)Math.Floor((y0 - reach) / spec.Spacing);
            var sy1 = (long)Math.Floor((y1 + reach) / spec.Spacing);
            for (var sy = sy0; sy <= sy1; sy++)
                for (var sx = sx0; sx <= sx1; sx++)
                {
                    var cell = Cell(layer, sx, sy);
                    if (cell is not null && cell.X1 > x0 && cell.X0 < x1 && cell.Y1 > y0 && cell.Y0 < y1) result.Add(cell);
                }
        }
        return result;
    }

    /// <summary>Cells (and twice as many candidate footprints) remembered before the caches start afresh.</summary>
    internal const int CellCacheLimit = 20_000;

    private static long Key(Layer layer, long sx, long sy) =>
        ((long)layer << 58) | ((sy & 0x1FFFFFFF) << 29) | (sx & 0x1FFFFFFF);

    private SlideCell? Cell(Layer layer, long sx, long sy)
    {
        var key = Key(layer, sx, sy);
        if (_cells.TryGetValue(key, out var cached)) return cached;
        SlideCell? cell = null;
        if (Accepted(layer, sx, sy) is { } f) cell = new SlideCell(key, f.Type, f.X, f.Y, f.R, f.Hash);
        // Bounded, and small enough to fill within minutes: a soak then measures the service, not the simulator's
        // caches filling over the first pass of the slide (hundreds of fields in view each time hold far fewer).
        if (_cells.Count > CellCacheLimit) _cells.Clear();
        _cells[key] = cell;
        return cell;
    }

    /// <summary>The slot's cell footprint if it exists and does not clash with an earlier layer.</summary>
    private Footprint? Accepted(Layer layer, long sx, long sy)
    {
        var key = Key(layer, sx, sy);
        if (_footprints.TryGetValue(key, out var cached)) return cached;
        var f = Candidate(layer, sx, sy);
        if (f is { } c)
        {
            for (var earlier = 0; earlier < (int)layer && f is not null; earlier++)
            {
                if (_specs[earlier] is not { } spec) continue;
                // Red cells may just touch white cells; platelets keep clear of everything.
                var allowed = layer == Layer.Platelet ? 1.0 : 0.95;
                var reach = c.R + spec.MaxRadius;
                var ex0 = (long)Math.Floor((c.X - reach) / spec.Spacing);
                var ex1 = (long)Math.Floor((c.X + reach) / spec.Spacing);
                var ey0 = (long)Math.Floor((c.Y - reach) / spec.Spacing);
                var ey1 = (long)Math.Floor((c.Y + reach) / spec.Spacing);
                for (var ey = ey0; ey <= ey1 && f is not null; ey++)
                    for (var ex = ex0; ex <= ex1; ex++)
                        if (Accepted((Layer)earlier, ex, ey) is { } o && Distance(o, c) < (o.R + c.R) * allowed)
                        {
                            f = null;
                            break;
                        }
            }
        }
        if (_footprints.Count > 2 * CellCacheLimit) _footprints.Clear();
        _footprints[key] = f;
        return f;
    }

    private static double Distance(Footprint a, Footprint b) => Math.Sqrt((a.X - b.X) * (a.X - b.X) + (a.Y - b.Y) * (a.Y - b.Y));

    private Footprint? Candidate(Layer layer, long sx, long sy)
    {
        var spec = _specs[(int)layer]!;
        var h = Hashing.Of(_seed, (long)layer + 1, sx, sy);
        var occupancy = spec.Occupancy;
        // The smear is thicker in some areas and thinner in others: red-cell density drifts across the slide.
        if (layer == Layer.Red) occupancy *= 0.65 + 0.6 * SmoothNoise((sx + 0.5) * spec.Spacing * _mpp / 300, (sy + 0.5) * spec.Spacing * _mpp / 300);
        if (Hashing.Unit(h) >= occupancy) return null;
        var x = (sx + 0.5 + (Hashing.Unit(Hashing.Mix(h + 3)) - 0.5) * 2 * spec.Jitter) * spec.Spacing;
        var y = (sy + 0.5 + (Hashing.Unit(Hashing.Mix(h + 4)) - 0.5) * 2 * spec.Jitter) * spec.Spacing;
        var type = layer switch
        {
            Layer.Megakaryocyte => CellType.Megakaryocyte,
            Layer.Red => CellType.Erythrocyte,
            Layer.Platelet => CellType.Platelet,
            _ => WhiteType(Hashing.Unit(Hashing.Mix(h + 1))),
        };
        var diameterUm = type == CellType.Erythroblast
            ? ErythroblastMaturity.Diameter(ErythroblastMaturity.Of(h), Hashing.Unit(Hashing.Mix(h + 2)))
            : Diameter(type, Hashing.Unit(Hashing.Mix(h + 2)), Hashing.Unit(Hashing.Mix(h + 5)));
        var r = diameterUm / 2 / _mpp;
        // Whole cells only: keep them (with their outline wobble) inside the slide.
        var margin = r * 1.15 + 1;
        if (x < margin || y < margin || x > Width - margin || y > Height - margin) return null;
        return new Footprint(x, y, r, type, h);
    }

    /// <summary>Smooth value noise in [0, 1] with unit lattice spacing, from hashes of the lattice points.</summary>
    private double SmoothNoise(double x, double y)
    {
        var x0 = (long)Math.Floor(x);
        var y0 = (long)Math.Floor(y);
        var tx = x - x0;
        var ty = y - y0;
        tx = tx * tx * (3 - 2 * tx);
        ty = ty * ty * (3 - 2 * ty);
        double L(long i, long j) => Hashing.Unit(Hashing.Of(_seed, 0xDE75, i, j));
        var a = L(x0, y0) + (L(x0 + 1, y0) - L(x0, y0)) * tx;
        var b = L(x0, y0 + 1) + (L(x0 + 1, y0 + 1) - L(x0, y0 + 1)) * tx;
        return a + (b - a) * ty;
    }

    private static readonly (CellType Type, double Weight)[] BloodMix =
        [(CellType.Neutrophil, 0.60), (CellType.Eosinophil, 0.03), (CellType.Basophil, 0.01), (CellType.Lymphocyte, 0.30), (CellType.Monocyte, 0.06)];

    /// <summary>Shares of the marrow's white layer (nucleated cells but megakaryocytes); they sum to 1.</summary>
    internal static readonly (CellType Type, double Weight)[] MarrowMix =
    [
        (CellType.Neutrophil, 0.20), (CellType.BandNeutrophil, 0.12), (CellType.Metamyelocyte, 0.10), (CellType.Myelocyte, 0.12),
        (CellType.Eosinophil, 0.03), (CellType.Basophil, 0.01),
        (CellType.Erythroblast, 0.22),
        (CellType.Lymphocyte, 0.105), (CellType.Monocyte, 0.02), (CellType.PlasmaCell, 0.06), (CellType.Blast, 0.015),
    ];

    private CellType WhiteType(double u)
    {
        // Blood: a normal adult differential. Marrow: a normal adult marrow (docs/simulator.md): granulocytic lineage
        // 58 % with its precursors, erythroid 22 % (M:E about 2.6), plasma cells kept clearly present (6 %).
        (CellType Type, double Weight)[] weights = _profile == SlideProfile.Marrow ? MarrowMix : BloodMix;
        var total = weights.Sum(w => w.Weight);
        var acc = 0.0;
        foreach (var (type, weight) in weights)
        {
            acc += weight / total;
            if (u < acc) return type;
        }
        return weights[^1].Type;
    }

    /// <summary>Cell diameters in micrometres (Wright-Giemsa smear, adult).</summary>
    private static double Diameter(CellType type, double u, double v) => type switch
    {
        CellType.Erythrocyte => 7.2 + 1.2 * u,
        CellType.Platelet => 1.8 + 1.4 * u,
        CellType.Neutrophil => 10 + 2 * u,
        CellType.Eosinophil => 12 + 2 * u,
        CellType.Basophil => 10 + 2 * u,
        CellType.Lymphocyte => v < 0.8 ? 7 + 2 * u : 9 + 3 * u,
        CellType.Monocyte => 14 + 4 * u,
        CellType.PlasmaCell => 10 + 5 * u,
        CellType.Megakaryocyte => 30 + 30 * u,
        CellType.Myelocyte => 12 + 6 * u,
        CellType.Metamyelocyte => 10 + 5 * u,
        CellType.BandNeutrophil => 10 + 2 * u,
        CellType.Blast => 12 + 8 * u,
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };
}
