using System.Collections.Concurrent;
using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using EdgeCounter.Counting;
using EdgeCounter.Detection;
using EdgeCounter.Fields;
using EdgeCounter.Publishing;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using OpenCvSharp;

namespace EdgeCounter.IntegrationTests.Publishing;

internal static class FreePort
{
    public static int Next()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try { return ((IPEndPoint)listener.LocalEndpoint).Port; }
        finally { listener.Stop(); }
    }
}

/// <summary>A message as a subscriber saw it.</summary>
internal sealed record Received(string Topic, byte[] Payload, bool Retain, MqttQualityOfServiceLevel QoS)
{
    public string Text => System.Text.Encoding.UTF8.GetString(Payload);
}

/// <summary>A real MQTT client that records everything it receives.</summary>
internal sealed class RecordingSubscriber : IAsyncDisposable
{
    private readonly IMqttClient _client = new MqttClientFactory().CreateMqttClient();
    private readonly MqttClientOptions _options;
    private readonly ConcurrentQueue<Received> _messages = new();
    private readonly SemaphoreSlim _arrived = new(0);

    private RecordingSubscriber(int port, string clientId, bool cleanSession, Action<MqttClientOptionsBuilder>? configure)
    {
        var builder = new MqttClientOptionsBuilder()
            .WithTcpServer("127.0.0.1", port)
            .WithClientId(clientId)
            .WithProtocolVersion(MqttProtocolVersion.V311)
            .WithCleanSession(cleanSession)
            .WithTimeout(TimeSpan.FromSeconds(5));
        configure?.Invoke(builder);
        _options = builder.Build();
        _client.ApplicationMessageReceivedAsync += e =>
        {
            var m = e.ApplicationMessage;
            _messages.Enqueue(new Received(m.Topic, m.Payload.ToArray(), m.Retain, m.QualityOfServiceLevel));
            _arrived.Release();
            return Task.CompletedTask;
        };
    }

    public IMqttClient Client => _client;

    public IReadOnlyList<Received> Messages => _messages.ToArray();

    public static async Task<RecordingSubscriber> ConnectAsync(int port, string topicFilter, string? clientId = null, bool cleanSession = true,
        Action<MqttClientOptionsBuilder>? configure = null)
    {
        var subscriber = new RecordingSubscriber(port, clientId ?? "test-sub-" + Guid.NewGuid().ToString("N")[..8], cleanSession, configure);
        await subscriber._client.ConnectAsync(subscriber._options);
        await subscriber._client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter(f => f.WithTopic(topicFilter).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)).Build());
        return subscriber;
    }

    /// <summary>Connects again with the same client id and session flag (a persistent session keeps its subscription).</summary>
    public async Task ReconnectAsync()
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            try
            {
                await _client.ConnectAsync(_options);
                return;
            }
            catch (Exception) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }
    }

    public async Task PublishAsync(string topic, byte[] payload)
    {
        await _client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload)
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
    }

    public async Task<Received> WaitForAsync(Func<Received, bool> match, TimeSpan? timeout = null, string? what = null)
    {
        var all = await WaitForCountAsync(match, 1, timeout, what);
        return all[^1];
    }

    /// <summary>Waits until at least <paramref name="count"/> messages match; returns all matching, in arrival order.</summary>
    public async Task<IReadOnlyList<Received>> WaitForCountAsync(Func<Received, bool> match, int count, TimeSpan? timeout = null, string? what = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (true)
        {
            var matching = _messages.Where(match).ToArray();
            if (matching.Length >= count) return matching;
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
                throw new TimeoutException($"Waited for {count} x {what ?? "message"}, got {matching.Length}. Seen topics: " +
                    string.Join(", ", _messages.GroupBy(m => m.Topic).Select(g => $"{g.Key} x{g.Count()}")));
            await _arrived.WaitAsync(left < TimeSpan.FromMilliseconds(200) ? left : TimeSpan.FromMilliseconds(200));
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_client.IsConnected)
        {
            try { await _client.DisconnectAsync(new MqttClientDisconnectOptions()); }
            catch (Exception) { }
        }
        _client.Dispose();
    }
}

/// <summary>Debian's mosquitto, run by the test with its own config in a temp dir, stopped by PID (SIGTERM: it saves its persistence file).</summary>
internal sealed class MosquittoBroker : IAsyncDisposable
{
    public const string Executable = "/usr/sbin/mosquitto";
    private Process? _process;

    private MosquittoBroker(string directory, int port, MosquittoSecurity? security, string extraConfig)
    {
        Directory = directory;
        Port = port;
        ConfigPath = Path.Combine(directory, "mosquitto.conf");
        var persistence = Path.Combine(directory, "data") + "/";
        System.IO.Directory.CreateDirectory(persistence);
        var access = security is null ? "allow_anonymous true" : security.WriteFiles(directory);
        File.WriteAllText(ConfigPath, $"""
            listener {port} 127.0.0.1
            {access}
            persistence true
            persistence_location {persistence}
            persistence_file mosquitto.db
            max_queued_messages 10000
            user {Environment.UserName}
            log_dest file {Path.Combine(directory, "mosquitto.log")}
            log_type error
            log_type warning
            log_type notice
            {extraConfig}
            """);
    }

    public string Directory { get; }
    public int Port { get; }
    public string ConfigPath { get; }
    public int? Pid => _process is { HasExited: false } ? _process.Id : null;

    /// <param name="extraConfig">More mosquitto.conf lines, e.g. a bridge.</param>
    public static async Task<MosquittoBroker> StartAsync(MosquittoSecurity? security = null, string extraConfig = "")
    {
        if (!File.Exists(Executable))
            Assert.Fail($"mosquitto is not installed ({Executable} missing): run `apt-get install -y mosquitto` (CI's .ci/run does this).");
        var broker = new MosquittoBroker(System.IO.Directory.CreateTempSubdirectory("edgecounter-mosquitto-").FullName, FreePort.Next(), security, extraConfig);
        await broker.StartAgainAsync();
        return broker;
    }

    public async Task StartAgainAsync()
    {
        _process = Process.Start(new ProcessStartInfo(Executable, ["-c", ConfigPath])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        })!;
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            if (_process.HasExited)
                Assert.Fail($"mosquitto exited with {_process.ExitCode}: {ReadLog()}");
            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync(IPAddress.Loopback, Port);
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }
        }
    }

    /// <summary>SIGTERM by PID and wait for the exit (mosquitto writes its persistence file on the way out).</summary>
    public async Task StopAsync()
    {
        if (_process is null || _process.HasExited) return;
        if (kill(_process.Id, SIGTERM) != 0) throw new InvalidOperationException($"kill({_process.Id}) failed: {Marshal.GetLastPInvokeError()}");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await _process.WaitForExitAsync(timeout.Token);
        _process.Dispose();
        _process = null;
    }

    public string ReadLog()
    {
        var log = Path.Combine(Directory, "mosquitto.log");
        return File.Exists(log) ? File.ReadAllText(log) : "(no log)";
    }

    public async ValueTask DisposeAsync()
    {
        try { await StopAsync(); }
        catch (Exception) { _process?.Kill(); }
        try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { }
    }

    private const int SIGTERM = 15;

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);
}

/// <summary>
/// A hospital-style broker: TLS with a certificate from the test's own CA (made here, valid for 127.0.0.1 and
/// localhost, one day) and a password file (mosquitto_passwd), anonymous clients refused.
/// </summary>
internal sealed class MosquittoSecurity
{
    public string Username { get; init; } = "scope1";
    public string Password { get; init; } = "s3cret-" + Guid.NewGuid().ToString("N")[..6];
    public string CaCertificateFile { get; private set; } = "";

    /// <summary>Also ask every client for a certificate signed by the CA (mosquitto require_certificate true); one for a
    /// client is written to <see cref="ClientCertificateFile"/> and <see cref="ClientKeyFile"/>.</summary>
    public bool RequireClientCertificate { get; init; }

    public string ClientCertificateFile { get; private set; } = "";
    public string ClientKeyFile { get; private set; } = "";

    /// <summary>Writes CA, server certificate and key, and the password file; returns the mosquitto.conf lines.</summary>
    public string WriteFiles(string directory)
    {
        var now = DateTimeOffset.UtcNow; // one clock reading: the server certificate must end before its CA does
        using var caKey = RSA.Create(2048);
        var caRequest = new CertificateRequest(
            "CN=EdgeCounter test CA", caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(
            X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        using var ca = caRequest.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(2));

        using var serverKey = RSA.Create(2048);
        var serverRequest = new CertificateRequest(
            "CN=localhost", serverKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        serverRequest.CertificateExtensions.Add(names.Build());
        serverRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1")], false)); // server authentication
        using var server = serverRequest.Create(ca, now.AddMinutes(-5), now.AddDays(1), [1, 2, 3, 4]);

        CaCertificateFile = Path.Combine(directory, "ca.crt");
        File.WriteAllText(CaCertificateFile, ca.ExportCertificatePem());
        var certFile = Path.Combine(directory, "server.crt");
        var keyFile = Path.Combine(directory, "server.key");
        File.WriteAllText(certFile, server.ExportCertificatePem());
        File.WriteAllText(keyFile, serverKey.ExportPkcs8PrivateKeyPem());
        var clientLines = "";
        if (RequireClientCertificate)
        {
            using var clientKey = RSA.Create(2048);
            var clientRequest = new CertificateRequest("CN=edgecounter-test-device", clientKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            clientRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false)); // client authentication
            using var client = clientRequest.Create(ca, now.AddMinutes(-5), now.AddDays(1), [5, 6, 7, 8]);
            ClientCertificateFile = Path.Combine(directory, "client.crt");
            ClientKeyFile = Path.Combine(directory, "client.key");
            File.WriteAllText(ClientCertificateFile, client.ExportCertificatePem());
            File.WriteAllText(ClientKeyFile, clientKey.ExportPkcs8PrivateKeyPem());
            clientLines = $"cafile {CaCertificateFile}\nrequire_certificate true\n";
        }
        var passwordFile = Path.Combine(directory, "passwd");
        using (var passwd = Process.Start(new ProcessStartInfo("mosquitto_passwd", ["-b", "-c", passwordFile, Username, Password])
               { RedirectStandardError = true, RedirectStandardOutput = true })!)
        {
            passwd.WaitForExit();
            if (passwd.ExitCode != 0) Assert.Fail($"mosquitto_passwd failed: {passwd.StandardError.ReadToEnd()}");
        }
        if (!OperatingSystem.IsWindows()) // mosquitto warns about (and later versions refuse) readable secrets
        {
            File.SetUnixFileMode(passwordFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        return $"""
            allow_anonymous false
            password_file {passwordFile}
            certfile {certFile}
            keyfile {keyFile}
            {clientLines}
            """;
    }
}

/// <summary>A field and what the detector found in it (the test image belongs to the test, not to the field).</summary>
internal sealed record DetectedField(StableField Field, DetectionResult Detection);

/// <summary>The service's counting + publishing parts, wired as the host wires them, over a temp state directory.</summary>
internal sealed class ServiceUnderTest : IAsyncDisposable
{
    public static readonly string[] White = ["neutrophil", "eosinophil", "basophil", "lymphocyte", "monocyte"];

    public static readonly ModelInfo Model = new(
        "edgecounter-cellnet", "1.0.0", [.. White, "RBC", "Platelets"],
        new Dictionary<string, IReadOnlyList<string>> { ["WBC"] = White, ["granulocyte"] = ["neutrophil", "eosinophil", "basophil"] },
        White);

    private ServiceUnderTest(MqttOptions options, string stateDirectory, int target)
    {
        Options = options;
        StateDirectory = stateDirectory;
        Counting = new CountingService(CountingCatalog.FromModel(Model), new CountingOptions { DefaultTarget = target }, new SessionStore(stateDirectory));
        Publisher = MqttPublisher.Create(options, stateDirectory);
        Reports = new ReportPublisher(Publisher, new ModelPayload(Model.Name, Model.Version),
            new Reporting.ReportOptions { ReferenceRanges = { ["lymphocyte"] = [20, 40], ["monocyte"] = [2, 10] } }, stateDirectory);
        Commands = new SessionCommandHandler(Counting, Publisher, reports: Reports);
        Fields = new FieldPublisher(Publisher, options, Model, "CPU");
    }

    public MqttOptions Options { get; }
    public string StateDirectory { get; }
    public CountingService Counting { get; }
    public MqttPublisher Publisher { get; }
    public SessionCommandHandler Commands { get; }
    public ReportPublisher Reports { get; }
    public FieldPublisher Fields { get; }
    public TopicMap Topics => Publisher.Topics;

    public static ServiceUnderTest Create(int port, int target = 1000, int maxImageBytes = 200_000, bool publishImages = true,
        Action<MqttOptions>? configure = null)
    {
        var options = new MqttOptions
        {
            Mode = MqttMode.External,
            Host = "127.0.0.1",
            Port = port,
            DeviceId = "it-" + Guid.NewGuid().ToString("N")[..8],
            ReconnectMinDelay = TimeSpan.FromMilliseconds(100),
            ReconnectMaxDelay = TimeSpan.FromMilliseconds(500),
            ConnectTimeout = TimeSpan.FromSeconds(2),
            MaxImageBytes = maxImageBytes,
            PublishImages = publishImages,
        };
        configure?.Invoke(options);
        return new ServiceUnderTest(options, System.IO.Directory.CreateTempSubdirectory("edgecounter-state-").FullName, target);
    }

    /// <summary>Counts a detected field and hands the outcome to the publisher, as the field processor does (no slide
    /// position: every detection is new).</summary>
    public FieldCountResult Report(DetectedField field)
    {
        var count = Counting.CountField(field.Detection.Detections);
        Fields.Accept(new FieldOutcome(count.Accepted ? FieldFate.Counted : FieldFate.NotCounted, field.Field) { Detection = field.Detection, Count = count });
        return count;
    }

    /// <summary>A noisy field (hard to compress) with a few cells of the given labels.</summary>
    public static DetectedField MakeField(Mat image, int seed, params string[] labels)
    {
        var random = new Random(seed);
        var detections = labels.Select((label, i) =>
        {
            var x = 40 + 150 * (i % 8) + random.Next(20);
            var y = 60 + 150 * (i / 8) + random.Next(20);
            return new global::EdgeCounter.Detection.Detection(label, White.Contains(label) ? "WBC" : label, 0.5f + random.NextSingle() / 2, new BoxF(x, y, x + 90, y + 90));
        }).ToArray();
        return new DetectedField(new StableField(image, 0, DateTimeOffset.UtcNow, new FrameScore(Motion: 0.01, Focus: 150.0)), new DetectionResult(detections, 1.0, 12.5, 0.5));
    }

    public static Mat NoisyImage(int width = 1600, int height = 1200)
    {
        var mat = new Mat(height, width, MatType.CV_8UC3);
        Cv2.Randu(mat, Scalar.All(0), Scalar.All(255));
        return mat;
    }

    public async ValueTask DisposeAsync()
    {
        Commands.Dispose();
        await Publisher.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try { System.IO.Directory.Delete(StateDirectory, recursive: true); } catch (IOException) { }
    }
}
