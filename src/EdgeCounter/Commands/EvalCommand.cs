namespace EdgeCounter.Commands;

public static class EvalCommand
{
    public const string Usage = "eval: not built yet";

    public static Task<int> RunAsync(CommandLine args, CancellationToken cancellationToken)
    {
        Console.Error.WriteLine(Usage);
        return Task.FromResult(2);
    }
}
