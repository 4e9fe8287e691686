using System.Text.Json.Nodes;
using EdgeCounter.Commands;
using OpenCvSharp;

namespace EdgeCounter.IntegrationTests.Detection;

/// <summary>
/// <c>calibrate</c> on two images, the shipped graph as its own probe (its outputs are float tensors): per tensor the
/// mean of the images' minima and maxima, and the extremes over both, as each image alone reports them.
/// </summary>
[Collection(ModelCommandCollection.Name)]
public class CalibrateCommandTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("edgecounter-calibrate-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private async Task<JsonObject> CalibrateAsync(string images, string name)
    {
        var output = Path.Combine(_root, name + ".json");
        var rc = await CalibrateCommand.RunAsync(new CommandLine([RealModel.ModelPath, "--images", images, "--out", output, "--threads", "1"]), CancellationToken.None);
        Assert.Equal(0, rc);
        return JsonNode.Parse(File.ReadAllText(output))!["ranges"]!.AsObject();
    }

    [RequiresModelFact]
    public async Task RangesAreTheMeansOfEachImagesAndTheExtremesOverAll()
    {
        var both = Directory.CreateDirectory(Path.Combine(_root, "both")).FullName;
        using (var field = EvalCommandTests.Field())
        using (var darker = new Mat())
        {
            field.ConvertTo(darker, -1, 0.6, 0);  // another exposure: other activations
            Cv2.ImWrite(Path.Combine(both, "a.png"), field);
            Cv2.ImWrite(Path.Combine(both, "b.png"), darker);
            foreach (var (file, image) in new[] { ("a", field), ("b", darker) })
            {
                Directory.CreateDirectory(Path.Combine(_root, file));
                Cv2.ImWrite(Path.Combine(_root, file, file + ".png"), image);
            }
        }
        var all = await CalibrateAsync(both, "both");
        var a = await CalibrateAsync(Path.Combine(_root, "a"), "a");
        var b = await CalibrateAsync(Path.Combine(_root, "b"), "b");

        Assert.NotEmpty(all);
        foreach (var (tensor, range) in all)
        {
            double Of(JsonObject r, string key) => r[tensor]![key]!.GetValue<double>();
            var r = range!.AsObject();
            // One image: its extremes are its minimum and maximum.
            Assert.Equal(Of(a, "min"), Of(a, "lowest"), 6);
            Assert.Equal(Of(a, "max"), Of(a, "highest"), 6);
            Assert.Equal((Of(a, "min") + Of(b, "min")) / 2, r["min"]!.GetValue<double>(), 5);
            Assert.Equal((Of(a, "max") + Of(b, "max")) / 2, r["max"]!.GetValue<double>(), 5);
            Assert.Equal(Math.Min(Of(a, "min"), Of(b, "min")), r["lowest"]!.GetValue<double>(), 6);
            Assert.Equal(Math.Max(Of(a, "max"), Of(b, "max")), r["highest"]!.GetValue<double>(), 6);
        }
        // The two exposures differ somewhere, so the extremes are wider than the means there.
        Assert.Contains(all, kv => kv.Value!["highest"]!.GetValue<double>() > kv.Value!["max"]!.GetValue<double>() + 1e-6);
    }
}
