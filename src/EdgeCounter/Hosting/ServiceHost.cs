using EdgeCounter.Acquisition;
using EdgeCounter.Counting;
using EdgeCounter.Detection;
using EdgeCounter.Fields;
using EdgeCounter.Lis;
using EdgeCounter.Publishing;
using EdgeCounter.Simulation;
using EdgeCounter.Storage;
using Microsoft.Extensions.Options;

namespace EdgeCounter.Hosting;

/// <summary>Composes the service: configuration, options, stages and hosted workers. Holds no logic.</summary>
public static class ServiceHost
{
    /// <summary>Exit code for a configuration the service cannot start with (systemd does not restart on it).</summary>
    public const int ConfigurationError = 2;

    public static async Task<int> RunAsync(string[] args)
    {
        IHost host;
        try
        {
            host = Build(args);
        }
        catch (ConfigurationProblemException e)
        {
            Console.Error.WriteLine("EdgeCounter cannot start: invalid configuration");
            foreach (var problem in e.Problems) Console.Error.WriteLine($"  - {problem}");
            return ConfigurationError;
        }
        using (host)
        {
            await host.RunAsync();
        }
        return 0;
    }

    private static string SoftwareVersion =>
        typeof(ServiceHost).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion.Split('+')[0] ?? "0";

    /// <summary>Builds the host; throws <see cref="ConfigurationProblemException"/> naming every bad setting.</summary>
    /// <param name="replace">Runs after the service's own registrations, so a caller (simcheck, tests) can replace one, e.g. the frame source.</param>
    public static IHost Build(string[] args, Action<HostApplicationBuilder>? customise = null, Action<IServiceCollection>? replace = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            Args = args,
            // appsettings.json is copied beside the binary: find it there whatever the working directory.
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss ";
        });
        builder.Services.AddSystemd();
        builder.Services.AddWindowsService(o => o.ServiceName = "EdgeCounter");
        customise?.Invoke(builder);

        var settings = BindAndValidate(builder.Configuration);
        if (StateDirectoryProblem(settings.EffectiveStateDirectory) is { } stateProblem) throw new ConfigurationProblemException([stateProblem]);
        var services = builder.Services;
        services.AddSingleton(Options.Create(settings));
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton(sp => new StorageMonitor(settings.EffectiveStateDirectory, settings.StateDiskReserveBytes,
            sp.GetRequiredService<ILogger<StorageMonitor>>(), sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<PipelineMonitor>();
        services.AddSingleton(_ => new LatestFieldBuffer(capacity: 1));
        services.AddSingleton<IFrameSource>(sp => CreateSource(settings.Source, sp));
        services.AddSingleton<ICellDetector>(sp => CreateDetector(settings, sp));
        services.AddSingleton(sp =>
        {
            var model = sp.GetRequiredService<ICellDetector>().Model;
            CountingCatalog catalog;
            try { catalog = CountingCatalog.FromModel(model, settings.Counting.ExtraGroups, settings.Counting.Mode); }
            catch (ArgumentException e) // groups or a mode that this model's labels cannot fill
            {
                throw new ConfigurationProblemException([$"EdgeCounter:Counting (model {model.Name} {model.Version}): {e.Message}"]);
            }
            var store = new SessionStore(settings.EffectiveStateDirectory, settings.Counting.StateFileName);
            var logger = sp.GetRequiredService<ILogger<CountingService>>();
            if (catalog.Marrow is { NotMeasured.Count: > 0 } marrow)
                logger.LogWarning("Marrow differential: model {Model} {Version} has no label for {Categories}; they are reported as not measured (null), not as 0",
                    model.Name, model.Version, string.Join(", ", marrow.NotMeasured));
            return new CountingService(catalog, settings.Counting, store, sp.GetRequiredService<TimeProvider>(), logger, sp.GetRequiredService<StorageMonitor>());
        });
        services.AddSingleton(sp =>
        {
            var publisher = MqttPublisher.Create(settings.Mqtt, settings.EffectiveStateDirectory, sp.GetRequiredService<ILoggerFactory>(),
                sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<StorageMonitor>());
            if (settings.Mqtt.Discovery)
            {
                var model = sp.GetRequiredService<ICellDetector>().Model;
                publisher.Announcements = HomeAssistantDiscovery.Messages(settings.Mqtt.DiscoveryPrefix, publisher.Topics, settings.EffectiveDeviceId,
                    sp.GetRequiredService<CountingService>().Catalog, $"{model.Name} {model.Version}", SoftwareVersion);
                publisher.AnnounceAgainTopic = settings.Mqtt.DiscoveryPrefix + "/status";
            }
            return publisher;
        });
        if (settings.Mqtt.Mode == MqttMode.Embedded)
        {
            // MQTT over WebSockets at /mqtt of the web endpoints, for browser dashboards. Beyond loopback (Web:Urls on
            // another address needs Web:Token) a browser on another machine must give the token as its MQTT password.
            if (settings.Web.Enabled) services.AddSingleton<MQTTnet.AspNetCore.MqttWebSocketServerAdapter>();
            services.AddSingleton(sp => new EmbeddedBroker(settings.Mqtt.Port, sp.GetRequiredService<ILogger<EmbeddedBroker>>(),
                sp.GetService<MQTTnet.AspNetCore.MqttWebSocketServerAdapter>() is { } webSockets ? [webSockets] : null,
                remotePassword: settings.Web.Token));
        }
        // The lab's systems, each with its own durable queue: HL7 v2 over MLLP, FHIR over HTTP (docs/lis.md).
        if (settings.Report.Hl7.Enabled)
            services.AddSingleton<ReportDelivery>(sp => new Hl7Delivery(settings.Report.Hl7, settings.EffectiveDeviceId, settings.EffectiveStateDirectory,
                sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILoggerFactory>(), sp.GetRequiredService<StorageMonitor>()));
        if (settings.Report.Fhir.Enabled)
            services.AddSingleton<ReportDelivery>(sp => new FhirDelivery(settings.Report.Fhir, settings.EffectiveStateDirectory,
                sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILoggerFactory>(), sp.GetRequiredService<StorageMonitor>()));
        services.AddSingleton(sp =>
        {
            var model = sp.GetRequiredService<ICellDetector>().Model;
            var reports = new ReportPublisher(sp.GetRequiredService<MqttPublisher>(), new ModelPayload(model.Name, model.Version), settings.Report,
                settings.EffectiveStateDirectory, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<ReportPublisher>>(),
                sp.GetServices<ReportDelivery>());
            return new SessionCommandHandler(sp.GetRequiredService<CountingService>(), sp.GetRequiredService<MqttPublisher>(),
                sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<SessionCommandHandler>>(), reports);
        });
        services.AddSingleton(sp =>
        {
            var detector = sp.GetRequiredService<ICellDetector>();
            return new FieldPublisher(sp.GetRequiredService<MqttPublisher>(), settings.Mqtt, detector.Model, detector.ExecutionProvider,
                sp.GetRequiredService<ILogger<FieldPublisher>>(), new SlideMapStore(settings.EffectiveStateDirectory));
        });
        services.AddSingleton(sp => new CellCropStore(settings.EffectiveStateDirectory, settings.Report.CellCrops, sp.GetRequiredService<StorageMonitor>(),
            sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<CellCropStore>>()));
        // One field path: the processor counts; publishing and the review gallery's crops are its sinks.
        services.AddSingleton(sp => new FieldProcessor(sp.GetRequiredService<ICellDetector>(), sp.GetRequiredService<CountingService>(), settings.Fields,
            settings.Mqtt.EffectiveTopicPrefix + "/session/set", [sp.GetRequiredService<FieldPublisher>(), sp.GetRequiredService<CellCropStore>()],
            sp.GetRequiredService<ILogger<FieldProcessor>>()));
        services.AddSingleton<CountingWorker>();

        // Order matters: publishing first (so results have somewhere to go), then detection, then capture;
        // the host stops them in reverse, so capture stops first and the last results are still sent.
        services.AddHostedService<PublishingService>();
        services.AddHostedService(sp => sp.GetRequiredService<CountingWorker>());
        services.AddHostedService<CaptureWorker>();
        services.AddHostedService<WatchdogService>();
        services.AddHostedService<MemoryTrimService>();
        if (settings.Report.Hl7.Enabled || settings.Report.Fhir.Enabled) services.AddHostedService<LisDeliveryService>();
        if (settings.Web.Enabled)
        {
            services.AddSingleton<Web.WebEndpoints>();
            services.AddHostedService(sp => sp.GetRequiredService<Web.WebEndpoints>());
        }
        replace?.Invoke(services);

        var host = builder.Build();
        // Load the model now: a missing or unfit model must stop the start with a clear message, not fail later.
        try
        {
            var detector = host.Services.GetRequiredService<ICellDetector>();
            var monitor = host.Services.GetRequiredService<PipelineMonitor>();
            monitor.ExecutionProvider = detector.ExecutionProvider;
            monitor.Detector = detector;
            host.Services.GetRequiredService<CountingService>();
        }
        catch (ModelLoadException e)
        {
            host.Dispose();
            throw new ConfigurationProblemException([$"EdgeCounter:Detector:ModelPath: {e.Message}"]);
        }
        catch (ConfigurationProblemException)
        {
            host.Dispose();
            throw;
        }
        return host;
    }

    /// <summary>Checked once at start: the state directory exists (or can be made) and takes a new file. A read-only
    /// or forbidden directory is a start error naming it; a full disk is not (the service degrades and goes on).</summary>
    private static string? StateDirectoryProblem(string directory)
    {
        var probe = Path.Combine(directory, $".write-probe-{Environment.ProcessId}");
        try
        {
            Directory.CreateDirectory(directory);
            using (File.Create(probe, 1, FileOptions.DeleteOnClose)) { }
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            if (StorageMonitor.IsOutOfSpace(e)) return null;
            return $"EdgeCounter:StateDirectory: '{directory}' cannot be written ({e.Message}); the session and the MQTT outbox are kept there. " +
                "Make it writable for the service's user or set EdgeCounter:StateDirectory to a writable directory";
        }
    }

    /// <summary>Top-level names of the settings, to catch them given without the section: values (DeviceId, ...) and
    /// sections (Detector, Mqtt, ...).</summary>
    private static readonly HashSet<string> ScalarOptionNames = OptionNames(section: false);
    private static readonly HashSet<string> SectionOptionNames = OptionNames(section: true);

    private static HashSet<string> OptionNames(bool section) => typeof(EdgeCounterOptions).GetProperties()
        .Where(p => p.CanWrite && (p.PropertyType.IsClass && p.PropertyType != typeof(string)) == section)
        .Select(p => p.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);

    public static EdgeCounterOptions BindAndValidate(IConfiguration configuration)
    {
        var settings = new EdgeCounterOptions();
        try
        {
            // Unknown keys are errors: a misspelt setting must not be silently ignored.
            configuration.GetSection(EdgeCounterOptions.SectionName).Bind(settings, o => o.ErrorOnUnknownConfiguration = true);
        }
        catch (InvalidOperationException e)
        {
            throw new ConfigurationProblemException([e.InnerException is { } inner ? $"{e.Message} ({inner.Message})" : e.Message]);
        }
        // A setting given without the section prefix (--Detector:ModelPath=..., Detector__ModelPath=...) would be
        // silently ignored: .NET binds only what sits under EdgeCounter. Name it, with the spelling that works.
        // Sections count only with something inside (an unrelated SOURCE variable is not ours).
        var misplaced = configuration.GetChildren()
            .SelectMany(c => ScalarOptionNames.Contains(c.Key) && c.Value is not null ? [c.Path]
                : SectionOptionNames.Contains(c.Key) ? c.AsEnumerable(makePathsRelative: false).Where(kv => kv.Value is not null && kv.Key.Contains(':')).Select(kv => kv.Key)
                : [])
            .Order(StringComparer.OrdinalIgnoreCase)
            .Select(key => $"{key} is outside the {EdgeCounterOptions.SectionName} section and would be ignored: write {EdgeCounterOptions.SectionName}:{key} " +
                           $"(--{EdgeCounterOptions.SectionName}:{key}=... on the command line, {EdgeCounterOptions.SectionName}__{key.Replace(":", "__")}=... in the environment)")
            .ToList();
        if (misplaced.Count > 0) throw new ConfigurationProblemException(misplaced);

        // One device id names the microscope everywhere. Mqtt:DeviceId is accepted as a synonym (it is documented
        // with the MQTT options), but two different ids would split topics from logs and session files.
        var earlyProblems = new List<string>();
        var mqttDeviceId = configuration[$"{EdgeCounterOptions.SectionName}:Mqtt:DeviceId"];
        if (!string.IsNullOrWhiteSpace(mqttDeviceId))
        {
            if (string.IsNullOrWhiteSpace(settings.DeviceId)) settings.DeviceId = mqttDeviceId;
            else if (!string.Equals(settings.DeviceId, mqttDeviceId, StringComparison.Ordinal))
                earlyProblems.Add($"EdgeCounter:Mqtt:DeviceId ('{mqttDeviceId}') differs from EdgeCounter:DeviceId ('{settings.DeviceId}'): set only EdgeCounter:DeviceId");
        }
        settings.Mqtt.DeviceId = settings.EffectiveDeviceId;
        if (string.IsNullOrWhiteSpace(settings.Detector.ModelPath) || settings.Detector.ModelPath == new DetectorOptions().ModelPath)
            settings.Detector.ModelPath = ModelLocator.FindDefaultModel();
        else
            settings.Detector.ModelPath = ModelLocator.Resolve(settings.Detector.ModelPath);
        if (settings.Source.MicrometresPerPixel > 0 && settings.Detector.CameraMicrometresPerPixel is null)
            settings.Detector.CameraMicrometresPerPixel = settings.Source.MicrometresPerPixel;
        if (settings.Source.Kind == SourceKind.Simulated && settings.Detector.CameraMicrometresPerPixel is null)
            settings.Detector.CameraMicrometresPerPixel = settings.Source.Simulator.MicrometresPerPixel;

        // A marrow differential counts erythroblasts and immature granulocytes: the subtype stage names them there.
        settings.Detector.NamePrecursors ??= settings.Counting.Mode == CountingMode.Marrow;
        var problems = earlyProblems.Concat(settings.Validate()).ToList();
        if (!File.Exists(settings.Detector.ModelPath))
            problems.Add($"EdgeCounter:Detector:ModelPath: model file '{settings.Detector.ModelPath}' does not exist");
        if (problems.Count > 0) throw new ConfigurationProblemException(problems);
        return settings;
    }

    private static IFrameSource CreateSource(SourceOptions source, IServiceProvider sp) => source.Kind switch
    {
        SourceKind.Camera => new CameraFrameSource(source, sp.GetRequiredService<ILogger<CameraFrameSource>>()),
        SourceKind.Video => new VideoFileFrameSource(source, sp.GetRequiredService<ILogger<VideoFileFrameSource>>()),
        SourceKind.Folder => new FolderFrameSource(source, sp.GetRequiredService<ILogger<FolderFrameSource>>()),
        _ => new SimulatedFrameSource(source, sp.GetRequiredService<ILogger<SimulatedFrameSource>>()),
    };

    /// <summary>The detector; with automatic pixel-scale calibration when it is on and no scale is configured.</summary>
    private static ICellDetector CreateDetector(EdgeCounterOptions settings, IServiceProvider sp) =>
        CellDetectorFactory.Create(settings.Detector, sp.GetRequiredService<ILoggerFactory>(),
            settings.Detector.AutoScale && !settings.Detector.HasConfiguredScale ? AutoScaleMode.WhenPossible : AutoScaleMode.Off);
}

/// <summary>The configuration cannot be used; each problem names its key.</summary>
public sealed class ConfigurationProblemException(IReadOnlyList<string> problems)
    : Exception("Invalid configuration: " + string.Join("; ", problems))
{
    public IReadOnlyList<string> Problems { get; } = problems;
}
