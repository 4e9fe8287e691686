using System.Runtime.CompilerServices;

namespace EdgeCounter.IntegrationTests;

internal static class TestEnvironment
{
    /// <summary>Every service these tests start (in this process or as a child process) serves its web endpoints on a
    /// free port, not the default 8080 that parallel tests would fight over. A test that needs its own URL passes
    /// --EdgeCounter:Web:Urls, which wins over the environment.</summary>
    [ModuleInitializer]
    internal static void WebOnAFreePort() => Environment.SetEnvironmentVariable("EdgeCounter__Web__Urls", "http://127.0.0.1:0");
}

/// <summary>Polls a condition the code under test makes true in the background (a queue drained, a message taken).</summary>
internal static class Eventually
{
    public static async Task UntilAsync(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"not within {timeout ?? TimeSpan.FromSeconds(30)}: {what}");
            await Task.Delay(20);
        }
    }
}
