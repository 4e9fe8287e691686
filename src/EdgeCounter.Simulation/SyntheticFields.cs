using OpenCvSharp;

namespace EdgeCounter.Simulation;

/// <summary>What is in one exported field.</summary>
/// <param name="SlideIndex">Which of the export's slides the field comes from.</param>
/// <param name="StageX">Top-left of the field on that slide, slide pixels.</param>
/// <param name="StageY">Top-left of the field on that slide, slide pixels.</param>
/// <param name="JpegQuality">The JPEG quality to save the field with (varies per slide).</param>
/// <param name="Cells">Cells visible in the field, boxes in field pixels clipped to it.</param>
public sealed record FieldTruth(int SlideIndex, int StageX, int StageY, int JpegQuality, IReadOnlyList<CellTruth> Cells);

/// <summary>
/// Still, sharp fields for training and evaluation: field i comes from slide i / FieldsPerSlide (each slide with its
/// own cells, stain and illumination, all derived from the seed) at a random place on it. Deterministic in
/// (seed, profile, size, scale, i). Fields are best requested in order (one slide is kept at a time).
/// </summary>
public sealed class SyntheticFields : IDisposable
{
    private readonly ulong _seed;
    private readonly SlideProfile _profile;
    private readonly int _width, _height;
    private readonly double _mpp;
    private SlideRenderer? _slide;
    private CameraOptics? _optics;
    private int _slideIndex = -1;

    public SyntheticFields(ulong seed, SlideProfile profile, int width, int height, double micrometresPerPixel = 0.1, int fieldsPerSlide = 25)
    {
        new MicroscopeOptions { Width = width, Height = height, MicrometresPerPixel = micrometresPerPixel }.Validate();
        ArgumentOutOfRangeException.ThrowIfLessThan(fieldsPerSlide, 1);
        _seed = seed;
        _profile = profile;
        _width = width;
        _height = height;
        _mpp = micrometresPerPixel;
        FieldsPerSlide = fieldsPerSlide;
    }

    public int FieldsPerSlide { get; }

    public const int SlideFieldsAcross = 40;
    public const int SlideFieldsDown = 30;

    /// <summary>Renders field i (BGR 8UC3, caller disposes).</summary>
    public Mat Render(int index, out FieldTruth truth)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        var slideIndex = index / FieldsPerSlide;
        if (slideIndex != _slideIndex)
        {
            _slide?.Dispose();
            var slideSeed = Hashing.Of(_seed, 0x5E7, slideIndex);
            _slide = new SlideRenderer(slideSeed, _profile, _mpp, SlideFieldsAcross * _width, SlideFieldsDown * _height, null, 64);
            _optics = new CameraOptics(_width, _height, _slide.Palette.VignetteStrength, _slide.Palette.NoiseSigma, slideSeed);
            _slideIndex = slideIndex;
        }
        var h = Hashing.Of(_seed, 0xF1E1D, index);
        var x = (int)(Hashing.Unit(h) * (SlideFieldsAcross - 1) * _width);
        var y = (int)(Hashing.Unit(Hashing.Mix(h)) * (SlideFieldsDown - 1) * _height);
        var frame = new Mat(_height, _width, MatType.CV_8UC3);
        try
        {
            _slide!.Compose(frame, x, y);
            _optics!.Sensor(frame, Hashing.Mix(h ^ 0x5E45));
        }
        catch
        {
            frame.Dispose();
            throw;
        }
        truth = new FieldTruth(slideIndex, x, y, _slide.Palette.JpegQuality, SimulatedMicroscope.CellsInView(_slide.Layout, x, y, _width, _height));
        return frame;
    }

    public void Dispose() => _slide?.Dispose();
}
