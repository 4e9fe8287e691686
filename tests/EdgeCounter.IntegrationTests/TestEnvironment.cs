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
