using EdgeCounter.Commands.Bench;
using EdgeCounter.IntegrationTests.Detection;

namespace EdgeCounter.IntegrationTests.Bench;

/// <summary>bench's kernel census runs every family's graph: [1, 3, H, W] inputs and torchvision's [3, H, W].</summary>
public class KernelMixTests
{
    [Theory]
    [InlineData("fasterrcnn")] // input [3, H, W]: bench stopped at this graph before
    [InlineData("yolo")]
    public void Kernels_are_counted_for_a_graph_of_each_input_layout(string family)
    {
        var model = Path.Combine(RealModel.RepositoryRoot ?? ".", "tests", "fixtures", "families", family, "model.onnx");
        static int ProfilesHere() => Directory.GetFiles(Directory.GetCurrentDirectory(), "onnxruntime_profile_*").Length;
        var before = ProfilesHere();
        var kernels = KernelMix.Of(model, 64, 64, threads: 1);
        Assert.Equal(before, ProfilesHere()); // no profile left in the working directory
        Assert.True(kernels.TryGetValue("Conv", out var conv) || kernels.TryGetValue("FusedConv", out conv), KernelMix.Describe(kernels));
        Assert.True(conv.Nodes > 0 && conv.Ms >= 0);
    }
}
