namespace EdgeCounter.Simulation;

/// <summary>A circle in a cell's own frame (pixels, rotated with the cell).</summary>
internal readonly record struct Blob(float X, float Y, float R);

/// <summary>
/// One cell on the slide: position, outline and inner structure, all drawn from a hash of its id,
/// so it looks the same in every tile and every frame. Paint adds its dye density to a tile buffer.
/// </summary>
internal sealed class SlideCell
{
    public long Id { get; }
    public CellType Type { get; }
    public double Cx { get; }
    public double Cy { get; }
    public double Radius { get; }

    /// <summary>Tight box of the drawn pixels, slide pixels: [X0, X1) x [Y0, Y1).</summary>
    public double X0 { get; }
    public double Y0 { get; }
    public double X1 { get; }
    public double Y1 { get; }

    private readonly double _aspect, _cos, _sin, _a2c, _a2s, _a3c, _a3s, _maxWobble;
    private readonly Blob[] _nucleus;
    private readonly Blob? _notch;
    private readonly Blob? _halo;
    private readonly Blob[] _vacuoles;
    private readonly Blob[] _nucleoli = [];
    private readonly double _maturity;
    private readonly double _pallorRadius, _pallorDepth, _density, _chromatinContrast;
    private readonly int _textureX, _textureY;

    public SlideCell(long id, CellType type, double cx, double cy, double radius, ulong hash)
    {
        Id = id;
        Type = type;
        Cx = cx;
        Cy = cy;
        Radius = radius;
        var rng = new DeterministicRandom(hash ^ 0xC311UL);
        var angle = rng.Range(0, 2 * Math.PI);
        _cos = Math.Cos(angle);
        _sin = Math.Sin(angle);
        _textureX = rng.Next(NoiseTexture.Size);
        _textureY = rng.Next(NoiseTexture.Size);
        _density = rng.Range(0.85, 1.15);
        _chromatinContrast = rng.Range(0.35, 0.6);
        double a2, a3;
        var nucleus = new List<Blob>();
        var vacuoles = new List<Blob>();
        var r = radius;
        switch (type)
        {
            case CellType.Erythrocyte:
                _aspect = rng.Range(0.88, 1.0);
                a2 = rng.Range(0, 0.04);
                a3 = rng.Range(0, 0.025);
                _pallorRadius = rng.Range(0.3, 0.55);
                _pallorDepth = rng.Range(0.3, 0.6);
                break;
            case CellType.Platelet:
                _aspect = rng.Range(0.65, 1.0);
                a2 = rng.Range(0.04, 0.14);
                a3 = rng.Range(0.03, 0.1);
                break;
            case CellType.Neutrophil:
            {
                _aspect = rng.Range(0.9, 1.0);
                a2 = rng.Range(0, 0.03);
                a3 = rng.Range(0, 0.02);
                var lobes = rng.NextDouble() switch { < 0.15 => 2, < 0.6 => 3, < 0.9 => 4, _ => 5 };
                var lobeR = r * (lobes <= 3 ? rng.Range(0.27, 0.32) : rng.Range(0.22, 0.27));
                var pathR = r * rng.Range(0.36, 0.44);
                var step = 2 * lobeR / pathR * rng.Range(0.95, 1.15);
                var start = rng.Range(0, 2 * Math.PI);
                Blob? previous = null;
                for (var i = 0; i < lobes; i++)
                {
                    // Lobes strung along an arc, joined by thin chromatin filaments.
                    var t = start + (i - (lobes - 1) / 2.0) * step + rng.Range(-0.15, 0.15);
                    var lobe = new Blob((float)(pathR * Math.Cos(t)), (float)(pathR * Math.Sin(t) * _aspect), (float)(lobeR * rng.Range(0.85, 1.1)));
                    if (previous is { } p)
                        for (var k = 1; k <= 3; k++)
                        {
                            var f = k / 4f;
                            nucleus.Add(new Blob(p.X + (lobe.X - p.X) * f, p.Y + (lobe.Y - p.Y) * f, (float)(r * 0.07)));
                        }
                    // Each lobe is a short sausage across the arc, not a ball.
                    var (ex, ey) = ((float)(Math.Cos(t) * lobe.R * 0.4), (float)(Math.Sin(t) * lobe.R * 0.4 * _aspect));
                    nucleus.Add(lobe with { X = lobe.X + ex, Y = lobe.Y + ey, R = lobe.R * 0.78f });
                    nucleus.Add(lobe with { X = lobe.X - ex, Y = lobe.Y - ey, R = lobe.R * 0.78f });
                    previous = lobe;
                }
                break;
            }
            case CellType.Eosinophil:
            case CellType.Basophil:
            {
                _aspect = rng.Range(0.9, 1.0);
                a2 = rng.Range(0, 0.03);
                a3 = rng.Range(0, 0.02);
                var lobeR = r * rng.Range(0.3, 0.36);
                var off = r * rng.Range(0.3, 0.38);
                var t = rng.Range(0, 2 * Math.PI);
                var (dx, dy) = ((float)(off * Math.Cos(t)), (float)(off * Math.Sin(t) * _aspect));
                nucleus.Add(new Blob(dx, dy, (float)lobeR));
                nucleus.Add(new Blob(-dx, -dy, (float)(lobeR * rng.Range(0.85, 1.05))));
                nucleus.Add(new Blob(0, 0, (float)(r * 0.08)));
                break;
            }
            case CellType.Lymphocyte:
            {
                _aspect = rng.Range(0.9, 1.0);
                a2 = rng.Range(0, 0.03);
                a3 = rng.Range(0, 0.02);
                var nr = r * rng.Range(0.74, 0.86);
                var t = rng.Range(0, 2 * Math.PI);
                var off = r - nr - r * rng.Range(0.03, 0.1);
                nucleus.Add(new Blob((float)(off * Math.Cos(t)), (float)(off * Math.Sin(t)), (float)nr));
                if (rng.Chance(0.3)) _notch = new Blob((float)((off + nr) * Math.Cos(t + 0.8)), (float)((off + nr) * Math.Sin(t + 0.8)), (float)(nr * 0.25));
                break;
            }
            case CellType.Monocyte:
            {
                _aspect = rng.Range(0.85, 1.0);
                a2 = rng.Range(0.01, 0.05);
                a3 = rng.Range(0, 0.03);
                var nr = r * rng.Range(0.5, 0.58);
                var t = rng.Range(0, 2 * Math.PI);
                var off = r * 0.1;
                var (cx0, cy0) = (off * Math.Cos(t), off * Math.Sin(t));
                nucleus.Add(new Blob((float)cx0, (float)cy0, (float)nr));
                // Folded: a second overlapping blob; kidney: a notch bitten out of the far side.
                nucleus.Add(new Blob((float)(cx0 + nr * 0.45 * Math.Cos(t + 1.6)), (float)(cy0 + nr * 0.45 * Math.Sin(t + 1.6)), (float)(nr * 0.75)));
                _notch = new Blob((float)(cx0 - nr * 1.05 * Math.Cos(t)), (float)(cy0 - nr * 1.05 * Math.Sin(t)), (float)(nr * rng.Range(0.45, 0.6)));
                for (var i = rng.Next(4); i > 0; i--)
                {
                    var vt = rng.Range(0, 2 * Math.PI);
                    var vr = r * rng.Range(0.72, 0.85);
                    vacuoles.Add(new Blob((float)(vr * Math.Cos(vt)), (float)(vr * Math.Sin(vt) * _aspect), (float)(r * rng.Range(0.04, 0.08))));
                }
                break;
            }
            case CellType.PlasmaCell:
            {
                _aspect = rng.Range(0.68, 0.85);
                a2 = rng.Range(0, 0.03);
                a3 = rng.Range(0, 0.02);
                var nr = r * _aspect * rng.Range(0.6, 0.72);
                var off = r - nr - r * 0.06;
                var side = rng.Chance(0.5) ? 1 : -1;
                nucleus.Add(new Blob((float)(side * off), 0, (float)nr));
                // Perinuclear halo (Golgi zone): pale crescent beside the nucleus towards the cell centre.
                _halo = new Blob((float)(side * (off - nr * 0.9)), 0, (float)(nr * 0.6));
                break;
            }
            case CellType.Megakaryocyte:
            {
                _aspect = rng.Range(0.85, 1.0);
                a2 = rng.Range(0.02, 0.06);
                a3 = rng.Range(0.01, 0.04);
                var lobes = 6 + rng.Next(9);
                for (var i = 0; i < lobes; i++)
                {
                    var t = rng.Range(0, 2 * Math.PI);
                    var d = r * Math.Sqrt(rng.NextDouble()) * 0.45;
                    nucleus.Add(new Blob((float)(d * Math.Cos(t)), (float)(d * Math.Sin(t) * _aspect), (float)(r * rng.Range(0.18, 0.3))));
                }
                break;
            }
            case CellType.Erythroblast:
            {
                _maturity = ErythroblastMaturity.Of(hash);
                _aspect = rng.Range(0.92, 1.0);
                a2 = rng.Range(0, 0.025);
                a3 = rng.Range(0, 0.015);
                // Round and central, shrinking as it condenses (small and pyknotic when orthochromatic, a little
                // off centre before it is pushed out).
                var nr = r * (0.72 - 0.28 * _maturity) * rng.Range(0.94, 1.05);
                var off = r * rng.Range(0, 0.06 + 0.12 * _maturity);
                var t = rng.Range(0, 2 * Math.PI);
                nucleus.Add(new Blob((float)(off * Math.Cos(t)), (float)(off * Math.Sin(t) * _aspect), (float)nr));
                break;
            }
            case CellType.Myelocyte:
            {
                _aspect = rng.Range(0.85, 1.0);
                a2 = rng.Range(0, 0.03);
                a3 = rng.Range(0, 0.02);
                // Round to oval and eccentric, leaving a crescent of granular cytoplasm on one side.
                var nr = r * rng.Range(0.5, 0.6);
                var t = rng.Range(0, 2 * Math.PI);
                var off = r * rng.Range(0.16, 0.26);
                var (cx0, cy0) = (off * Math.Cos(t), off * Math.Sin(t) * _aspect);
                var (px, py) = (Math.Cos(t + Math.PI / 2), Math.Sin(t + Math.PI / 2) * _aspect);
                var stretch = nr * rng.Range(0.1, 0.3);
                nucleus.Add(new Blob((float)(cx0 + stretch * px), (float)(cy0 + stretch * py), (float)(nr * 0.9)));
                nucleus.Add(new Blob((float)(cx0 - stretch * px), (float)(cy0 - stretch * py), (float)(nr * 0.9)));
                break;
            }
            case CellType.Metamyelocyte:
            {
                _aspect = rng.Range(0.88, 1.0);
                a2 = rng.Range(0, 0.03);
                a3 = rng.Range(0, 0.02);
                // Kidney: a bean of two blobs with a notch bitten out of the side that faces the cell centre.
                var nr = r * rng.Range(0.46, 0.54);
                var t = rng.Range(0, 2 * Math.PI);
                var off = r * rng.Range(0.1, 0.18);
                var (cx0, cy0) = (off * Math.Cos(t), off * Math.Sin(t) * _aspect);
                var (px, py) = (Math.Cos(t + Math.PI / 2), Math.Sin(t + Math.PI / 2));
                var stretch = nr * rng.Range(0.38, 0.5);
                nucleus.Add(new Blob((float)(cx0 + stretch * px), (float)(cy0 + stretch * py), (float)(nr * 0.8)));
                nucleus.Add(new Blob((float)(cx0 - stretch * px), (float)(cy0 - stretch * py), (float)(nr * 0.8)));
                // A wide, shallow bay (not a round bite): a big notch centred well outside the nucleus.
                var bite = nr * rng.Range(1.12, 1.25);
                _notch = new Blob((float)(cx0 - bite * Math.Cos(t)), (float)(cy0 - bite * Math.Sin(t)), (float)(nr * rng.Range(0.66, 0.76)));
                break;
            }
            case CellType.BandNeutrophil:
            {
                _aspect = rng.Range(0.9, 1.0);
                a2 = rng.Range(0, 0.03);
                a3 = rng.Range(0, 0.02);
                // A C/U-shaped band of even width: many small overlapping blobs along an arc, no filaments.
                var width = r * rng.Range(0.18, 0.22);
                var pathR = r * rng.Range(0.42, 0.5);
                var span = rng.Range(0.9 * Math.PI, 1.4 * Math.PI);
                var start = rng.Range(0, 2 * Math.PI);
                var shift = r * 0.08;
                var (sx, sy) = (-shift * Math.Cos(start), -shift * Math.Sin(start));
                var steps = (int)Math.Ceiling(span * pathR / (width * 0.35));
                for (var i = 0; i <= steps; i++)
                {
                    var a = start + (i / (double)steps - 0.5) * span;
                    // Ends a touch fuller, as band nuclei often are.
                    var end = Math.Abs(i / (double)steps - 0.5) > 0.42 ? 1.1 : 1.0;
                    nucleus.Add(new Blob((float)(sx + pathR * Math.Cos(a)), (float)((sy + pathR * Math.Sin(a)) * _aspect), (float)(width * end)));
                }
                break;
            }
            case CellType.Blast:
            {
                _aspect = rng.Range(0.88, 1.0);
                a2 = rng.Range(0, 0.03);
                a3 = rng.Range(0, 0.02);
                // High N:C ratio: a large round nucleus leaving a thin rim of cytoplasm, with 1-3 nucleoli.
                var nr = r * _aspect * rng.Range(0.78, 0.86);
                var t = rng.Range(0, 2 * Math.PI);
                var off = r * rng.Range(0.03, 0.1);
                var (cx0, cy0) = (off * Math.Cos(t), off * Math.Sin(t));
                nucleus.Add(new Blob((float)cx0, (float)cy0, (float)nr));
                var nucleoli = new Blob[1 + rng.Next(3)];
                for (var i = 0; i < nucleoli.Length; i++)
                {
                    var nt = rng.Range(0, 2 * Math.PI);
                    var nd = nr * rng.Range(0.1, 0.5);
                    nucleoli[i] = new Blob((float)(cx0 + nd * Math.Cos(nt)), (float)(cy0 + nd * Math.Sin(nt)), (float)(r * rng.Range(0.08, 0.13)));
                }
                _nucleoli = nucleoli;
                break;
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(type));
        }

        var p2 = rng.Range(0, 2 * Math.PI);
        var p3 = rng.Range(0, 2 * Math.PI);
        _a2c = a2 * Math.Cos(p2);
        _a2s = a2 * Math.Sin(p2);
        _a3c = a3 * Math.Cos(p3);
        _a3s = a3 * Math.Sin(p3);
        _maxWobble = 1 + a2 + a3;
        _nucleus = nucleus.ToArray();
        _vacuoles = vacuoles.ToArray();

        // Tight box: sample the outline, then add the half pixel of anti-aliased edge.
        double minX = double.MaxValue, maxX = double.MinValue, minY = double.MaxValue, maxY = double.MinValue;
        const int samples = 180;
        for (var i = 0; i < samples; i++)
        {
            var t = 2 * Math.PI * i / samples;
            var (ct, st) = (Math.Cos(t), Math.Sin(t));
            var w = Wobble(ct, st);
            var u = Radius * w * ct;
            var v = Radius * _aspect * w * st;
            var x = u * _cos - v * _sin;
            var y = u * _sin + v * _cos;
            minX = Math.Min(minX, x); maxX = Math.Max(maxX, x);
            minY = Math.Min(minY, y); maxY = Math.Max(maxY, y);
        }
        X0 = Cx + minX - 0.5;
        X1 = Cx + maxX + 0.5;
        Y0 = Cy + minY - 0.5;
        Y1 = Cy + maxY + 0.5;
    }

    private double Wobble(double ct, double st)
    {
        var c2 = ct * ct - st * st;
        var s2 = 2 * ct * st;
        var c3 = ct * (4 * ct * ct - 3);
        var s3 = st * (3 - 4 * st * st);
        return 1 + _a2c * c2 - _a2s * s2 + _a3c * c3 - _a3s * s3;
    }

    private static float Smoothstep(float e0, float e1, float x)
    {
        var t = Math.Clamp((x - e0) / (e1 - e0), 0f, 1f);
        return t * t * (3 - 2 * t);
    }

    /// <summary>Union of soft-edged blobs, with an irregular outline from the coarse texture.</summary>
    private static float BlobCoverage(Blob[] blobs, float u, float v, float roughness)
    {
        var a = 0f;
        foreach (var b in blobs)
        {
            var dx = u - b.X;
            var dy = v - b.Y;
            var d = MathF.Sqrt(dx * dx + dy * dy);
            var c = Math.Clamp(b.R * (1 + roughness) - d + 0.5f, 0f, 1f);
            if (c > a) a = c;
        }
        return a;
    }

    /// <summary>How much a nucleus's outline wobbles: lymphoid, plasma, erythroid and blast nuclei are smooth and round.</summary>
    private static float NucleusRoughness(CellType type) => type switch
    {
        CellType.Lymphocyte or CellType.PlasmaCell or CellType.Erythroblast or CellType.Blast or CellType.Myelocyte => 0.12f,
        CellType.BandNeutrophil or CellType.Metamyelocyte => 0.22f,
        _ => 0.4f,
    };

    /// <summary>A blob with a soft edge a third of its radius wide (nucleoli have no sharp outline).</summary>
    private static float SoftCoverage(Blob b, float u, float v)
    {
        var d = MathF.Sqrt((u - b.X) * (u - b.X) + (v - b.Y) * (v - b.Y));
        return 1 - Smoothstep(b.R * 0.5f, b.R * 1.4f, d);
    }

    private static float Coverage(Blob b, float u, float v)
    {
        var dx = u - b.X;
        var dy = v - b.Y;
        return Math.Clamp(b.R - MathF.Sqrt(dx * dx + dy * dy) + 0.5f, 0f, 1f);
    }

    /// <summary>Adds this cell's dye density to a B,G,R float buffer covering slide pixels [left, left+width) x [top, top+height).</summary>
    public void Paint(float[] density, int left, int top, int width, int height, StainPalette palette, SlideTextures tex)
    {
        var xs = Math.Max(left, (int)Math.Floor(X0));
        var xe = Math.Min(left + width, (int)Math.Ceiling(X1));
        var ys = Math.Max(top, (int)Math.Floor(Y0));
        var ye = Math.Min(top + height, (int)Math.Ceiling(Y1));
        if (xs >= xe || ys >= ye) return;
        var invR = 1.0 / Radius;
        var invRa = 1.0 / (Radius * _aspect);
        var maxW2 = _maxWobble * _maxWobble * (1 + 1.5 / Radius) * (1 + 1.5 / Radius);
        for (var y = ys; y < ye; y++)
        {
            var dy = y + 0.5 - Cy;
            var row = (y - top) * width;
            for (var x = xs; x < xe; x++)
            {
                var dx = x + 0.5 - Cx;
                var u = dx * _cos + dy * _sin;
                var v = -dx * _sin + dy * _cos;
                var eu = u * invR;
                var ev = v * invRa;
                var r2 = eu * eu + ev * ev;
                if (r2 > maxW2) continue;
                var rr = Math.Sqrt(r2);
                double ct = 1, st = 0;
                if (rr > 1e-9) { ct = eu / rr; st = ev / rr; }
                var w = Wobble(ct, st);
                var rho = rr / w;
                var radial = Radius * w * Math.Sqrt(ct * ct + _aspect * _aspect * st * st);
                var alpha = (float)Math.Clamp((1 - rho) * radial + 0.5, 0, 1);
                if (alpha <= 0) continue;
                var d = Shade((float)u, (float)v, (float)rho, x, y, palette, tex) * (alpha * _density);
                var i = (row + x - left) * 3;
                density[i] += d.B;
                density[i + 1] += d.G;
                density[i + 2] += d.R;
            }
        }
    }

    private Density Shade(float u, float v, float rho, int x, int y, StainPalette p, SlideTextures tex)
    {
        var tx = x + _textureX;
        var ty = y + _textureY;
        switch (Type)
        {
            case CellType.Erythrocyte:
            {
                // Biconcave disc: thin pale centre, dense ring, slightly darker rim.
                var body = 1 - _pallorDepth * (1 - Smoothstep((float)(_pallorRadius * 0.35), (float)(_pallorRadius + 0.2), rho));
                body += 0.12f * Smoothstep(0.78f, 0.97f, rho);
                body *= 0.92f + 0.16f * tex.Medium.At(tx, ty);
                return p.Erythrocyte * body;
            }
            case CellType.Platelet:
            {
                // Pale hyalomere with a darker granular centre.
                var g = 0.45f + 0.5f * tex.Fine.At(tx, ty) + 0.9f * tex.FineGranules.At(tx, ty) * (1 - rho);
                return p.Platelet * (g * (1.15f - 0.5f * rho));
            }
            default:
                return ShadeWhite(u, v, rho, tx, ty, p, tex);
        }
    }

    private Density ShadeWhite(float u, float v, float rho, int tx, int ty, StainPalette p, SlideTextures tex)
    {
        var rough = (tex.Coarse.At(tx, ty) - 0.5f) * NucleusRoughness(Type);
        var nuc = BlobCoverage(_nucleus, u, v, rough);
        if (_notch is { } notch) nuc *= 1 - Coverage(notch, u, v);
        var chromatin = 1 - (float)_chromatinContrast * 0.5f + (float)_chromatinContrast * tex.Medium.At(tx, ty);
        var fine = tex.Fine.At(tx, ty);
        Density cyto, nucleus;
        var granules = default(Density);
        var granuleOverNucleus = 0f;
        switch (Type)
        {
            case CellType.Neutrophil:
                cyto = p.NeutrophilCytoplasm * (0.9f + 0.3f * fine);
                granules = p.NeutrophilGranule * (0.7f * tex.FineGranules.At(tx, ty));
                nucleus = p.Nucleus * chromatin;
                break;
            case CellType.Eosinophil:
                cyto = p.NeutrophilCytoplasm * 0.6f;
                granules = p.EosinophilGranule * (0.45f + 1.0f * tex.Granule.At(tx, ty));
                nucleus = p.Nucleus * (chromatin * 0.9f);
                break;
            case CellType.Basophil:
                cyto = p.NeutrophilCytoplasm * 0.7f;
                // Coarse dark granules everywhere, over the nucleus too, hiding its outline.
                granules = p.BasophilGranule * (0.1f + 0.9f * Smoothstep(0.05f, 0.6f, tex.Granule.At(tx, ty)) + 0.5f * Smoothstep(0.1f, 0.5f, tex.Granule.At(tx + 97, ty + 31)));
                granuleOverNucleus = 1f;
                nucleus = p.Nucleus * (chromatin * 0.85f);
                break;
            case CellType.Lymphocyte:
                cyto = p.LymphocyteCytoplasm * (0.95f + 0.25f * Smoothstep(0.6f, 1f, rho));
                nucleus = p.LymphocyteNucleus * chromatin;
                break;
            case CellType.Monocyte:
            {
                cyto = p.MonocyteCytoplasm * (0.9f + 0.25f * fine);
                foreach (var vac in _vacuoles) cyto *= 1 - 0.55f * Coverage(vac, u, v);
                nucleus = p.MonocyteNucleus * (0.85f + 0.3f * tex.Medium.At(tx, ty));
                break;
            }
            case CellType.PlasmaCell:
            {
                var halo = 0f;
                if (_halo is { } h)
                {
                    var d = MathF.Sqrt((u - h.X) * (u - h.X) + (v - h.Y) * (v - h.Y));
                    halo = 1 - Smoothstep(h.R * 0.4f, h.R * 1.3f, d);
                }
                cyto = p.PlasmaCytoplasm * ((0.85f + 0.2f * fine) * (1 - 0.55f * halo));
                nucleus = p.LymphocyteNucleus * (chromatin * 1.05f);
                break;
            }
            case CellType.Megakaryocyte:
                cyto = p.MegakaryocyteCytoplasm * (0.8f + 0.5f * Smoothstep(0.4f, 0.8f, fine));
                nucleus = p.Nucleus * (chromatin * 1.05f);
                break;
            case CellType.Erythroblast:
            {
                // Polychromasia: RNA blue fades as haemoglobin pink rises, so the cytoplasm goes deep blue, grey-lilac, pink.
                var hb = ErythroblastMaturity.Haemoglobin(_maturity);
                cyto = p.ErythroblastRna * ((1 - hb) * (0.92f + 0.16f * fine)) + p.Erythrocyte * (hb * (0.9f + 0.1f * fine));
                // Checkerboard: dense clumps between paler channels, fusing into one dark mass when pyknotic.
                var clumps = Smoothstep(0.25f, 0.7f, 0.6f * tex.Medium.At(tx, ty) + 0.4f * fine);
                var contrast = 0.3f * (1 - 0.7f * (float)_maturity);
                nucleus = p.ErythroblastNucleus * ((1 - contrast + 1.4f * contrast * clumps) * (1 + 0.2f * (float)_maturity));
                break;
            }
            case CellType.Myelocyte:
                // Lilac cytoplasm full of fine specific granules, with a few coarser azurophilic ones left over.
                cyto = p.MyelocyteCytoplasm * (0.85f + 0.3f * fine) + p.NeutrophilCytoplasm * 0.5f;
                granules = p.NeutrophilGranule * (1.0f * tex.FineGranules.At(tx, ty))
                           + p.AzurophilGranule * (0.8f * Smoothstep(0.55f, 0.95f, tex.Granule.At(tx, ty)) * Smoothstep(0.6f, 0.8f, tex.Coarse.At(tx + 53, ty + 17)));
                nucleus = p.Nucleus * ((0.75f + 0.45f * tex.Medium.At(tx, ty)) * (0.9f + 0.15f * fine));
                break;
            case CellType.Metamyelocyte:
                cyto = p.NeutrophilCytoplasm * (0.95f + 0.3f * fine) + p.MyelocyteCytoplasm * 0.3f;
                granules = p.NeutrophilGranule * (0.85f * tex.FineGranules.At(tx, ty));
                nucleus = p.Nucleus * chromatin;
                break;
            case CellType.BandNeutrophil:
                cyto = p.NeutrophilCytoplasm * (0.9f + 0.3f * fine);
                granules = p.NeutrophilGranule * (0.7f * tex.FineGranules.At(tx, ty));
                nucleus = p.Nucleus * chromatin;
                break;
            case CellType.Blast:
            {
                // Basophilic rim, deeper at the membrane; fine, open chromatin with paler nucleoli.
                cyto = p.BlastCytoplasm * ((0.85f + 0.2f * fine) * (0.9f + 0.3f * Smoothstep(0.75f, 1f, rho)));
                var nucleolus = 0f;
                foreach (var n in _nucleoli) nucleolus = Math.Max(nucleolus, SoftCoverage(n, u, v));
                var sieve = 0.78f + 0.3f * fine + 0.25f * tex.FineGranules.At(tx, ty);
                nucleus = p.BlastNucleus * (sieve * (1 - 0.45f * nucleolus)) + p.BlastCytoplasm * (0.2f * nucleolus);
                break;
            }
            default:
                throw new InvalidOperationException();
        }

        var edge = 1 + 0.15f * Smoothstep(0.85f, 1f, rho);
        var gOutside = 1 - nuc;
        var gNuc = nuc * granuleOverNucleus;
        return new Density(
            (cyto.B * edge + granules.B) * gOutside + nucleus.B * nuc + granules.B * gNuc,
            (cyto.G * edge + granules.G) * gOutside + nucleus.G * nuc + granules.G * gNuc,
            (cyto.R * edge + granules.R) * gOutside + nucleus.R * nuc + granules.R * gNuc);
    }
}
