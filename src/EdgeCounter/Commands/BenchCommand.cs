namespace EdgeCounter.Commands;

public static class BenchCommand
{
    public const string Usage = "bench: not built yet";

    public static Task<int> RunAsync(CommandLine args, CancellationToken cancellationToken)
    {
        Console.Error.WriteLine(Usage);
        return Task.FromResult(2);
    }
}
