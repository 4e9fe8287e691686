using EdgeCounter.Detection;
using OpenCvSharp;

namespace EdgeCounter.Tests.Detection;

public class InputTensorWriterTests
{
    [Fact]
    public void WritesRgbPlanesScaledToUnitAndZeroesThePadding()
    {
        using var bgr = new Mat(2, 3, MatType.CV_8UC3);
        for (var y = 0; y < 2; y++)
            for (var x = 0; x < 3; x++)
                bgr.Set(y, x, new Vec3b((byte)(10 * x + y), (byte)(100 + x), (byte)(255 - y))); // B, G, R

        const int W = 4, H = 3, plane = W * H;
        var tensor = new float[3 * plane];
        Array.Fill(tensor, float.NaN); // stale values from a previous frame must not survive in the padding
        InputTensorWriter.Write(bgr, tensor, W, H);

        for (var y = 0; y < H; y++)
            for (var x = 0; x < W; x++)
            {
                var k = y * W + x;
                var inside = y < 2 && x < 3;
                Assert.Equal(inside ? (255 - y) / 255f : 0f, tensor[k]);             // R
                Assert.Equal(inside ? (100 + x) / 255f : 0f, tensor[plane + k]);     // G
                Assert.Equal(inside ? (10 * x + y) / 255f : 0f, tensor[2 * plane + k]); // B
            }
    }

    [Fact]
    public void ReadsRowsOfASubMatWithItsStep()
    {
        using var big = new Mat(4, 4, MatType.CV_8UC3, new Scalar(0, 0, 0));
        big.Set(1, 1, new Vec3b(0, 0, 51)); // R = 0.2
        using var roi = new Mat(big, new Rect(1, 1, 2, 2));
        var tensor = new float[3 * 4];
        InputTensorWriter.Write(roi, tensor, 2, 2);
        Assert.Equal(0.2f, tensor[0]);
        Assert.Equal(0f, tensor[1]);
    }

    [Fact]
    public void RejectsOtherPixelTypesAndSmallBuffers()
    {
        using var gray = new Mat(2, 2, MatType.CV_8UC1);
        Assert.Throws<ArgumentException>(() => InputTensorWriter.Write(gray, new float[12], 2, 2));
        using var bgr = new Mat(2, 2, MatType.CV_8UC3);
        Assert.Throws<ArgumentException>(() => InputTensorWriter.Write(bgr, new float[11], 2, 2));
        Assert.Throws<ArgumentException>(() => InputTensorWriter.Write(bgr, new float[12], 1, 4));
    }
}
