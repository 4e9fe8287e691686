namespace EdgeCounter.Simulation;

/// <summary>Optical density per channel, in B, G, R order (Beer-Lambert: I = I0 * exp(-OD)).</summary>
internal readonly record struct Density(float B, float G, float R)
{
    /// <summary>The density that turns the reference white (RGB 246, 242, 240) into the given RGB colour.</summary>
    public static Density FromRgb(double r, double g, double b) =>
        new((float)Math.Log(240 / b), (float)Math.Log(242 / g), (float)Math.Log(246 / r));

    public static Density operator *(Density d, double k) => new((float)(d.B * k), (float)(d.G * k), (float)(d.R * k));

    public static Density operator +(Density a, Density b) => new(a.B + b.B, a.G + b.G, a.R + b.R);
}

/// <summary>
/// One slide's stain and illumination: how strong the eosin and azure dyes took, hue and saturation
/// shifts, lamp colour temperature and brightness, vignetting and sensor noise. Drawn from the slide seed.
/// Colours are modelled as dye densities so overlapping cells darken the way they do under a microscope.
/// </summary>
internal sealed class StainPalette
{
    public const int LutScale = 256;     // density steps per unit OD
    public const int LutMax = 8 * LutScale;

    public StainPalette(ulong slideSeed, double? noiseSigma)
    {
        var rng = new DeterministicRandom(Hashing.Of(slideSeed, 0x5A17));
        var eosin = rng.Range(0.8, 1.2);
        var azure = rng.Range(0.8, 1.25);
        var saturation = rng.Range(0.8, 1.15);
        var hue = rng.Range(-0.08, 0.08);
        var temperature = rng.Range(-1, 1);
        var brightness = rng.Range(0.92, 1.02);
        VignetteStrength = rng.Range(0.06, 0.25);
        NoiseSigma = noiseSigma ?? rng.Range(1.5, 3.5);
        JpegQuality = 78 + rng.Next(18);

        Density Shape(Density d, double dye)
        {
            var mean = (d.B + d.G + d.R) / 3.0;
            double S(double c) => Math.Max(0, mean + saturation * (c - mean)) * dye;
            return new Density((float)(S(d.B) * (1 - hue)), (float)S(d.G), (float)(S(d.R) * (1 + hue)));
        }

        Density E(double r, double g, double b) => Shape(Density.FromRgb(r, g, b), eosin);
        Density A(double r, double g, double b) => Shape(Density.FromRgb(r, g, b), azure);

        // Target colours (RGB) of Wright-Giemsa components on a white background.
        Background = E(238, 226, 228);
        Erythrocyte = E(222, 152, 150);
        NeutrophilCytoplasm = E(226, 204, 214);
        EosinophilGranule = E(226, 110, 84);
        MegakaryocyteCytoplasm = E(206, 168, 204);
        Nucleus = A(102, 66, 158);
        LymphocyteNucleus = A(80, 52, 140);
        MonocyteNucleus = A(130, 100, 178);
        NeutrophilGranule = A(196, 160, 200);
        BasophilGranule = A(58, 28, 92);
        LymphocyteCytoplasm = A(158, 188, 226);
        MonocyteCytoplasm = A(184, 180, 210);
        PlasmaCytoplasm = A(92, 108, 176);
        Platelet = A(150, 100, 182);

        // Marrow lineages. Erythroblast cytoplasm mixes RNA blue with the red cell's haemoglobin as it matures.
        ErythroblastRna = A(84, 100, 176);
        ErythroblastNucleus = A(52, 26, 92);
        MyelocyteCytoplasm = A(208, 196, 224);
        AzurophilGranule = A(150, 72, 150);
        BlastCytoplasm = A(126, 150, 206);
        BlastNucleus = A(128, 90, 176);

        // Lamp: colour temperature tilts red against blue.
        var i0R = 252 * brightness * (1 + 0.04 * temperature);
        var i0G = 249 * brightness;
        var i0B = 250 * brightness * (1 - 0.04 * temperature);
        Lut = new byte[3][];
        double[] i0 = [i0B, i0G, i0R];
        for (var c = 0; c < 3; c++)
        {
            Lut[c] = new byte[LutMax + 1];
            for (var q = 0; q <= LutMax; q++)
                Lut[c][q] = (byte)Math.Clamp(Math.Round(i0[c] * Math.Exp(-(double)q / LutScale)), 0, 255);
        }
    }

    public double VignetteStrength { get; }
    public double NoiseSigma { get; }
    public int JpegQuality { get; }

    /// <summary>Density to byte, per channel (B, G, R), lamp colour folded in.</summary>
    public byte[][] Lut { get; }

    public Density Background { get; }
    public Density Erythrocyte { get; }
    public Density NeutrophilCytoplasm { get; }
    public Density NeutrophilGranule { get; }
    public Density EosinophilGranule { get; }
    public Density BasophilGranule { get; }
    public Density Nucleus { get; }
    public Density LymphocyteNucleus { get; }
    public Density MonocyteNucleus { get; }
    public Density LymphocyteCytoplasm { get; }
    public Density MonocyteCytoplasm { get; }
    public Density PlasmaCytoplasm { get; }
    public Density MegakaryocyteCytoplasm { get; }
    public Density Platelet { get; }
    public Density ErythroblastRna { get; }
    public Density ErythroblastNucleus { get; }
    public Density MyelocyteCytoplasm { get; }
    public Density AzurophilGranule { get; }
    public Density BlastCytoplasm { get; }
    public Density BlastNucleus { get; }
}

/// <summary>Tileable value noise (512x512, wraps), for chromatin, granules and film texture.</summary>
internal sealed class NoiseTexture
{
    public const int Size = 512;
    public const int Mask = Size - 1;
    public readonly float[] Values = new float[Size * Size];

    public NoiseTexture(ulong seed, double periodPixels)
    {
        // Three octaves (period, period/2, period/4) so chromatin and film look organic rather than blocky.
        var rng = new DeterministicRandom(seed);
        double[] weights = [0.55, 0.3, 0.15];
        var basePeriod = Math.Clamp(periodPixels, 2, 128);
        for (var octave = 0; octave < 3; octave++)
        {
            var period = 1;
            while (period * 2 <= basePeriod / (1 << octave)) period *= 2; // power of two: tiles seamlessly
            AddOctave(ref rng, period, (float)weights[octave]);
        }
    }

    /// <summary>A texture of round dots (granules): value 1 at a dot centre falling to 0 at its radius.</summary>
    public NoiseTexture(ulong seed, double dotRadius, double coverage)
    {
        var rng = new DeterministicRandom(seed);
        var r = Math.Max(0.7, dotRadius);
        var count = (int)(coverage * Size * Size / (Math.PI * r * r));
        var reach = (int)Math.Ceiling(r);
        for (var i = 0; i < count; i++)
        {
            var cx = rng.Range(0, Size);
            var cy = rng.Range(0, Size);
            var rr = r * rng.Range(0.75, 1.25);
            for (var dy = -reach - 1; dy <= reach + 1; dy++)
                for (var dx = -reach - 1; dx <= reach + 1; dx++)
                {
                    var x = (int)Math.Floor(cx) + dx;
                    var y = (int)Math.Floor(cy) + dy;
                    var d = Math.Sqrt((x + 0.5 - cx) * (x + 0.5 - cx) + (y + 0.5 - cy) * (y + 0.5 - cy));
                    var v = (float)Math.Clamp(1 - d / (rr + 0.5), 0, 1);
                    var idx = ((y & Mask) << 9) | (x & Mask);
                    if (v > Values[idx]) Values[idx] = v;
                }
        }
    }

    private void AddOctave(ref DeterministicRandom rng, int period, float weight)
    {
        var cells = Size / period;
        var lattice = new float[cells * cells];
        for (var i = 0; i < lattice.Length; i++) lattice[i] = (float)rng.NextDouble();
        for (var y = 0; y < Size; y++)
        {
            var fy = (double)y / period;
            var y0 = (int)fy;
            var ty = Smooth(fy - y0);
            var y1 = (y0 + 1) % cells;
            for (var x = 0; x < Size; x++)
            {
                var fx = (double)x / period;
                var x0 = (int)fx;
                var tx = Smooth(fx - x0);
                var x1 = (x0 + 1) % cells;
                var a = lattice[y0 * cells + x0] + (lattice[y0 * cells + x1] - lattice[y0 * cells + x0]) * tx;
                var b = lattice[y1 * cells + x0] + (lattice[y1 * cells + x1] - lattice[y1 * cells + x0]) * tx;
                Values[y * Size + x] += (float)(a + (b - a) * ty) * weight;
            }
        }
    }

    private static double Smooth(double t) => t * t * (3 - 2 * t);

    public float At(int x, int y) => Values[((y & Mask) << 9) | (x & Mask)];
}
