using EdgeCounter.Detection;
using Microsoft.Extensions.Logging;

namespace EdgeCounter.IntegrationTests.Detection;

/// <summary>Where the committed model and parity fixture live: models/ and tests/fixtures/parity/ under the repository root.</summary>
internal static class RealModel
{
    public static readonly string? RepositoryRoot = ModelLocator.FindRepositoryRoot(AppContext.BaseDirectory);

    public static string ModelPath => Path.Combine(RepositoryRoot ?? ".", "models", ModelLocator.DefaultModelFile);

    public static string LabelsPath => DetectorOptions.DefaultLabelsPath(ModelPath);

    public static string ParityDirectory => Path.Combine(RepositoryRoot ?? ".", "tests", "fixtures", "parity");

    /// <summary>The graph variant shipped beside the default (same weights, three test scales in the graph).</summary>
    public const string ThreeScale = "3scale";

    /// <summary>models/cellnet.onnx, or models/cellnet-VARIANT.onnx for a variant ("" = the default).</summary>
    public static string ModelPathOf(string variant) =>
        variant.Length == 0 ? ModelPath : Path.Combine(RepositoryRoot ?? ".", "models", $"{Path.GetFileNameWithoutExtension(ModelLocator.DefaultModelFile)}-{variant}.onnx");

    public static string ParityDirectoryOf(string variant) => variant.Length == 0 ? ParityDirectory : $"{ParityDirectory}-{variant}";

    public static bool ModelPresent => File.Exists(ModelPath) && File.Exists(LabelsPath);

    /// <summary>CI runs on the merged repository, which has the model: there a missing model fails the tests instead of skipping them.</summary>
    public static bool MaySkip => !string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    public static bool ParityPresent => ModelPresent && File.Exists(Path.Combine(ParityDirectory, "reference.json")) && File.Exists(Path.Combine(ParityDirectory, "input.png"));

    public static OnnxCellDetector Load(Action<DetectorOptions>? configure = null, ILogger? logger = null)
    {
        var options = new DetectorOptions { ModelPath = ModelPath, ExecutionProvider = ExecutionProviderPreference.Cpu, IntraOpThreads = 2 };
        configure?.Invoke(options);
        return CellDetectorFactory.Open(options, logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
    }
}

/// <summary>A fact that needs models/cellnet.onnx (merged from the model branch); reported as skipped, with the reason,
/// until it is there, except under CI (CI=true), where it runs and fails.</summary>
public sealed class RequiresModelFactAttribute : FactAttribute
{
    public RequiresModelFactAttribute()
    {
        if (!RealModel.ModelPresent && RealModel.MaySkip) Skip = $"model not found: {RealModel.ModelPath} (+ .labels.json); merge the model branch";
    }
}

/// <summary>A theory that needs models/cellnet.onnx; like <see cref="RequiresModelFactAttribute"/>.</summary>
public sealed class RequiresModelTheoryAttribute : TheoryAttribute
{
    public RequiresModelTheoryAttribute()
    {
        if (!RealModel.ModelPresent && RealModel.MaySkip) Skip = $"model not found: {RealModel.ModelPath} (+ .labels.json); merge the model branch";
    }
}

/// <summary>A fact that needs the model and tests/fixtures/parity/{input.png, reference.json}.</summary>
public sealed class RequiresParityFixtureFactAttribute : FactAttribute
{
    public RequiresParityFixtureFactAttribute()
    {
        if (!RealModel.ParityPresent && RealModel.MaySkip) Skip = $"model or parity fixture not found under {RealModel.RepositoryRoot}; merge the model branch";
    }
}

/// <summary>A theory over the shipped graph variants (its data names them); like <see cref="RequiresParityFixtureFactAttribute"/>.</summary>
public sealed class RequiresParityFixtureTheoryAttribute : TheoryAttribute
{
    public RequiresParityFixtureTheoryAttribute()
    {
        if (!RealModel.ParityPresent && RealModel.MaySkip) Skip = $"model or parity fixture not found under {RealModel.RepositoryRoot}; merge the model branch";
    }
}

/// <summary>Collects log lines so tests can check what the detector says about its execution provider.</summary>
internal sealed class ListLogger : ILogger
{
    public List<(LogLevel Level, string Message)> Lines { get; } = new();

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (Lines) Lines.Add((logLevel, formatter(state, exception)));
    }
}
