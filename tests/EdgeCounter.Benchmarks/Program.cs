// BenchmarkDotNet micro-benchmarks of the hot per-frame and per-field functions (docs/benchmarks.md).
//   dotnet run -c Release --project tests/EdgeCounter.Benchmarks -- --filter '*' --job short
BenchmarkDotNet.Running.BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);

public partial class Program {}
