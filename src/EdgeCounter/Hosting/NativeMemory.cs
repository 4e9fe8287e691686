using System.Runtime.InteropServices;

namespace EdgeCounter.Hosting;

/// <summary>
/// glibc gives each thread that allocates natively (ONNX Runtime, OpenCV, SQLite, the thread pool) its own malloc arena,
/// up to 8 per core, and memory freed in one arena is not reused by another. With a field's buffers allocated and freed
/// on different threads, a long run's RSS then creeps up without any leak (measured: +50 MB in 30 min). Two arenas
/// keep it flat (measured flat at ~240 MB with MALLOC_ARENA_MAX=2, which the systemd unit sets). Set here as well for
/// runs started by hand; the runtime's own threads already have arenas by then, so this helps but less than the
/// environment variable does (docs/reliability.md).
/// Blocks of 128 KiB and more (a frame's Mats, JPEG buffers, ONNX Runtime's tensors) are mapped and unmapped on their
/// own: by default glibc raises that threshold after the first such block is freed and then carves them from the heap,
/// where a long run fragments it (MALLOC_MMAP_THRESHOLD_ does the same from the environment).
/// </summary>
public static class NativeMemory
{
    private const int M_ARENA_MAX = -8;
    private const int M_MMAP_THRESHOLD = -3;
    private const int MmapThresholdBytes = 128 * 1024;

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int MallOpt(int parameter, int value);

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);

    public static void LimitMallocArenas(int arenas = 2)
    {
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            if (Environment.GetEnvironmentVariable("MALLOC_ARENA_MAX") is null) MallOpt(M_ARENA_MAX, arenas);
            if (Environment.GetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_") is null) MallOpt(M_MMAP_THRESHOLD, MmapThresholdBytes);
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            // Not glibc (e.g. musl): nothing to tune.
        }
    }

    /// <summary>
    /// Hands memory that is free but still held back to the system: a blocking, compacting collection that also
    /// decommits the GC's free regions (the GC otherwise keeps what a busy minute made it commit), then glibc's
    /// malloc_trim, which returns the free pages inside every arena (glibc only trims the top of the main heap by itself).
    /// Frees nothing that is in use, so a run's resident memory follows what it holds, not what it once held.
    /// </summary>
    public static void Trim()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        if (!OperatingSystem.IsLinux()) return;
        try { MallocTrim(0); }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            // Not glibc: its allocator returns memory its own way.
        }
    }
}
