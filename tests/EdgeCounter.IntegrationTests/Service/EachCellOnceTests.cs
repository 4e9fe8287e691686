using System.Text.Json;
using EdgeCounter.Commands.Simcheck;
using EdgeCounter.Hosting;
using EdgeCounter.IntegrationTests.Publishing;
using Xunit.Abstractions;

namespace EdgeCounter.IntegrationTests.Service;

/// <summary>
/// Each cell counted once as the slide moves, judged by the simulator's cell ids: the real service pipeline in-process
/// (simcheck's run), neighbouring fields overlapping by 30 %. Before slide coordinates this run counted about half
/// the red and white cells twice (doubleCounted 0.51 RBC, 0.45 WBC at seed 1, 120 s).
/// </summary>
[Collection("Service")]
public class EachCellOnceTests(ITestOutputHelper output)
{
    [Fact]
    public async Task At_30_percent_overlap_each_cell_is_counted_once_and_none_is_wrongly_suppressed()
    {
        var result = await SimcheckRun.RunAsync(new SimcheckSettings(Overlap: 0.3, Seconds: 60, Seed: 1), CancellationToken.None, output.WriteLine);
        foreach (var (group, g) in result.PerClass)
            output.WriteLine($"{group}: distinct {g.DistinctCounted}, double {g.DoubleCounted:P1} ({g.DoubleCountedDetections}), wrongly suppressed {g.WronglySuppressed:P1}, suppressed {g.SuppressedDetections}, moved {g.MovedCounts}");
        output.WriteLine($"{result.Fields} fields, {result.UnknownPositionFields} unknown, odometry error {result.OdometryErrorPx} px");
        var (wbc, rbc) = (result.PerClass["WBC"], result.PerClass["RBC"]);
        Assert.True(result.Fields >= 25, $"only {result.Fields} fields in 60 simulated seconds");
        Assert.True(wbc.DistinctCounted >= 10 && rbc.DistinctCounted >= 200, "the run should hold white and red cells");
        Assert.True(rbc.DoubleCounted <= 0.02, $"RBC double counted {rbc.DoubleCounted:P1}");
        Assert.True(wbc.DoubleCountedDetections <= 1, $"{wbc.DoubleCountedDetections} white cells counted twice");
        // The overlap was seen: many detections were recognised as cells already counted.
        Assert.True(rbc.SuppressedDetections >= 0.3 * rbc.DistinctCounted, $"only {rbc.SuppressedDetections} red-cell detections recognised as already counted");
        Assert.True(rbc.WronglySuppressed <= 0.02 && wbc.WronglySuppressedDetections == 0, "cells suppressed that had never been counted");
        // The counting-frame rule worked: red cells counted cut by one field's edge were counted where whole instead
        // (moves that lost a cell or counted one twice are in the two figures above).
        Assert.True(rbc.MovedCounts >= 10, $"only {rbc.MovedCounts} red-cell counts moved to the field where the cell is whole");
        Assert.True(result.UnknownPositionFields <= 2, $"{result.UnknownPositionFields} fields could not be placed");
        Assert.NotNull(result.OdometryErrorPx);
        Assert.True(result.OdometryErrorPx < 20, $"field positions off by {result.OdometryErrorPx} px (median)");
    }

    [Fact]
    public async Task Field_messages_mark_each_detection_and_carry_the_position_and_counts_add_only_new_cells()
    {
        var port = FreePort.Next();
        var state = Directory.CreateTempSubdirectory("edgecounter-once-").FullName;
        try
        {
            using var host = ServiceHost.Build(ServiceEndToEndTests.Args(port, state,
                "--EdgeCounter:Source:Simulator:FieldOverlap=0.5", "--EdgeCounter:Source:Simulator:RevisitProbability=0"));
            await host.StartAsync();
            await using var watcher = await RecordingSubscriber.ConnectAsync(port, "edgecounter/scope-test/#");
            const string p = "edgecounter/scope-test";
            var fields = (await watcher.WaitForCountAsync(m => m.Topic == $"{p}/field", 4, TimeSpan.FromSeconds(90), "field"))
                .Select(m => JsonDocument.Parse(m.Payload).RootElement).ToList();
            // The live slide map: retained JPEG on P/slide/image.
            var slide = await watcher.WaitForAsync(m => m.Topic == $"{p}/slide/image", what: "slide map");
            // Stop the session, so the next start counts nothing and what it publishes on slide/image is the kept map.
            await watcher.PublishAsync($"{p}/session/set", "{\"action\":\"stop\"}"u8.ToArray());
            await watcher.WaitForAsync(m => m.Topic == $"{p}/session/state" && m.Text.Contains("\"stopped\""), what: "session stopped");
            await host.StopAsync();
            var sessionId = fields[0].GetProperty("sessionId").GetString()!;
            var kept = Path.Combine(state, $"slide-map-{sessionId}.jpg");
            Assert.True(File.Exists(kept), "the slide map is not kept with the session");
            using (var keptImage = OpenCvSharp.Cv2.ImRead(kept))
                Assert.False(keptImage.Empty(), "the kept slide map is not a JPEG");
            // A restart (the embedded broker forgets retained messages) publishes the kept map again.
            var port2 = FreePort.Next();
            using (var again = ServiceHost.Build(ServiceEndToEndTests.Args(port2, state)))
            {
                await again.StartAsync();
                await using var watcher2 = await RecordingSubscriber.ConnectAsync(port2, "edgecounter/scope-test/slide/image");
                var republished = await watcher2.WaitForAsync(m => m.Topic == $"{p}/slide/image", TimeSpan.FromSeconds(30), "kept slide map after restart");
                Assert.Equal(File.ReadAllBytes(kept), republished.Payload);
                await again.StopAsync();
            }
            using (var decoded = OpenCvSharp.Cv2.ImDecode(slide.Payload, OpenCvSharp.ImreadModes.Color))
            {
                Assert.False(decoded.Empty(), "P/slide/image is not a JPEG");
                Assert.True(decoded.Cols >= 64 && decoded.Rows >= 40, $"slide map {decoded.Cols}x{decoded.Rows}");
            }
            Assert.True(slide.Retain || slide.Payload.Length > 0);

            var (already, moved) = (0, 0);
            var newByLabel = new Dictionary<string, int>();
            foreach (var field in fields)
            {
                var id = field.GetProperty("fieldId").GetInt64();
                var position = field.GetProperty("position");
                Assert.True(position.ValueKind == JsonValueKind.String ? position.GetString() == "unknown" : position.TryGetProperty("x", out _) && position.TryGetProperty("y", out _));
                var counts = field.GetProperty("counts").EnumerateObject().ToDictionary(c => c.Name, c => c.Value.GetInt32());
                var fieldNew = new Dictionary<string, int>();
                var (fieldNewCells, fieldMoved) = (0, 0);
                foreach (var d in field.GetProperty("detections").EnumerateArray())
                {
                    var status = d.GetProperty("status").GetString();
                    var countedIn = d.GetProperty("countedInField").GetInt64();
                    var label = d.GetProperty("label").GetString()!;
                    Assert.Contains(status, new[] { "new", "alreadyCounted" });
                    if (status == "new")
                    {
                        Assert.Equal(id, countedIn);
                        fieldNewCells++;
                        fieldNew[label] = fieldNew.GetValueOrDefault(label) + 1;
                        // The counting-frame rule: a cell counted cut by an earlier field's edge, whole here, has its
                        // count moved here: the earlier field's label gives one back.
                        if (d.TryGetProperty("movedFrom", out var from))
                        {
                            Assert.InRange(from.GetProperty("fieldId").GetInt64(), 1, id - 1);
                            var was = from.GetProperty("label").GetString()!;
                            fieldNew[was] = fieldNew.GetValueOrDefault(was) - 1;
                            fieldMoved++;
                        }
                    }
                    else { Assert.InRange(countedIn, 1, id); already++; } // id: a second box of a cell whose count moved here
                }
                moved += fieldMoved;
                Assert.Equal(fieldMoved, field.GetProperty("moved").GetInt32());
                // The field's counts are what it adds to the totals: its new cells, less the counts moved here.
                Assert.Equal(fieldNew.Where(c => c.Value != 0).OrderBy(k => k.Key), counts.OrderBy(k => k.Key));
                Assert.Equal(field.GetProperty("detections").GetArrayLength() - fieldNewCells, field.GetProperty("alreadyCounted").GetInt32());
                foreach (var (label, n) in fieldNew) newByLabel[label] = newByLabel.GetValueOrDefault(label) + n;
            }
            output.WriteLine($"{fields.Count} fields, {already} detections already counted, {moved} counts moved to the field where the cell is whole");
            Assert.True(already > 0, "at 50 % overlap some detections must be cells already counted");
            Assert.Contains(fields.Skip(1), f => f.GetProperty("position").ValueKind == JsonValueKind.Object);
        }
        finally
        {
            Directory.Delete(state, true);
        }
    }
}
