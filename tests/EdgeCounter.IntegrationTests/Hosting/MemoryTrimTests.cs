using System.Runtime.InteropServices;
using EdgeCounter.Hosting;
using Microsoft.Extensions.Configuration;

namespace EdgeCounter.IntegrationTests.Hosting;

public class MemoryTrimTests
{
    private static double AnonymousResidentMb() =>
        double.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith("RssAnon:")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024;

    [Fact]
    public void Trimming_hands_freed_native_memory_back_to_the_system()
    {
        // 48 MB in small blocks (below the mmap threshold, so they live in malloc's heap), all freed but the last,
        // which pins the heap's top: glibc keeps those free pages resident until they are trimmed.
        const int blocks = 48 * 1024 * 4, size = 256;
        var pointers = new nint[blocks];
        var ones = Enumerable.Repeat((byte)1, size).ToArray();
        for (var i = 0; i < blocks; i++)
        {
            pointers[i] = Marshal.AllocHGlobal(size);
            Marshal.Copy(ones, 0, pointers[i], size); // touched, so resident
        }
        for (var i = 0; i < blocks - 1; i++) Marshal.FreeHGlobal(pointers[i]);
        var held = AnonymousResidentMb();

        EdgeCounter.Hosting.NativeMemory.Trim();

        var trimmed = AnonymousResidentMb();
        Marshal.FreeHGlobal(pointers[^1]);
        Assert.True(held - trimmed > 30, $"resident anonymous memory {held:F1} MB before the trim, {trimmed:F1} MB after");
    }

    [Theory]
    [InlineData("00:00:05")]
    [InlineData("-00:01:00")]
    public void A_trim_interval_that_is_neither_off_nor_at_least_ten_seconds_is_refused(string interval)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["EdgeCounter:MemoryTrimInterval"] = interval }).Build();
        var e = Assert.Throws<ConfigurationProblemException>(() => ServiceHost.BindAndValidate(configuration));
        Assert.Contains(e.Problems, p => p.StartsWith("EdgeCounter:MemoryTrimInterval must be 0 (off) or at least 10 seconds"));
    }
}
