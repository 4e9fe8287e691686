namespace EdgeCounter.Commands;

public static class CountCommand
{
    public const string Usage = "count: not built yet";

    public static Task<int> RunAsync(CommandLine args, CancellationToken cancellationToken)
    {
        Console.Error.WriteLine(Usage);
        return Task.FromResult(2);
    }
}
