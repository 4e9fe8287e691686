using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;

namespace EdgeCounter.Detection;

/// <summary>How every graph of the detector gets its ONNX Runtime session: one provider choice, one set of options.</summary>
public static class OnnxSessions
{
    /// <summary>An inference session on CUDA when it loads (and is allowed), else on CPU; and the provider's name.</summary>
    /// <exception cref="ModelLoadException">CUDA was required and did not load, or ONNX Runtime refuses the model.</exception>
    public static (InferenceSession Session, string Provider) Create(string modelPath, ExecutionProviderPreference preference, int threads, bool allowSpinning, bool cpuMemoryArena, ILogger logger)
    {
        // In Auto mode, look for the CUDA runtime first: without it ONNX Runtime prints a native error to stderr on
        // every start before failing, which on a CPU kiosk is noise, not news.
        var missingCuda = preference == ExecutionProviderPreference.Auto ? CudaRuntimeProbe.FirstMissingLibrary() : null;
        // Named by file: the detector and its subtype stage each open a session.
        var model = Path.GetFileName(modelPath);
        if (missingCuda is not null)
            logger.LogInformation("ONNX Runtime ({Model}): CUDA runtime not installed ({Library} not found); using CPU", model, missingCuda);
        else if (preference != ExecutionProviderPreference.Cpu)
        {
            SessionOptions? cudaOptions = null;
            try
            {
                cudaOptions = NewSessionOptions(threads, allowSpinning, cpuMemoryArena);
                cudaOptions.AppendExecutionProvider_CUDA(0);
                var session = new InferenceSession(modelPath, cudaOptions);
                logger.LogInformation("ONNX Runtime ({Model}): CUDA execution provider loaded", model);
                return (session, "CUDA");
            }
            // The GPU package throws OnnxRuntimeException when the CUDA libraries are absent; the CPU-only package has
            // no CUDA entry point at all (EntryPointNotFoundException).
            catch (Exception e) when (e is OnnxRuntimeException or EntryPointNotFoundException or DllNotFoundException)
            {
                if (preference == ExecutionProviderPreference.Cuda)
                    throw new ModelLoadException($"CUDA execution provider requested but it did not load: {e.Message}", e);
                logger.LogWarning("ONNX Runtime ({Model}): CUDA execution provider unavailable ({Reason}); using CPU", model, FirstLine(e.Message));
            }
            finally
            {
                cudaOptions?.Dispose();
            }
        }
        using var cpuOptions = NewSessionOptions(threads, allowSpinning, cpuMemoryArena);
        try
        {
            var session = new InferenceSession(modelPath, cpuOptions);
            logger.LogInformation("ONNX Runtime ({Model}): CPU execution provider in use", model);
            return (session, "CPU");
        }
        catch (OnnxRuntimeException e)
        {
            throw new ModelLoadException($"Model {modelPath} cannot be loaded by ONNX Runtime: {e.Message}", e);
        }
    }

    private static SessionOptions NewSessionOptions(int threads, bool allowSpinning, bool cpuMemoryArena)
    {
        var options = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            IntraOpNumThreads = threads,
            // One image at a time: inter-op parallelism would only add threads that compete with intra-op ones.
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            EnableCpuMemArena = cpuMemoryArena,
        };
        options.AddSessionConfigEntry("session.intra_op.allow_spinning", allowSpinning ? "1" : "0");
        return options;
    }

    private static string FirstLine(string s)
    {
        var n = s.IndexOf('\n');
        return n < 0 ? s : s[..n].TrimEnd();
    }

}
