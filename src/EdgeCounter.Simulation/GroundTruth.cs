using OpenCvSharp;

namespace EdgeCounter.Simulation;

/// <summary>Every kind of cell the simulated slide can hold.</summary>
public enum CellType
{
    Erythrocyte,
    Platelet,
    Neutrophil,
    Eosinophil,
    Basophil,
    Lymphocyte,
    Monocyte,
    PlasmaCell,
    Megakaryocyte,

    // Marrow lineages (marrow profile only). Appended so the existing values keep their numbers.

    /// <summary>Nucleated red-cell precursor, basophilic to orthochromatic (its maturity is drawn per cell).</summary>
    Erythroblast,
    Myelocyte,
    Metamyelocyte,

    /// <summary>Neutrophil with a non-segmented band nucleus; <see cref="Neutrophil"/> is the segmented one.</summary>
    BandNeutrophil,
    Blast,
}

/// <summary>One cell seen in a frame: its identity on the slide, its type and its box in frame pixels.</summary>
public sealed record CellTruth(long CellId, CellType Type, Rect2f Box)
{
    /// <summary>The cell runs over the frame edge, so the box holds only its visible part.</summary>
    public bool Truncated { get; init; }

    /// <summary>Centre of the whole cell on the slide, slide pixels (stable for the cell across frames).</summary>
    public double SlideX { get; init; }

    /// <summary>Centre of the whole cell on the slide, slide pixels.</summary>
    public double SlideY { get; init; }

    /// <summary>Radius of the whole cell, pixels.</summary>
    public double Radius { get; init; }
}

/// <summary>What was true when a frame was taken.</summary>
/// <param name="FrameIndex">0-based index of the frame in the run.</param>
/// <param name="Time">Time since the run started.</param>
/// <param name="StageX">Top-left of the field of view on the slide, in slide pixels.</param>
/// <param name="StageY">Top-left of the field of view on the slide, in slide pixels.</param>
/// <param name="Moving">The stage moved during the exposure.</param>
/// <param name="DefocusSigma">Gaussian sigma, in frame pixels, of the defocus blur applied (0 = sharp).</param>
/// <param name="StopIndex">Index of the stop the stage is at, or -1 while moving.</param>
/// <param name="RevisitOf">For a stop that returns to an earlier field, that earlier stop's index; else -1.</param>
/// <param name="Cells">Cells visible in the frame (box clipped to the frame).</param>
public sealed record FrameTruth(
    long FrameIndex,
    TimeSpan Time,
    double StageX,
    double StageY,
    bool Moving,
    double DefocusSigma,
    int StopIndex,
    int RevisitOf,
    IReadOnlyList<CellTruth> Cells);
