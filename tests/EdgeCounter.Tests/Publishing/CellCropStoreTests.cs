using EdgeCounter.Counting;
using EdgeCounter.Detection;
using EdgeCounter.Fields;
using EdgeCounter.Publishing;
using EdgeCounter.Storage;
using OpenCvSharp;
using static EdgeCounter.Tests.Counting.CountingTestData;

namespace EdgeCounter.Tests.Publishing;

public sealed class CellCropStoreTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgecounter-crops-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Cells => Path.Combine(_dir, "cells");

    private (CountingService Counting, CellCropStore Crops) Create(CellCropOptions? options = null, long reserve = 0)
    {
        var counting = new CountingService(Catalog(), new CountingOptions { DefaultTarget = 1000 }, new SessionStore(Path.Combine(_dir, "session")));
        return (counting, new CellCropStore(_dir, options ?? new CellCropOptions(), new StorageMonitor(_dir, reserve)));
    }

    private static FieldOutcome Counted(CountingService counting, Mat image, IReadOnlyList<DetectionMark>? marks, params global::EdgeCounter.Detection.Detection[] detections)
    {
        var result = counting.CountField(detections);
        return new FieldOutcome(FieldFate.Counted, new StableField(image, 1, DateTimeOffset.UnixEpoch, new FrameScore(0.1, 100)))
        {
            Detection = new DetectionResult(detections, 1, 1, 1),
            Count = result,
            Marks = marks,
        };
    }

    private static Mat Image()
    {
        var image = new Mat(480, 640, MatType.CV_8UC3, new Scalar(200, 180, 220));
        Cv2.Circle(image, new Point(100, 100), 30, new Scalar(120, 40, 90), -1);
        return image;
    }

    private static global::EdgeCounter.Detection.Detection Cell(string label, float x, float y, float size) => new(label, label == "RBC" ? "RBC" : "WBC", 0.9f, new BoxF(x, y, x + size, y + size));

    [Fact]
    public void Every_new_cell_gets_a_small_crop_named_by_its_cell_id_and_a_cell_counted_before_gets_none()
    {
        var (counting, crops) = Create();
        using var image = Image();
        var outcome = Counted(counting, image, null, Cell("neutrophil", 70, 70, 60), Cell("RBC", 600, 440, 60), Cell("lymphocyte", 300, 200, 200));
        crops.Accept(outcome);
        var session = outcome.Count!.Tally!.SessionId;
        foreach (var id in new long[] { 1, 2, 3 })
        {
            var path = crops.PathOf(session, id);
            Assert.NotNull(path);
            using var crop = Cv2.ImRead(path!);
            Assert.False(crop.Empty());
            Assert.True(Math.Max(crop.Cols, crop.Rows) <= CellCropStore.CropSize, $"{crop.Cols}x{crop.Rows}");
        }
        // The neutrophil's crop holds the dark disc it was drawn on.
        using (var first = Cv2.ImRead(crops.PathOf(session, 1)!)) Assert.True(Cv2.Mean(first).Val1 < 150, $"mean green {Cv2.Mean(first).Val1}");

        // A second field: one cell new, one counted already (the registry's mark): only the new one is cropped.
        var second = Counted(counting, image, [new DetectionMark(false, 0) { CellId = 4 }, new DetectionMark(true, 1) { CellId = 1 }],
            Cell("monocyte", 10, 10, 50), Cell("neutrophil", 70, 70, 60));
        crops.Accept(second);
        Assert.NotNull(crops.PathOf(session, 4));
        Assert.Equal(4, Directory.GetFiles(Path.Combine(Cells, session)).Length);
        Assert.Null(crops.PathOf("../etc", 1));
    }

    [Fact]
    public void Crops_past_their_retention_and_beyond_the_bound_are_deleted_oldest_first_and_the_open_session_keeps_its_own()
    {
        Directory.CreateDirectory(Path.Combine(Cells, "old-session"));
        var old = Path.Combine(Cells, "old-session", "1.jpg");
        File.WriteAllBytes(old, new byte[100]);
        File.SetLastWriteTimeUtc(old, DateTime.UtcNow.AddDays(-40));
        Directory.CreateDirectory(Path.Combine(Cells, "recent-a"));
        File.WriteAllBytes(Path.Combine(Cells, "recent-a", "1.jpg"), new byte[700_000]);
        File.SetLastWriteTimeUtc(Path.Combine(Cells, "recent-a", "1.jpg"), DateTime.UtcNow.AddHours(-2));
        Directory.CreateDirectory(Path.Combine(Cells, "recent-b"));
        File.WriteAllBytes(Path.Combine(Cells, "recent-b", "1.jpg"), new byte[400_000]);

        var (counting, crops) = Create(new CellCropOptions { MaxBytes = 1024 * 1024, Retention = TimeSpan.FromDays(30) });
        using var image = Image();
        var outcome = Counted(counting, image, null, Cell("neutrophil", 70, 70, 60), Cell("lymphocyte", 300, 200, 100));
        crops.Accept(outcome);

        Assert.False(Directory.Exists(Path.Combine(Cells, "old-session")));   // past its retention
        Assert.False(Directory.Exists(Path.Combine(Cells, "recent-a")));      // the oldest, to make room under 1 MiB
        Assert.True(Directory.Exists(Path.Combine(Cells, "recent-b")));
        Assert.NotNull(crops.PathOf(outcome.Count!.Tally!.SessionId, 2));
        Assert.Equal(0, crops.Dropped);
    }

    [Fact]
    public void On_a_disk_near_its_reserve_no_crop_is_written_and_each_is_counted_as_dropped()
    {
        var (counting, crops) = Create(reserve: long.MaxValue / 4);
        using var image = Image();
        crops.Accept(Counted(counting, image, null, Cell("neutrophil", 70, 70, 60), Cell("RBC", 300, 200, 60)));
        Assert.Equal(2, crops.Dropped);
        Assert.False(Directory.Exists(Cells) && Directory.EnumerateFiles(Cells, "*.jpg", SearchOption.AllDirectories).Any());
    }
}
