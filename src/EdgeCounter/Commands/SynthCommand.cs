namespace EdgeCounter.Commands;

public static class SynthCommand
{
    public const string Usage = "synth: not built yet";

    public static Task<int> RunAsync(CommandLine args, CancellationToken cancellationToken)
    {
        Console.Error.WriteLine(Usage);
        return Task.FromResult(2);
    }
}
