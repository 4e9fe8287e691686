using System.Diagnostics;
using System.Runtime.InteropServices;

namespace EdgeCounter.IntegrationTests.Reliability;

/// <summary>A real small filesystem for storage faults: a tmpfs mounted on a temp directory (needs root on Linux),
/// unmounted and removed on dispose.</summary>
internal sealed class TmpfsMount : IDisposable
{
    private static readonly Lazy<string?> Unavailable = new(Probe);

    private TmpfsMount(string path) => Path = path;

    public string Path { get; }

    /// <summary>Why a tmpfs cannot be mounted here (not Linux, not root, mount refused); null when it can.</summary>
    public static string? WhyUnavailable => Unavailable.Value;

    public static TmpfsMount Create(string size, bool readOnly = false)
    {
        var path = Directory.CreateTempSubdirectory("edgecounter-tmpfs-").FullName;
        var (code, error) = Run("mount", "-t", "tmpfs", "-o", (readOnly ? "ro," : "") + "size=" + size, "tmpfs", path);
        if (code != 0)
        {
            Directory.Delete(path);
            throw new InvalidOperationException($"mount -t tmpfs failed ({code}): {error}");
        }
        return new TmpfsMount(path);
    }

    public long FreeBytes => new DriveInfo(Path).AvailableFreeSpace;

    /// <summary>Writes <paramref name="file"/> until the filesystem is full (to the last page).</summary>
    public void Fill(string file)
    {
        using var stream = new FileStream(file, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0);
        foreach (var chunk in new[] { 64 * 1024, 4096, 512 })
        {
            var bytes = new byte[chunk];
            try
            {
                while (true) stream.Write(bytes);
            }
            catch (IOException)
            {
                // Full for this chunk size: go on with a smaller one.
            }
        }
    }

    public void Dispose()
    {
        // The service may still be closing its files: retry, then detach lazily rather than leave a mount behind.
        for (var attempt = 0; attempt < 20 && Run("umount", Path).Code != 0; attempt++) Thread.Sleep(250);
        if (IsMounted()) Run("umount", "-l", Path);
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }

    private bool IsMounted() => File.ReadAllLines("/proc/mounts").Any(line => line.Split(' ') is [_, var point, ..] && point == Path);

    private static string? Probe()
    {
        if (!OperatingSystem.IsLinux()) return "tmpfs mounts need Linux";
        if (geteuid() != 0) return "mounting a tmpfs needs root (run the tests as root, as CI does)";
        try
        {
            using var probe = Create("64k");
            return null;
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            return $"cannot mount a tmpfs here: {e.Message}";
        }
    }

    private static (int Code, string Error) Run(string file, params string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        var error = process.StandardError.ReadToEnd();
        process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, error.Trim());
    }

    [DllImport("libc")]
    private static extern uint geteuid();
}

/// <summary>A fact that needs a tmpfs of its own (root on Linux); skipped, with the reason, where none can be mounted.</summary>
public sealed class RequiresTmpfsFactAttribute : FactAttribute
{
    public RequiresTmpfsFactAttribute()
    {
        if (TmpfsMount.WhyUnavailable is { } reason) Skip = reason;
    }
}
