using EdgeCounter.Simulation;
using OpenCvSharp;
using static EdgeCounter.Tests.Simulation.SimulationTestKit;

namespace EdgeCounter.Tests.Simulation;

public class GroundTruthTests
{
    private static IEnumerable<SlideCell> SampleCells(SlideProfile profile, ulong seed)
    {
        var layout = new SlideLayout(seed, profile, 0.1, 40 * 640, 30 * 480);
        return layout.CellsIn(3000, 3000, 9000, 7000);
    }

    [Theory]
    [InlineData(SlideProfile.Blood, 1UL)]
    [InlineData(SlideProfile.Marrow, 2UL)]
    public void Every_cells_box_holds_its_drawn_pixels_and_is_tight(SlideProfile profile, ulong seed)
    {
        var palette = new StainPalette(seed, 0);
        var textures = new SlideTextures(seed, 0.1);
        var seen = new HashSet<CellType>();
        foreach (var cell in SampleCells(profile, seed))
        {
            // Paint the cell alone onto a zero-density canvas well larger than its box.
            var left = (int)Math.Floor(cell.X0) - 8;
            var top = (int)Math.Floor(cell.Y0) - 8;
            var width = (int)Math.Ceiling(cell.X1) + 8 - left;
            var height = (int)Math.Ceiling(cell.Y1) + 8 - top;
            var density = new float[width * height * 3];
            cell.Paint(density, left, top, width, height, palette, textures);
            int minX = int.MaxValue, minY = int.MaxValue, maxX = int.MinValue, maxY = int.MinValue;
            for (var y = 0; y < height; y++)
                for (var x = 0; x < width; x++)
                {
                    var i = (y * width + x) * 3;
                    if (density[i] + density[i + 1] + density[i + 2] <= 1e-4f) continue;
                    minX = Math.Min(minX, x + left); maxX = Math.Max(maxX, x + left);
                    minY = Math.Min(minY, y + top); maxY = Math.Max(maxY, y + top);
                }
            Assert.True(minX <= maxX, $"{cell.Type} {cell.Id} drew nothing");
            // Holds: every drawn pixel [x, x+1) lies inside the box.
            Assert.True(minX >= Math.Floor(cell.X0) && maxX + 1 <= Math.Ceiling(cell.X1), $"{cell.Type}: x {minX}..{maxX + 1} outside box {cell.X0:F1}..{cell.X1:F1}");
            Assert.True(minY >= Math.Floor(cell.Y0) && maxY + 1 <= Math.Ceiling(cell.Y1), $"{cell.Type}: y {minY}..{maxY + 1} outside box {cell.Y0:F1}..{cell.Y1:F1}");
            // Tight: the drawn pixels reach within 1.5 px of every side.
            Assert.True(minX - cell.X0 <= 1.5 && cell.X1 - (maxX + 1) <= 1.5, $"{cell.Type}: box not tight in x");
            Assert.True(minY - cell.Y0 <= 1.5 && cell.Y1 - (maxY + 1) <= 1.5, $"{cell.Type}: box not tight in y");
            seen.Add(cell.Type);
        }
        Assert.Contains(CellType.Erythrocyte, seen);
        Assert.Contains(CellType.Platelet, seen);
        Assert.Contains(CellType.Neutrophil, seen);
        Assert.Contains(CellType.Lymphocyte, seen);
        if (profile == SlideProfile.Marrow)
            foreach (var type in new[] { CellType.Erythroblast, CellType.Myelocyte, CellType.Metamyelocyte, CellType.BandNeutrophil, CellType.Blast })
                Assert.Contains(type, seen);
    }

    [Fact]
    public void Frame_truth_boxes_are_slide_boxes_shifted_by_the_stage_and_clipped()
    {
        var options = Scripted(new ScriptedStop(1000, 700, TimeSpan.FromSeconds(10)));
        using var microscope = new SimulatedMicroscope(options);
        using var frame = microscope.RenderFrame(0, out var truth);
        Assert.Equal(1000, truth.StageX);
        Assert.Equal(700, truth.StageY);
        var slideCells = microscope.Layout.CellsIn(1000, 700, 1640, 1180).ToDictionary(c => c.Id);
        Assert.Equal(slideCells.Count, truth.Cells.Count);
        foreach (var c in truth.Cells)
        {
            var s = slideCells[c.CellId];
            Assert.Equal(s.Type, c.Type);
            Assert.True(c.Box.X >= 0 && c.Box.Y >= 0 && c.Box.X + c.Box.Width <= 640.001 && c.Box.Y + c.Box.Height <= 480.001);
            Assert.Equal(Math.Max(0, s.X0 - 1000), c.Box.X, 0.01);
            Assert.Equal(Math.Min(640, s.X1 - 1000), c.Box.X + c.Box.Width, 0.01);
            var inside = s.X0 >= 1000 && s.Y0 >= 700 && s.X1 <= 1640 && s.Y1 <= 1180;
            Assert.Equal(!inside, c.Truncated);
        }
    }

    [Fact]
    public void Drawn_cells_sit_in_their_boxes_and_the_glass_outside_is_pale()
    {
        var options = Scripted(new ScriptedStop(2000, 1500, TimeSpan.FromSeconds(10)));
        using var microscope = new SimulatedMicroscope(options);
        using var frame = microscope.RenderFrame(5, out var truth);
        using var hsv = new Mat();
        Cv2.CvtColor(frame, hsv, ColorConversionCodes.BGR2HSV);
        var inBox = new bool[480, 640];
        foreach (var c in truth.Cells)
            for (var y = (int)c.Box.Y; y < Math.Ceiling(c.Box.Y + c.Box.Height); y++)
                for (var x = (int)c.Box.X; x < Math.Ceiling(c.Box.X + c.Box.Width); x++)
                    inBox[y, x] = true;
        // Stained cells are saturated; glass and plasma film are not. Nothing coloured may lie outside every box.
        var colouredOutside = 0;
        for (var y = 0; y < 480; y++)
            for (var x = 0; x < 640; x++)
                if (!inBox[y, x] && hsv.At<Vec3b>(y, x).Item1 > 60) colouredOutside++;
        Assert.Equal(0, colouredOutside);
        // And each whole cell's box holds clearly coloured pixels.
        foreach (var c in truth.Cells.Where(c => !c.Truncated))
        {
            using var roi = new Mat(hsv, new Rect((int)c.Box.X, (int)c.Box.Y, (int)c.Box.Width, (int)c.Box.Height));
            Cv2.MinMaxLoc(roi.ExtractChannel(1), out _, out double maxSaturation);
            Assert.True(maxSaturation > 60, $"{c.Type} box holds no stained pixel");
        }
    }

    [Fact]
    public void Field_densities_look_like_bccd()
    {
        // Average over many 64 x 48 um fields (640 x 480 at 0.1 um/px), counting cells by centre.
        foreach (var profile in new[] { SlideProfile.Blood, SlideProfile.Marrow })
        {
            var layout = new SlideLayout(99, profile, 0.1, 40 * 640, 30 * 480);
            var counts = new Dictionary<CellType, int>();
            const int fields = 300;
            for (var i = 0; i < fields; i++)
            {
                var x = 640 + (i % 30) * 800;
                var y = 480 + (i / 30) * 1300;
                foreach (var c in layout.CellsIn(x, y, x + 640, y + 480).Where(c => c.Cx >= x && c.Cx < x + 640 && c.Cy >= y && c.Cy < y + 480))
                    counts[c.Type] = counts.GetValueOrDefault(c.Type) + 1;
            }
            double PerField(params CellType[] types) => types.Sum(t => counts.GetValueOrDefault(t)) / (double)fields;
            var white = PerField(CellType.Neutrophil, CellType.Eosinophil, CellType.Basophil, CellType.Lymphocyte, CellType.Monocyte, CellType.PlasmaCell, CellType.Megakaryocyte,
                CellType.Erythroblast, CellType.Myelocyte, CellType.Metamyelocyte, CellType.BandNeutrophil, CellType.Blast);
            Assert.InRange(PerField(CellType.Erythrocyte), 10, 20);
            Assert.InRange(PerField(CellType.Platelet), 0.8, 3);
            if (profile == SlideProfile.Blood)
            {
                Assert.InRange(white, 0.5, 1.5);
                Assert.Equal(0, PerField(CellType.PlasmaCell, CellType.Megakaryocyte));
                Assert.True(PerField(CellType.Neutrophil) > PerField(CellType.Lymphocyte));
            }
            else
            {
                Assert.InRange(white, 1.5, 4);
                Assert.True(PerField(CellType.PlasmaCell) > 0);
                Assert.True(PerField(CellType.Megakaryocyte) > 0);
            }
        }
    }
}
