using EdgeCounter.Counting;
using EdgeCounter.Detection;
using EdgeCounter.Publishing;
using OpenCvSharp;

namespace EdgeCounter.Tests.Publishing;

public class ImageTests
{
    private static readonly string[] Labels = ["neutrophil", "lymphocyte", "RBC"];

    private static Mat NoisyField(int width, int height)
    {
        // Noise defeats JPEG compression, so the budget really has to bite.
        var mat = new Mat(height, width, MatType.CV_8UC3);
        Cv2.Randu(mat, Scalar.All(0), Scalar.All(255));
        return mat;
    }

    [Fact]
    public void Annotator_adds_a_header_band_draws_label_colours_and_leaves_the_input_alone()
    {
        using var field = new Mat(200, 300, MatType.CV_8UC3, Scalar.All(255));
        using var before = field.Clone();
        var annotator = new FieldAnnotator(Labels);
        var box = new BoxF(50, 60, 120, 140);

        using var annotated = annotator.Annotate(field, [new global::EdgeCounter.Detection.Detection("lymphocyte", "WBC", 0.8f, box)], ["sample S-1 field 3", "WBC 3"]);

        var band = annotated.Height - field.Height;
        Assert.True(band > 0);
        Assert.Equal(field.Width, annotated.Width);
        // The left edge of the box, in the lymphocyte colour, sits at the box's x, shifted down by the band.
        var colour = annotator.ColourOf("lymphocyte");
        var pixel = annotated.At<Vec3b>(band + 100, 50);
        Assert.Equal(((byte)colour.Val0, (byte)colour.Val1, (byte)colour.Val2), (pixel.Item0, pixel.Item1, pixel.Item2));
        // Away from the box the field is unchanged.
        Assert.Equal(new Vec3b(255, 255, 255), annotated.At<Vec3b>(band + 190, 290));
        using var diff = new Mat();
        Cv2.Absdiff(field, before, diff);
        Assert.Equal(0, Cv2.CountNonZero(diff.Reshape(1)));
    }

    [Fact]
    public void Cells_counted_in_an_earlier_field_are_boxed_thin_and_grey()
    {
        using var field = new Mat(200, 300, MatType.CV_8UC3, Scalar.All(255));
        var annotator = new FieldAnnotator(Labels);
        global::EdgeCounter.Detection.Detection[] cells =
        [
            new("lymphocyte", "WBC", 0.8f, new BoxF(20, 60, 90, 140)),
            new("lymphocyte", "WBC", 0.8f, new BoxF(180, 60, 250, 140)),
        ];
        using var annotated = annotator.Annotate(field, cells, ["field 4"], [new DetectionMark(false, 4), new DetectionMark(true, 2)]);
        var band = annotated.Height - field.Height;
        var colour = annotator.ColourOf("lymphocyte");
        Vec3b At(int x) => annotated.At<Vec3b>(band + 100, x);
        Assert.Equal(((byte)colour.Val0, (byte)colour.Val1, (byte)colour.Val2), (At(20).Item0, At(20).Item1, At(20).Item2));
        var grey = FieldAnnotator.AlreadyCountedColour;
        Assert.Equal(((byte)grey.Val0, (byte)grey.Val1, (byte)grey.Val2), (At(180).Item0, At(180).Item1, At(180).Item2));
        Assert.Equal(new Vec3b(255, 255, 255), At(182)); // one pixel wide: the cell inside stays visible
        Assert.Throws<ArgumentException>(() => annotator.Annotate(field, cells, ["field 4"], [new DetectionMark(false, 4)]));
    }

    [Fact]
    public void A_large_frame_is_annotated_at_the_published_height_with_its_boxes_scaled_and_drawn_at_that_size()
    {
        using var field = new Mat(1920, 2560, MatType.CV_8UC3, Scalar.All(255));
        var annotator = new FieldAnnotator(Labels);
        var cell = new global::EdgeCounter.Detection.Detection("lymphocyte", "WBC", 0.8f, new BoxF(400, 800, 800, 1200));
        string[] header = ["field 9", "WBC 1"];

        using var annotated = annotator.AnnotateAtHeight(field, [cell], header, 480);

        // Frame and band together fill the 480 lines (within the rounding of the frame's size to whole pixels).
        Assert.InRange(annotated.Height, 476, 480);
        var width = annotated.Width;
        int Band(int w)
        {
            using var line = new Mat(1, w, MatType.CV_8UC3, Scalar.All(255));
            using var a = annotator.Annotate(line, [cell], header);
            return a.Height - 1;
        }
        var height = annotated.Height - Band(width);
        Assert.Equal(Math.Round(2560.0 * height / 1920), width, 0);
        // The same picture as a frame of that size annotated directly, the box at the scaled coordinates: lines and
        // text as thick as on a small camera's picture, not a 2560-wide drawing shrunk.
        float fx = width / 2560f, fy = height / 1920f;
        using var small = new Mat(height, width, MatType.CV_8UC3, Scalar.All(255));
        using var reference = annotator.Annotate(small, [cell with { Box = new BoxF(400 * fx, 800 * fy, 800 * fx, 1200 * fy) }], header);
        Assert.Equal(reference.Size(), annotated.Size());
        using var diff = new Mat();
        Cv2.Absdiff(annotated, reference, diff);
        Assert.Equal(0, Cv2.CountNonZero(diff.Reshape(1)));

        // A frame that fits with its band, or no cap, is annotated as it is.
        using var thumbnail = new Mat(240, 320, MatType.CV_8UC3, Scalar.All(255));
        using var same = annotator.AnnotateAtHeight(thumbnail, [cell], header, 480);
        Assert.Equal(320, same.Width);
        using var uncapped = annotator.AnnotateAtHeight(field, [cell], header, 0);
        Assert.Equal(2560, uncapped.Width);
    }

    [Fact]
    public void A_header_line_too_wide_for_the_picture_wraps_at_its_separators_instead_of_being_cut()
    {
        var annotator = new FieldAnnotator(Labels);
        const string totals = "neutrophil 18  eosinophil 1  lymphocyte 13  monocyte 4  RBC 538  Platelets 50";
        int Band(int width, string line, out Mat annotated)
        {
            using var field = new Mat(100, width, MatType.CV_8UC3, Scalar.All(255));
            annotated = annotator.Annotate(field, [], ["field 14", line]);
            return annotated.Height - field.Height;
        }

        var shortBand = Band(320, "RBC 538", out var shortPicture);
        var longBand = Band(320, totals, out var wrapped);
        var wideBand = Band(1400, totals, out var wide);
        var wideShortBand = Band(1400, "RBC 538", out var wideShort);
        using (shortPicture) using (wrapped) using (wide) using (wideShort)
        {
            Assert.True(longBand > shortBand, $"band {longBand} for the long line, {shortBand} for a short one");
            Assert.Equal(wideShortBand, wideBand); // wide enough: one line
            // Nothing is drawn in the band's last columns: the text stops inside the picture.
            using var edge = new Mat(wrapped, new Rect(320 - 6, 0, 6, longBand));
            using var grey = new Mat();
            Cv2.CvtColor(edge, grey, ColorConversionCodes.BGR2GRAY);
            Cv2.MinMaxLoc(grey, out _, out double brightest);
            Assert.True(brightest < 60, $"text reaches the right edge (brightest {brightest})");
        }
    }

    [Fact]
    public void A_field_with_no_cells_and_empty_header_lines_is_still_annotated()
    {
        using var field = new Mat(120, 160, MatType.CV_8UC3, Scalar.All(200));
        var annotator = new FieldAnnotator(Labels);
        using var annotated = annotator.Annotate(field, [], ["field 1  white cells 0/100 (0%)  running", "", ""]);
        Assert.True(annotated.Height > field.Height);
    }

    [Fact]
    public void Labels_keep_distinct_colours()
    {
        var annotator = new FieldAnnotator(Labels);
        Assert.Equal(3, Labels.Select(l => annotator.ColourOf(l)).Distinct().Count());
        Assert.Equal(annotator.ColourOf("mystery"), annotator.ColourOf("mystery"));
    }

    [Fact]
    public void Encoder_keeps_full_quality_when_it_fits()
    {
        using var flat = new Mat(480, 640, MatType.CV_8UC3, new Scalar(200, 180, 160));
        var jpeg = JpegBudgetEncoder.Encode(flat, 900_000);
        Assert.Equal(90, jpeg.Quality);
        Assert.Equal(1.0, jpeg.Scale);
        using var decoded = Cv2.ImDecode(jpeg.Bytes, ImreadModes.Color);
        Assert.Equal(new Size(640, 480), decoded.Size());
    }

    [Fact]
    public void Encoder_lowers_quality_then_scale_until_under_budget()
    {
        using var noise = NoisyField(1600, 1200);
        const int budget = 120_000;
        var jpeg = JpegBudgetEncoder.Encode(noise, budget);
        Assert.True(jpeg.Bytes.Length <= budget, $"{jpeg.Bytes.Length} bytes");
        Assert.True(jpeg.Scale < 1.0);
        using var decoded = Cv2.ImDecode(jpeg.Bytes, ImreadModes.Color);
        Assert.Equal(jpeg.Width, decoded.Width);
        Assert.Equal(jpeg.Height, decoded.Height);
        Assert.True(decoded.Width < 1600);
    }

    [Fact]
    public void A_height_cap_and_a_starting_quality_make_a_dashboard_sized_snapshot()
    {
        using var noise = NoisyField(2560, 1920);   // the seed paper's camera
        var full = JpegBudgetEncoder.Encode(noise, 8_000_000);
        var small = JpegBudgetEncoder.Encode(noise, 8_000_000, maxHeight: 480, quality: 80);
        Assert.Equal((640, 480, 80), (small.Width, small.Height, small.Quality));
        Assert.Equal(0.25, small.Scale, 6);
        Assert.True(small.Bytes.Length * 10 < full.Bytes.Length, $"{small.Bytes.Length} vs {full.Bytes.Length} bytes");
        using var flat = new Mat(300, 400, MatType.CV_8UC3, new Scalar(200, 180, 160));
        Assert.Equal(1.0, JpegBudgetEncoder.Encode(flat, 900_000, maxHeight: 480).Scale);   // never scaled up
    }
}
