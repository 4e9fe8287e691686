namespace EdgeCounter.Hosting;

/// <summary>Composes the service: configuration, options, stages and hosted workers. Holds no logic.</summary>
public static class ServiceHost
{
    public static Task<int> RunAsync(string[] args)
    {
        Console.Error.WriteLine("service: not built yet");
        return Task.FromResult(2);
    }
}
