using System.Globalization;

namespace EdgeCounter.Commands.Bench;

/// <summary>Which runs a target is for: the CPU path (any graph, or INT8 graphs only) or the CUDA path.</summary>
public enum TargetScope { Cpu, CpuInt8, Cuda, Any }

/// <summary>A figure's floor (what must hold) and goal (where we want it), lower is better; <see cref="Strict"/>: the
/// figure must be below, not at, the bound.</summary>
public sealed record BenchTarget(string Key, string What, double Floor, double Goal, string Unit, TargetScope Scope, bool Strict = false)
{
    public bool Within(double value, double bound) => Strict ? value < bound : value <= bound;

    /// <summary>A goal beyond the floor (the CPU budget of the cross-lab issue has none).</summary>
    public bool HasGoal => Goal != Floor;

    public string Bound(double bound) => $"{(Strict ? "<" : "≤")} {bound.ToString("0.##", CultureInfo.InvariantCulture)}";

    /// <summary>"≤ 10 / ≤ 6", or the floor alone when there is no goal beyond it.</summary>
    public string Bounds => HasGoal ? $"{Bound(Floor)} / {Bound(Goal)}" : Bound(Floor);
}

/// <summary>A target checked against one run's figure, with that figure's ratio to the default fp32 graph on CPU in the
/// same run where there is one.</summary>
public sealed record TargetResult(BenchTarget Target, double Value, double? RatioToFp32Cpu)
{
    public string Verdict =>
        !double.IsFinite(Value) ? "not measured"
        : !Target.Within(Value, Target.Floor) ? "missed"
        : !Target.HasGoal ? "met"
        : Target.Within(Value, Target.Goal) ? "goal met"
        : "floor met";
}

/// <summary>The service's speed and memory targets (the speed issue's table, and the cross-lab issue's CPU budget for
/// the default graph with its second stage), checked by <c>bench</c> against what it measured.</summary>
public static class BenchTargets
{
    public static readonly IReadOnlyList<BenchTarget> All =
    [
        new("inference_ms_640x480", "INT8 detector, 640x480 inference", 10, 6, "ms", TargetScope.CpuInt8),
        new("detector_total_ms_640x480_white_cells", "detector with its subtype stage, 640x480 field with white cells", 25, 25, "ms", TargetScope.Cpu),
        new("detector_total_ms_2560x1920", "detector total, 2560x1920 camera", 35, 20, "ms", TargetScope.Cpu),
        new("inference_ms_640x480", "CUDA detector, 640x480 inference (H200)", 5, 2, "ms", TargetScope.Cuda, Strict: true),
        new("stop_to_publish_ms", "stop to field message, beyond debounce", 80, 40, "ms", TargetScope.Any),
        new("rss_mb", "service RSS, steady state", 250, 150, "MB", TargetScope.Any),
    ];

    /// <summary>An INT8 graph is one whose file name says so (the model contract's rule for quantised variants).</summary>
    public static bool IsInt8Model(string modelPath) => Path.GetFileName(modelPath).Contains("int8", StringComparison.OrdinalIgnoreCase);

    public static bool Applies(BenchTarget target, string executionProvider, string modelPath)
    {
        var cpu = string.Equals(executionProvider, "CPU", StringComparison.OrdinalIgnoreCase);
        return target.Scope switch
        {
            TargetScope.Cpu => cpu,
            TargetScope.CpuInt8 => cpu && IsInt8Model(modelPath),
            TargetScope.Cuda => string.Equals(executionProvider, "CUDA", StringComparison.OrdinalIgnoreCase),
            _ => true,
        };
    }

    /// <summary>The targets that apply to this run, each with its figure from <paramref name="report"/> (NaN when the
    /// run did not measure it) and the ratio the report holds for it (<see cref="RatioKey"/>).</summary>
    public static IReadOnlyList<TargetResult> Check(BenchReport report, string executionProvider, string modelPath) =>
        All.Where(t => Applies(t, executionProvider, modelPath))
            .Select(t => new TargetResult(t, report[t.Key] ?? double.NaN, report[RatioKey(t.Key)] is { } r && double.IsFinite(r) ? r : null))
            .ToList();

    /// <summary>The report key of a figure's ratio to the default fp32 graph on CPU, measured in the same run.</summary>
    public static string RatioKey(string key) => $"ratio_to_fp32_cpu_{key}";
}
