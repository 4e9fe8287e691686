using OpenCvSharp;

namespace EdgeCounter.Hosting;

/// <summary>
/// OpenCV's native half (OpenCvSharpExtern) ships per platform, in a separate package and with system libraries
/// of its own (GTK on Linux). Without it the first frame fails deep inside capture, so it is probed once at start
/// and the error says what to install.
/// </summary>
public static class NativeRuntimes
{
    /// <summary>Null when OpenCV's native library loads; otherwise what is wrong and how to fix it.</summary>
    public static string? OpenCvProblem()
    {
        try
        {
            _ = Cv2.GetVersionString();
            return null;
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or BadImageFormatException or EntryPointNotFoundException)
        {
            var cause = e is TypeInitializationException { InnerException: { } inner } ? inner.Message : e.Message;
            var fix = OperatingSystem.IsWindows()
                ? "publish with `-r win-x64` so that OpenCvSharp4.runtime.win's OpenCvSharpExtern.dll is beside EdgeCounter.exe"
                : "check that runtimes/linux-x64/native/libOpenCvSharpExtern.so is beside the binary and install its system libraries (Debian/Ubuntu: `apt-get install -y libgtk-3-0`)";
            return $"OpenCV's native library could not be loaded ({cause}): {fix}.";
        }
    }
}
