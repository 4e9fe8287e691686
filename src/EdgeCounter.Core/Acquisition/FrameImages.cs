using OpenCvSharp;

namespace EdgeCounter.Acquisition;

internal static class FrameImages
{
    /// <summary>Brings any decoded image to BGR 8-bit, taking ownership of (and disposing) the input when it converts.</summary>
    public static Mat ToBgr(Mat image)
    {
        if (image.Type() == MatType.CV_8UC3) return image;
        using (image)
        {
            var bgr = new Mat();
            switch (image.Channels())
            {
                case 1: Cv2.CvtColor(image, bgr, ColorConversionCodes.GRAY2BGR); break;
                case 4: Cv2.CvtColor(image, bgr, ColorConversionCodes.BGRA2BGR); break;
                default: image.ConvertTo(bgr, MatType.CV_8UC3); break;
            }
            if (bgr.Depth() != MatType.CV_8U)
            {
                using var src = bgr;
                bgr = new Mat();
                src.ConvertTo(bgr, MatType.CV_8UC3);
            }
            return bgr;
        }
    }
}
