using System.Runtime.InteropServices;

namespace EdgeCounter.Hosting;

/// <summary>
/// glibc gives each thread that allocates natively (ONNX Runtime, OpenCV, SQLite, the thread pool) its own malloc arena,
/// up to 8 per core, and memory freed in one arena is not reused by another. With a field's buffers allocated and freed
/// on different threads, a long run's RSS then creeps up without any leak (measured: +50 MB in 30 min). Two arenas
/// keep it flat (measured flat at ~240 MB with MALLOC_ARENA_MAX=2, which the systemd unit sets). Set here as well for
/// runs started by hand; the runtime's own threads already have arenas by then, so this helps but less than the
/// environment variable does (docs/reliability.md).
/// </summary>
internal static class NativeMemory
{
    private const int M_ARENA_MAX = -8;

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int MallOpt(int parameter, int value);

    public static void LimitMallocArenas(int arenas = 2)
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("MALLOC_ARENA_MAX") is not null) return;
        try
        {
            MallOpt(M_ARENA_MAX, arenas);
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            // Not glibc (e.g. musl): nothing to tune.
        }
    }
}
