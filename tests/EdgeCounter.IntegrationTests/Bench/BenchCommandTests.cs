using System.Text.Json;
using EdgeCounter.Commands;
using EdgeCounter.IntegrationTests.Detection;

namespace EdgeCounter.IntegrationTests.Bench;

/// <summary>The bench command end to end, in-process, on a one-second budget: it must produce every figure the
/// JSON report promises. No timing thresholds: the figures are checked for being measured, not for being fast.</summary>
[Collection("Service")]
public class BenchCommandTests
{
    [RequiresModelFact]
    public async Task A_short_bench_writes_json_with_finite_positive_figures_for_every_required_key()
    {
        var directory = Directory.CreateTempSubdirectory("edgecounter-bench-test-").FullName;
        try
        {
            var json = Path.Combine(directory, "bench.json");
            var args = new CommandLine(["--seconds", "1", "--json", json, "--no-full-res", "--provider", "cpu", "--model", RealModel.ModelPath]);
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));

            var exitCode = await BenchCommand.RunAsync(args, cts.Token);

            Assert.Equal(0, exitCode);
            using var document = JsonDocument.Parse(await File.ReadAllTextAsync(json));
            var root = document.RootElement;
            foreach (var key in new[]
                     {
                         "scoring_ms_1080p", "inference_ms_640x480", "stop_to_publish_ms", "rss_mb",
                         "scoring_ms_640x480", "scoring_ms_2560x1920", "preprocess_ms_640x480", "postprocess_ms_640x480",
                         "inference_ms_2560x1920", "annotate_jpeg_ms_640x480", "annotate_jpeg_ms_2560x1920",
                         "detector_total_ms_1920x1080", "inference_ms_1920x1080", "annotate_jpeg_ms_1920x1080", "detector_total_ms_640x480_white_cells",
                         "capture_to_publish_ms", "sustained_fps", "field_stage_ms_1080p",
                     })
            {
                Assert.True(root.TryGetProperty(key, out var value), $"missing key {key}");
                Assert.True(value.ValueKind == JsonValueKind.Number, $"{key} is {value.ValueKind}, expected a number");
                var number = value.GetDouble();
                Assert.True(double.IsFinite(number) && number > 0, $"{key} = {number}");
            }
            Assert.Equal("CPU", root.GetProperty("execution_provider").GetString());
            // The default fp32 graph on CPU is its own reference; its targets are judged (no INT8 target for it).
            Assert.Equal(1, root.GetProperty("ratio_to_fp32_cpu_inference_ms_640x480").GetDouble());
            Assert.Equal(1, root.GetProperty("ratio_to_fp32_cpu_detector_total_ms_2560x1920").GetDouble());
            foreach (var key in new[] { "target_detector_total_ms_2560x1920", "target_stop_to_publish_ms", "target_rss_mb" })
                Assert.Contains(root.GetProperty(key).GetString(), new[] { "goal met", "floor met", "met", "missed" });
            Assert.False(root.TryGetProperty("fp32_cpu_inference_ms_640x480", out _));
            // Allocation is a count, not a time: the scorer's steady state must not allocate per frame.
            Assert.True(root.GetProperty("scoring_alloc_bytes_1080p").GetDouble() < 64, $"scoring allocates {root.GetProperty("scoring_alloc_bytes_1080p")} B/frame");
        }
        finally
        {
            Directory.Delete(directory, true);
        }
    }

    [RequiresModelFact]
    public async Task The_int8_graph_is_timed_against_the_fp32_graph_in_the_same_run_and_held_to_its_target()
    {
        var int8 = RealModel.ModelPathOf("int8");
        Assert.True(File.Exists(int8), $"missing {int8}");
        var directory = Directory.CreateTempSubdirectory("edgecounter-bench-test-").FullName;
        try
        {
            var json = Path.Combine(directory, "bench.json");
            var args = new CommandLine(["--seconds", "1", "--json", json, "--no-full-res", "--provider", "cpu", "--model", int8]);
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));

            Assert.Equal(0, await BenchCommand.RunAsync(args, cts.Token));

            using var document = JsonDocument.Parse(await File.ReadAllTextAsync(json));
            var root = document.RootElement;
            foreach (var key in new[] { "fp32_cpu_inference_ms_640x480", "fp32_cpu_detector_total_ms_2560x1920",
                         "ratio_to_fp32_cpu_inference_ms_640x480", "ratio_to_fp32_cpu_detector_total_ms_2560x1920" })
            {
                var number = root.GetProperty(key).GetDouble();
                Assert.True(double.IsFinite(number) && number > 0, $"{key} = {number}");
            }
            Assert.Contains(root.GetProperty("target_inference_ms_640x480").GetString(), new[] { "goal met", "floor met", "missed" });
            Assert.Equal(1, root.GetProperty("int8_conv_share").GetDouble());
        }
        finally
        {
            Directory.Delete(directory, true);
        }
    }
}
