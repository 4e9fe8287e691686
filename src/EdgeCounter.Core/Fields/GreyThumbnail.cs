using OpenCvSharp;

namespace EdgeCounter.Fields;

/// <summary>Small grey copies of a field for comparing fields (revisit fingerprints, registration).</summary>
internal static class GreyThumbnail
{
    /// <summary>
    /// Area-downscaled to <paramref name="width"/> (aspect kept, at least <paramref name="minHeight"/> rows), grey, 32-bit
    /// float, high-pass filtered (minus a Gaussian blur of <paramref name="sigma"/>) so vignetting and stain tint do not
    /// make every field look alike. The caller disposes it. Written into <paramref name="into"/> when given (its buffer is
    /// reused when it already has the size), else into a new Mat.
    /// </summary>
    public static Mat HighPass(Mat bgr, int width, int minHeight, double sigma, Mat? into = null)
    {
        var height = Math.Max(minHeight, (int)Math.Round(bgr.Rows * (double)width / bgr.Cols));
        using var small = new Mat();
        Cv2.Resize(bgr, small, new Size(width, height), 0, 0, InterpolationFlags.Area);
        using var grey = new Mat();
        if (small.Channels() == 3) Cv2.CvtColor(small, grey, ColorConversionCodes.BGR2GRAY);
        else small.CopyTo(grey);
        var image = into ?? new Mat();
        grey.ConvertTo(image, MatType.CV_32F);
        using var background = new Mat();
        Cv2.GaussianBlur(image, background, new Size(0, 0), sigma);
        Cv2.Subtract(image, background, image);
        return image;
    }
}
