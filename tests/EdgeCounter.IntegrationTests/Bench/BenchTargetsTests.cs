using EdgeCounter.Commands.Bench;

namespace EdgeCounter.IntegrationTests.Bench;

/// <summary>The targets table of <c>bench</c>: which targets a run is held to, and the verdict for each figure.</summary>
public class BenchTargetsTests
{
    private static BenchReport Report(params (string Key, double Value)[] figures)
    {
        var report = new BenchReport();
        foreach (var (key, value) in figures) report.Add("g", key, key, value, "ms");
        return report;
    }

    [Fact]
    public void An_int8_graph_on_cpu_is_held_to_the_int8_target_and_an_fp32_graph_is_not()
    {
        var report = Report(("inference_ms_640x480", 9.6));
        var int8 = BenchTargets.Check(report, "CPU", "/m/cellnet-int8.onnx").Select(t => t.Target.What).ToList();
        var fp32 = BenchTargets.Check(report, "CPU", "/m/cellnet.onnx").Select(t => t.Target.What).ToList();
        var cuda = BenchTargets.Check(report, "CUDA", "/m/cellnet.onnx").Select(t => t.Target.What).ToList();

        Assert.Contains("INT8 detector, 640x480 inference", int8);
        Assert.DoesNotContain("INT8 detector, 640x480 inference", fp32);
        Assert.Contains("detector total, 2560x1920 camera", fp32);
        Assert.Contains("CUDA detector, 640x480 inference (H200)", cuda);
        Assert.DoesNotContain("detector total, 2560x1920 camera", cuda); // a CPU budget
        Assert.Contains("service RSS, steady state", cuda);
    }

    [Theory]
    [InlineData(5.9, "goal met")]
    [InlineData(6.0, "goal met")]  // at the bound is within it (≤)
    [InlineData(9.99, "floor met")]
    [InlineData(10.0, "floor met")]
    [InlineData(10.01, "missed")]
    [InlineData(double.NaN, "not measured")]
    public void The_verdict_follows_floor_and_goal(double value, string verdict)
    {
        var report = Report(("inference_ms_640x480", value));
        var result = Assert.Single(BenchTargets.Check(report, "CPU", "cellnet-int8.onnx"), t => t.Target.Key == "inference_ms_640x480");
        Assert.Equal(verdict, result.Verdict);
    }

    [Fact]
    public void A_strict_target_excludes_its_bound_and_a_target_without_a_goal_is_met_or_missed()
    {
        var cuda = Assert.Single(BenchTargets.Check(Report(("inference_ms_640x480", 5.0)), "CUDA", "cellnet.onnx"), t => t.Target.Key == "inference_ms_640x480");
        Assert.Equal("missed", cuda.Verdict); // < 5 ms, and 5.0 is not below it

        var budget = Assert.Single(BenchTargets.Check(Report(("detector_total_ms_640x480_white_cells", 24.0)), "CPU", "cellnet.onnx"), t => t.Target.Key == "detector_total_ms_640x480_white_cells");
        Assert.Equal("met", budget.Verdict);
        Assert.Equal("≤ 25", budget.Target.Bounds);
    }

    [Fact]
    public void The_ratio_to_fp32_comes_from_the_report_and_is_absent_when_not_measured()
    {
        var report = Report(("detector_total_ms_2560x1920", 30), (BenchTargets.RatioKey("detector_total_ms_2560x1920"), 0.55), ("stop_to_publish_ms", 70));
        var results = BenchTargets.Check(report, "CPU", "cellnet-int8.onnx");

        Assert.Equal(0.55, results.Single(t => t.Target.Key == "detector_total_ms_2560x1920").RatioToFp32Cpu);
        Assert.Null(results.Single(t => t.Target.Key == "stop_to_publish_ms").RatioToFp32Cpu);
    }

    [Fact]
    public void The_table_and_the_json_carry_each_verdict()
    {
        var report = Report(("detector_total_ms_2560x1920", 30), (BenchTargets.RatioKey("detector_total_ms_2560x1920"), 0.55));
        report.SetTargets(BenchTargets.Check(report, "CPU", "cellnet-int8.onnx"));

        var table = new StringWriter();
        report.PrintTable(table);
        var line = table.ToString().Split('\n').Single(l => l.Contains("(detector_total_ms_2560x1920)"));
        Assert.Contains("≤ 35 / ≤ 20", line);
        Assert.Contains("floor met", line);
        Assert.Contains("0.55x fp32 CPU", line);

        using var json = new MemoryStream();
        report.WriteJson(json);
        using var document = System.Text.Json.JsonDocument.Parse(json.ToArray());
        Assert.Equal("floor met", document.RootElement.GetProperty("target_detector_total_ms_2560x1920").GetString());
        Assert.Equal("not measured", document.RootElement.GetProperty("target_rss_mb").GetString());
    }
}
