using System.Runtime.InteropServices;

namespace EdgeCounter.Detection;

/// <summary>Finds whether the CUDA 13 libraries that ONNX Runtime's CUDA execution provider (1.31) links against can be loaded.</summary>
public static class CudaRuntimeProbe
{
    private static readonly string[] Linux = ["libcudart.so.13", "libcublasLt.so.13", "libcublas.so.13", "libcudnn.so.9"];
    private static readonly string[] Windows = ["cudart64_13.dll", "cublasLt64_13.dll", "cublas64_13.dll", "cudnn64_9.dll"];

    /// <summary>The first library that cannot be loaded, or null when all can (CUDA may still fail later, e.g. no GPU).</summary>
    public static string? FirstMissingLibrary()
    {
        var libraries = OperatingSystem.IsWindows() ? Windows : OperatingSystem.IsLinux() ? Linux : null;
        if (libraries is null) return "CUDA (unsupported OS)";
        foreach (var library in libraries)
        {
            if (!NativeLibrary.TryLoad(library, out var handle)) return library;
            NativeLibrary.Free(handle);
        }
        return null;
    }
}
