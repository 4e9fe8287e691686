namespace EdgeCounter.Simulation;

/// <summary>The three stages a marrow erythroblast is seen in, from the least to the most mature.</summary>
internal enum ErythroblastStage { Basophilic, Polychromatic, Orthochromatic }

/// <summary>
/// How far an erythroblast has matured: 0 (basophilic, RNA-blue) to 1 (orthochromatic, haemoglobin-pink, pyknotic
/// nucleus). Drawn from its own stream of the cell's hash, so adding it moved no other cell's draws; both the layout
/// (size) and the drawing (colour, nucleus) read it from the same hash.
/// </summary>
internal static class ErythroblastMaturity
{
    // Shares of the stages among marrow erythroblasts: polychromatic and orthochromatic cells outnumber basophilic.
    private const double BasophilicUpTo = 0.15;
    private const double PolychromaticUpTo = 0.65;

    public static double Of(ulong cellHash) => Hashing.Unit(Hashing.Mix(cellHash ^ 0xE7B1_A57E_0B1A_57EDUL));

    public static ErythroblastStage StageOf(double maturity) => maturity switch
    {
        < BasophilicUpTo => ErythroblastStage.Basophilic,
        < PolychromaticUpTo => ErythroblastStage.Polychromatic,
        _ => ErythroblastStage.Orthochromatic,
    };

    /// <summary>Diameter in micrometres: the cell shrinks as it matures (u in [0, 1) places it within its stage's range).</summary>
    public static double Diameter(double maturity, double u) => StageOf(maturity) switch
    {
        ErythroblastStage.Basophilic => 12 + 4 * u,
        ErythroblastStage.Polychromatic => 9 + 3 * u,
        _ => 7 + 2 * u,
    };

    /// <summary>Haemoglobin content 0..1: a trace while basophilic, about half (grey-lilac) through polychromatic,
    /// near a red cell's when orthochromatic.</summary>
    public static float Haemoglobin(double maturity) => StageOf(maturity) switch
    {
        ErythroblastStage.Basophilic => (float)(0.1 * maturity / BasophilicUpTo),
        ErythroblastStage.Polychromatic => (float)(0.3 + 0.45 * (maturity - BasophilicUpTo) / (PolychromaticUpTo - BasophilicUpTo)),
        _ => (float)(0.8 + 0.2 * (maturity - PolychromaticUpTo) / (1 - PolychromaticUpTo)),
    };
}
