using EdgeCounter.Commands;
using OpenCvSharp;

namespace EdgeCounter.IntegrationTests.Detection;

/// <summary>Shares a collection with the eval tests (both load the real model on every core). The table is read from
/// the command's own writer: Console.Out also carries the log lines of service hosts that other tests run alongside.</summary>
[Collection(ModelCommandCollection.Name)]
public class CountCommandTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("edgecounter-count-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [RequiresModelFact]
    public async Task CountsFilesAndFoldersOfImages()
    {
        using (var field = new Mat(240, 320, MatType.CV_8UC3, new Scalar(220, 210, 230)))
        {
            Cv2.ImWrite(Path.Combine(_root, "a.png"), field);
            Cv2.ImWrite(Path.Combine(_root, "b.jpg"), field);
        }
        File.WriteAllText(Path.Combine(_root, "notes.txt"), "not an image");
        var output = new StringWriter();
        var rc = await CountCommand.RunAsync(new CommandLine([_root, Path.Combine(_root, "a.png"), "--model", RealModel.ModelPath, "--provider", "cpu"]), output, CancellationToken.None);
        Assert.Equal(0, rc);
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal(["a.png", "b.jpg", "a.png", "TOTAL"], lines.Select(l => l.Split(' ')[0]));
        var labels = EdgeCounter.Detection.ModelLabels.Load(RealModel.LabelsPath);
        Assert.All(lines, l => Assert.All(labels.Labels, label => Assert.Contains($" {label}=", l)));
        Assert.All(lines, l => Assert.All(labels.Groups.Keys, group => Assert.Contains($" {group}=", l)));
        Assert.Contains("differential", lines[0]);
        Assert.EndsWith("(3 images)", lines[^1]);
    }

    [RequiresModelFact]
    public async Task AutoScaleEstimatesTheImagesPixelScale()
    {
        // Two fields of a slide at 0.2 µm/px (a 50x objective), saved as a user's camera would.
        using (var fields = new EdgeCounter.Simulation.SyntheticFields(8, EdgeCounter.Simulation.SlideProfile.Blood, 640, 480, 0.2))
            for (var i = 0; i < 2; i++)
                using (var image = fields.Render(i, out _))
                    Cv2.ImWrite(Path.Combine(_root, $"field-{i}.jpg"), image);
        var output = new StringWriter();
        var rc = await CountCommand.RunAsync(new CommandLine([_root, "--auto-scale", "--model", RealModel.ModelPath, "--provider", "cpu", "--threads", "2"]), output, CancellationToken.None);
        Assert.Equal(0, rc);
        var line = output.ToString().Split('\n').Single(l => l.StartsWith("Pixel scale estimated: ", StringComparison.Ordinal));
        var mpp = double.Parse(line["Pixel scale estimated: ".Length..].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(mpp, 0.19, 0.21);
        await Assert.ThrowsAsync<CommandLineException>(() => CountCommand.RunAsync(new CommandLine([_root, "--auto-scale", "--input-scale", "2"]), CancellationToken.None));
    }

    [Fact]
    public async Task MissingPathsAndNoPathsAreErrors()
    {
        await Assert.ThrowsAsync<CommandLineException>(() => CountCommand.RunAsync(new CommandLine([Path.Combine(_root, "nope.png")]), CancellationToken.None));
        await Assert.ThrowsAsync<CommandLineException>(() => CountCommand.RunAsync(new CommandLine(["--provider", "cpu"]), CancellationToken.None));
        await Assert.ThrowsAsync<CommandLineException>(() => CountCommand.RunAsync(new CommandLine([_root, "--provider", "gpu"]), CancellationToken.None));
    }
}

[CollectionDefinition(Name)]
public sealed class ModelCommandCollection
{
    public const string Name = "model commands";
}
