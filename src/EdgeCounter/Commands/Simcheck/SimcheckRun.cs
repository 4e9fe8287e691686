using System.Net;
using System.Net.Sockets;
using EdgeCounter.Acquisition;
using EdgeCounter.Counting;
using EdgeCounter.Fields;
using EdgeCounter.Hosting;
using EdgeCounter.Simulation;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace EdgeCounter.Commands.Simcheck;

/// <summary>What to run: the simulated microscope's settings and how long.</summary>
/// <param name="MapPath">Where to write the slide map (JPEG) at the end, as the service publishes it on P/slide/image; null = none.</param>
public sealed record SimcheckSettings(double Overlap = 0.1, double Seconds = 120, int Seed = 1, string Profile = "blood", IReadOnlyList<string>? Overrides = null,
    string? MapPath = null);

/// <summary>
/// Runs the real service host in-process (capture, field stage, positioning, detection, counting, publishing to the
/// embedded broker) on the simulated microscope, in virtual time: the simulated camera renders its next frame only
/// once the worker has handled the last stable field, so no field is dropped and a run is reproducible. Then it
/// judges every counted detection by the simulator's truth (<see cref="SimcheckScorer"/>).
/// </summary>
public static class SimcheckRun
{
    public static async Task<SimcheckResult> RunAsync(SimcheckSettings s, CancellationToken cancellationToken, Action<string>? log = null)
    {
        var state = Directory.CreateTempSubdirectory("edgecounter-simcheck-").FullName;
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        string[] args =
        [
            "--EdgeCounter:DeviceId=simcheck",
            $"--EdgeCounter:StateDirectory={state}",
            "--EdgeCounter:Mqtt:Mode=Embedded",
            $"--EdgeCounter:Mqtt:Port={FreePort()}",
            "--EdgeCounter:Source:Kind=Simulated",
            "--EdgeCounter:Source:RealTime=false",
            $"--EdgeCounter:Source:Simulator:Seed={s.Seed}",
            $"--EdgeCounter:Source:Simulator:Profile={s.Profile}",
            $"--EdgeCounter:Source:Simulator:FieldOverlap={s.Overlap.ToString(inv)}",
            $"--EdgeCounter:Counting:DefaultTarget={Counting.CountingOptions.MaxTarget}",
            "--EdgeCounter:ConsoleFieldLines=false",
            "--EdgeCounter:Web:Enabled=false", // an offline run: no HTTP port taken
            .. s.Overrides ?? [],
        ];
        var scorer = new SimcheckScorer();
        using var map = new Publishing.SlideMap();
        long handled = 0;
        var signal = new SemaphoreSlim(0);
        try
        {
            GatedSource? gated = null;
            using var host = ServiceHost.Build(args,
                builder => builder.Logging.SetMinimumLevel(Environment.GetEnvironmentVariable("SIMCHECK_DEBUG") is null ? LogLevel.Warning : LogLevel.Information),
                services => services.Replace(ServiceDescriptor.Singleton<IFrameSource>(sp =>
                {
                    var settings = sp.GetRequiredService<IOptions<EdgeCounterOptions>>().Value;
                    var monitor = sp.GetRequiredService<PipelineMonitor>();
                    var inner = new SimulatedFrameSource(settings.Source, sp.GetRequiredService<ILogger<SimulatedFrameSource>>());
                    var frames = (long)Math.Ceiling(s.Seconds * settings.Source.Simulator.FramesPerSecond);
                    return gated = new GatedSource(inner, frames, async ct =>
                    {
                        // Virtual time: the next frame waits until every field taken so far has been handled.
                        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
                        while (monitor.FieldsTaken > Interlocked.Read(ref handled) + monitor.DroppedFields && DateTime.UtcNow < deadline)
                            await signal.WaitAsync(TimeSpan.FromMilliseconds(50), ct).ConfigureAwait(false);
                    });
                })));
            host.Services.GetRequiredService<CountingWorker>().FieldHandled += o =>
            {
                try
                {
                    if (gated is null) return;
                    var truth = gated.Inner.TruthOf(o.Field.FrameIndex);
                    if (o.Fate == FieldFate.Revisit) scorer.AddRevisit(truth, o.Placement);
                    else if (o.Fate == FieldFate.Counted && o.Detection is { } d)
                    {
                        scorer.AddField(truth, d.Detections, o.Marks, o.Placement);
                        if (s.MapPath is not null) map.Add(o.Field.Image, o.Placement, d.Detections, o.Marks);
                    }
                }
                finally
                {
                    Interlocked.Increment(ref handled);
                    signal.Release();
                }
            };
            var monitorRef = host.Services.GetRequiredService<PipelineMonitor>();
            await host.StartAsync(cancellationToken);
            var started = DateTime.UtcNow;
            while (!(gated?.Ended ?? false) || monitorRef.FieldsTaken > Interlocked.Read(ref handled) + monitorRef.DroppedFields)
            {
                await Task.Delay(100, cancellationToken);
                if (DateTime.UtcNow - started > TimeSpan.FromSeconds(2 * s.Seconds + 600)) throw new TimeoutException("simcheck: the pipeline stopped making progress");
            }
            var microscope = gated!.Inner.Microscope!;
            var distinct = microscope.CountableCellTypes(gated.FramesRead - 1).Values
                .GroupBy(SimcheckScorer.GroupOf).ToDictionary(g => g.Key, g => g.Count());
            await host.StopAsync(CancellationToken.None);
            log?.Invoke($"{gated.FramesRead} frames, {monitorRef.FieldsTaken} fields taken");
            if (s.MapPath is not null) await File.WriteAllBytesAsync(s.MapPath, map.RenderJpeg(), CancellationToken.None);
            return scorer.Result(distinct);
        }
        finally
        {
            try { Directory.Delete(state, true); } catch (IOException) { }
        }
    }

    /// <summary>The simulated source, ending after a number of frames and pacing itself by a gate (virtual time).</summary>
    private sealed class GatedSource(SimulatedFrameSource inner, long frames, Func<CancellationToken, Task> gate) : IFrameSource
    {
        public SimulatedFrameSource Inner => inner;
        public long FramesRead { get; private set; }
        public bool Ended { get; private set; }
        public string Description => inner.Description + ", virtual time";
        public Task OpenAsync(CancellationToken cancellationToken) => inner.OpenAsync(cancellationToken);

        public async ValueTask<Frame?> ReadAsync(CancellationToken cancellationToken)
        {
            await gate(cancellationToken).ConfigureAwait(false);
            if (FramesRead >= frames) { Ended = true; return null; }
            FramesRead++;
            return await inner.ReadAsync(cancellationToken).ConfigureAwait(false);
        }

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try { return ((IPEndPoint)listener.LocalEndpoint).Port; }
        finally { listener.Stop(); }
    }
}
