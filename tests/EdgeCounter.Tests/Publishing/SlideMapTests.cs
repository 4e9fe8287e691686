using EdgeCounter.Counting;
using EdgeCounter.Detection;
using EdgeCounter.Fields;
using EdgeCounter.Publishing;
using OpenCvSharp;
using Cell = EdgeCounter.Detection.Detection;

namespace EdgeCounter.Tests.Publishing;

public class SlideMapTests
{
    private static Mat Field(byte grey) => new(480, 640, MatType.CV_8UC3, new Scalar(grey, grey, grey));

    [Fact]
    public void The_map_is_a_jpeg_of_the_fields_at_their_positions_with_counted_cells_as_dots()
    {
        using var map = new SlideMap(scale: 1 / 8.0);
        using var a = Field(200);
        using var b = Field(200);
        map.Add(a, new FieldPlacement(true, 0, 0, 1, true, 1), [new Cell("RBC", "RBC", 0.9f, new BoxF(300, 220, 340, 260))], null);
        // The second field, 480 px to the right: its white cell is new, its red cell was counted in field 1.
        Cell[] second = [new("neutrophil", "WBC", 0.9f, new BoxF(280, 200, 360, 280)), new("RBC", "RBC", 0.9f, new BoxF(200, 220, 240, 260))];
        map.Add(b, new FieldPlacement(true, 480, 0, 1, true, 1), second, [new DetectionMark(false, 2), new DetectionMark(true, 1)]);
        Assert.Equal(2, map.Fields);

        var jpeg = map.RenderJpeg();
        Assert.Equal([0xFF, 0xD8], jpeg.Take(2));
        using var image = Cv2.ImDecode(jpeg, ImreadModes.Color);
        Assert.False(image.Empty());
        // Two fields side by side, overlapping by 160 px: (480 + 640) / 8 wide plus the border.
        Assert.Equal((1120 / 8 + 16, 480 / 8 + 16), (image.Cols, image.Rows));
        Vec3b At(double x, double y) => image.At<Vec3b>((int)Math.Round(y / 8) + 8, (int)Math.Round(x / 8) + 8);
        var red = At(320, 240);
        Assert.True(red.Item2 > red.Item0 + 60 && red.Item2 > red.Item1 + 60, $"no red dot at the red cell: {red}");
        var purple = At(480 + 320, 240);
        Assert.True(purple.Item0 > purple.Item1 + 40 && purple.Item2 > purple.Item1 + 40, $"no purple dot at the white cell: {purple}");
        // A detection marked already counted adds no dot (its cell has one where it was counted).
        var plain = At(480 + 220, 240);
        Assert.True(Math.Abs(plain.Item0 - plain.Item2) < 30, $"a dot for a cell already counted: {plain}");
    }

    [Fact]
    public void A_count_moved_to_the_field_where_the_cell_is_whole_leaves_one_dot_there()
    {
        using var map = new SlideMap(scale: 1 / 8.0);
        using var a = Field(200);
        static bool Purple(Vec3b c) => c.Item0 > c.Item1 + 40 && c.Item2 > c.Item1 + 40;
        Vec3b At(Mat image, double x, double y) => image.At<Vec3b>((int)Math.Round(y / 8) + 8, (int)Math.Round(x / 8) + 8);
        // Field 1 counts a large white cell cut by its right edge: its left 40 px show (box centre at slide x 620).
        map.Add(a, new FieldPlacement(true, 0, 0, 1, true, 1), [new Cell("neutrophil", "WBC", 0.9f, new BoxF(600, 160, 640, 320))], null);
        using (var before = Cv2.ImDecode(map.RenderJpeg(), ImreadModes.Color))
            Assert.True(Purple(At(before, 620, 240)), $"no dot for the cut cell: {At(before, 620, 240)}");
        // Field 2, 320 px to the right, sees it whole (centre at slide x 680) and takes over its count.
        map.Add(a, new FieldPlacement(true, 320, 0, 1, true, 1), [new Cell("lymphocyte", "WBC", 0.9f, new BoxF(280, 160, 440, 320))],
            [new DetectionMark(false, 2, MovedFrom: 1, MovedFromLabel: "neutrophil")]);
        using var after = Cv2.ImDecode(map.RenderJpeg(), ImreadModes.Color);
        Assert.True(Purple(At(after, 680, 240)), $"no dot where the cell is whole: {At(after, 680, 240)}");
        Assert.False(Purple(At(after, 620, 240)), $"the cut view's dot is still drawn: {At(after, 620, 240)}");
    }

    [Fact]
    public void A_new_map_segment_starts_a_new_map()
    {
        using var map = new SlideMap();
        using var a = Field(120);
        map.Add(a, new FieldPlacement(true, 0, 0, 1, true, 1), [], null);
        map.Add(a, new FieldPlacement(true, 400, 0, 1, true, 1), [], null);
        map.Add(a, FieldPlacement.Unknown(2), [], null);
        Assert.Equal(1, map.Fields);
    }

    [Fact]
    public void After_an_unknown_position_a_new_map_starts_and_a_field_that_joins_the_segments_brings_the_old_one_back()
    {
        using var map = new SlideMap(scale: 1 / 8.0);
        using var a = Field(200);
        map.Add(a, new FieldPlacement(true, 0, 0, 1, true, 1), [], null);
        map.Add(a, new FieldPlacement(true, 480, 0, 1, true, 1), [], null);
        map.Add(a, FieldPlacement.Unknown(2), [], null);
        Assert.Equal(1, map.Fields); // the new segment alone
        // A field of segment 2 registers against segment 1: segment 2's origin is at (3000, 0) there.
        map.Add(a, new FieldPlacement(true, 3480, 0, 1, true, 1) { Merged = new SegmentMerge(2, 1, 3000, 0) }, [], null);
        Assert.Equal(4, map.Fields);
        using var image = Cv2.ImDecode(map.RenderJpeg(), ImreadModes.Color);
        Assert.Equal((4120 / 8 + 16, 480 / 8 + 16), (image.Cols, image.Rows)); // from x = 0 to 3480 + 640
    }
}
