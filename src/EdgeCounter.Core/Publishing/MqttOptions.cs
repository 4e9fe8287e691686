namespace EdgeCounter.Publishing;

public enum MqttMode
{
    /// <summary>Run the MQTTnet broker inside the service (loopback only) and publish to it.</summary>
    Embedded,

    /// <summary>Publish to a broker elsewhere (host, port, TLS, credentials).</summary>
    External,
}

/// <summary>Configuration section "Mqtt".</summary>
public sealed class MqttOptions
{
    public const string SectionName = "Mqtt";

    public MqttMode Mode { get; set; } = MqttMode.Embedded;

    /// <summary>External broker host; the embedded broker is always reached on 127.0.0.1.</summary>
    public string Host { get; set; } = "127.0.0.1";

    /// <summary>Broker port (the embedded broker listens on it).</summary>
    public int Port { get; set; } = 1883;

    public bool UseTls { get; set; }

    /// <summary>Accept a self-signed broker certificate (external broker on a closed ward network).</summary>
    public bool AllowUntrustedCertificates { get; set; }

    /// <summary>PEM file with the CA certificate(s) that signed the broker's certificate (a hospital's own CA):
    /// the broker is trusted through this CA only, instead of the machine's trust store. Needs UseTls.</summary>
    public string? CaCertificateFile { get; set; }

    /// <summary>PEM certificate this service presents to the broker (TLS client authentication, e.g. mosquitto's
    /// require_certificate); with <see cref="ClientKeyFile"/>. Needs UseTls.</summary>
    public string? ClientCertificateFile { get; set; }

    /// <summary>PEM private key of <see cref="ClientCertificateFile"/> (PKCS#8 or RSA/EC, unencrypted).</summary>
    public string? ClientKeyFile { get; set; }

    /// <summary>MQTT protocol version to the broker: "3.1.1" (default) or "5".</summary>
    public string ProtocolVersion { get; set; } = "3.1.1";

    public string? Username { get; set; }
    public string? Password { get; set; }

    /// <summary>Identifies this device in topics and client ids.</summary>
    public string DeviceId { get; set; } = Environment.MachineName.ToLowerInvariant();

    /// <summary>Client id; default "edgecounter-&lt;DeviceId&gt;".</summary>
    public string? ClientId { get; set; }

    /// <summary>Topic prefix P; default "edgecounter/&lt;DeviceId&gt;".</summary>
    public string? TopicPrefix { get; set; }

    public TimeSpan KeepAlive { get; set; } = TimeSpan.FromSeconds(15);
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);
    public TimeSpan ReconnectMinDelay { get; set; } = TimeSpan.FromSeconds(0.5);
    public TimeSpan ReconnectMaxDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Annotated field images are made smaller until their JPEG fits (default below 1 MB, the usual broker packet limit).</summary>
    public int MaxImageBytes { get; set; } = 900 * 1024;

    /// <summary>Publish P/field/image at all.</summary>
    public bool PublishImages { get; set; } = true;

    /// <summary>The annotated field on P/field/image (and /latest.jpg) is scaled down to at most this height, header
    /// band included, before its boxes are drawn (so they stay legible): small snapshots keep dashboards quick.
    /// 0: full resolution.</summary>
    public int ImageHeight { get; set; } = 480;

    /// <summary>JPEG quality of that image (lowered further only to stay under <see cref="MaxImageBytes"/>).</summary>
    public int ImageQuality { get; set; } = 80;

    /// <summary>Outbox bound: messages waiting for the broker.</summary>
    public int OutboxMaxMessages { get; set; } = 50_000;

    /// <summary>Outbox bound: payload bytes waiting for the broker.</summary>
    public long OutboxMaxBytes { get; set; } = 256L * 1024 * 1024;

    /// <summary>Bound of the in-memory queue that holds messages while the state disk refuses writes (full, failing).</summary>
    public long OutboxMemoryMaxBytes { get; set; } = 32L * 1024 * 1024;

    /// <summary>Outbox file name inside the service's state directory.</summary>
    public string OutboxFileName { get; set; } = "mqtt-outbox.db";

    public TimeSpan StatsInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Announce the microscope to Home Assistant (MQTT discovery, retained under <see cref="DiscoveryPrefix"/>),
    /// again whenever Home Assistant says it is online.</summary>
    public bool Discovery { get; set; } = true;

    /// <summary>Home Assistant's discovery prefix (its own default).</summary>
    public string DiscoveryPrefix { get; set; } = "homeassistant";

    public string EffectiveClientId => string.IsNullOrWhiteSpace(ClientId) ? $"edgecounter-{DeviceId}" : ClientId;

    public string EffectiveTopicPrefix => string.IsNullOrWhiteSpace(TopicPrefix) ? $"edgecounter/{DeviceId}" : TopicPrefix.TrimEnd('/');

    /// <summary>The host a client connects to in this mode.</summary>
    public string EffectiveHost => Mode == MqttMode.Embedded ? "127.0.0.1" : Host;

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (!Enum.IsDefined(Mode)) errors.Add($"Mqtt:Mode '{Mode}' is not Embedded or External.");
        if (Port is < 1 or > 65535) errors.Add($"Mqtt:Port must be 1..65535 (is {Port}).");
        if (Mode == MqttMode.External && string.IsNullOrWhiteSpace(Host)) errors.Add("Mqtt:Host is required for an external broker.");
        if (Mode == MqttMode.Embedded && UseTls) errors.Add("Mqtt:UseTls applies to an external broker only (the embedded broker listens on loopback).");
        if (string.IsNullOrWhiteSpace(DeviceId) || DeviceId.IndexOfAny(['/', '+', '#']) >= 0)
            errors.Add("Mqtt:DeviceId must be non-empty and free of '/', '+', '#'.");
        if (!string.IsNullOrWhiteSpace(TopicPrefix) && (TopicPrefix.IndexOfAny(['+', '#']) >= 0 || TopicPrefix.Trim('/').Length == 0))
            errors.Add("Mqtt:TopicPrefix must be non-empty and free of wildcards '+' and '#'.");
        if (Password is not null && Username is null) errors.Add("Mqtt:Password needs Mqtt:Username.");
        if (!string.IsNullOrWhiteSpace(CaCertificateFile))
        {
            if (!UseTls) errors.Add("Mqtt:CaCertificateFile needs Mqtt:UseTls=true.");
            else if (!File.Exists(CaCertificateFile)) errors.Add($"Mqtt:CaCertificateFile '{CaCertificateFile}' does not exist.");
            else if (!HoldsCertificate(CaCertificateFile))
                errors.Add($"Mqtt:CaCertificateFile '{CaCertificateFile}' holds no PEM certificate.");
        }
        if (ProtocolVersion is not ("3.1.1" or "5")) errors.Add($"Mqtt:ProtocolVersion must be 3.1.1 or 5 (is '{ProtocolVersion}').");
        if (!string.IsNullOrWhiteSpace(ClientCertificateFile) || !string.IsNullOrWhiteSpace(ClientKeyFile))
        {
            if (!UseTls) errors.Add("Mqtt:ClientCertificateFile needs Mqtt:UseTls=true.");
            else if (string.IsNullOrWhiteSpace(ClientCertificateFile) || string.IsNullOrWhiteSpace(ClientKeyFile))
                errors.Add("Mqtt:ClientCertificateFile and Mqtt:ClientKeyFile go together (PEM certificate and its key).");
            else if (!File.Exists(ClientCertificateFile)) errors.Add($"Mqtt:ClientCertificateFile '{ClientCertificateFile}' does not exist.");
            else if (!File.Exists(ClientKeyFile)) errors.Add($"Mqtt:ClientKeyFile '{ClientKeyFile}' does not exist.");
            else
            {
                try
                {
                    using var _ = LoadClientCertificate(ClientCertificateFile, ClientKeyFile);
                }
                catch (Exception e) when (e is System.Security.Cryptography.CryptographicException or ArgumentException)
                {
                    errors.Add($"Mqtt:ClientCertificateFile/ClientKeyFile: not a PEM certificate and its private key ({e.Message}).");
                }
            }
        }
        if (KeepAlive < TimeSpan.FromSeconds(1) || KeepAlive > TimeSpan.FromHours(18)) errors.Add("Mqtt:KeepAlive must be 1 s..18 h.");
        if (ConnectTimeout <= TimeSpan.Zero) errors.Add("Mqtt:ConnectTimeout must be positive.");
        if (ReconnectMinDelay <= TimeSpan.Zero || ReconnectMaxDelay < ReconnectMinDelay)
            errors.Add("Mqtt:ReconnectMinDelay must be positive and at most ReconnectMaxDelay.");
        if (MaxImageBytes < 16 * 1024) errors.Add("Mqtt:MaxImageBytes must be at least 16384.");
        if (ImageHeight != 0 && ImageHeight < 120) errors.Add($"Mqtt:ImageHeight must be 0 (full resolution) or at least 120 (is {ImageHeight}).");
        if (ImageQuality is < 40 or > 100) errors.Add($"Mqtt:ImageQuality must be 40..100 (is {ImageQuality}).");
        if (OutboxMaxMessages < 10) errors.Add("Mqtt:OutboxMaxMessages must be at least 10.");
        if (OutboxMaxBytes < 2L * MaxImageBytes) errors.Add("Mqtt:OutboxMaxBytes must hold at least two images (2 x MaxImageBytes).");
        if (OutboxMemoryMaxBytes < 2L * MaxImageBytes) errors.Add("Mqtt:OutboxMemoryMaxBytes must hold at least two images (2 x MaxImageBytes).");
        if (string.IsNullOrWhiteSpace(OutboxFileName) || OutboxFileName.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0)
            errors.Add("Mqtt:OutboxFileName must be a plain file name.");
        if (StatsInterval < TimeSpan.FromSeconds(1)) errors.Add("Mqtt:StatsInterval must be at least 1 s.");
        if (Discovery && (string.IsNullOrWhiteSpace(DiscoveryPrefix) || DiscoveryPrefix.IndexOfAny(['+', '#', ' ']) >= 0 || DiscoveryPrefix.Trim('/') != DiscoveryPrefix))
            errors.Add($"Mqtt:DiscoveryPrefix must be a plain topic level such as 'homeassistant' (is '{DiscoveryPrefix}').");
        return errors;
    }

    /// <summary>The client certificate with its key, ready for TLS client authentication (exported through PKCS#12 so
    /// the key is usable by the TLS stack on every platform).</summary>
    public static System.Security.Cryptography.X509Certificates.X509Certificate2 LoadClientCertificate(string certificateFile, string keyFile)
    {
        using var pem = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(certificateFile, keyFile);
        if (!pem.HasPrivateKey) throw new System.Security.Cryptography.CryptographicException("the key does not match the certificate");
        return System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12(
            pem.Export(System.Security.Cryptography.X509Certificates.X509ContentType.Pkcs12), null);
    }

    /// <summary>The certificates in a PEM file (empty when it holds none or cannot be parsed).</summary>
    public static System.Security.Cryptography.X509Certificates.X509Certificate2Collection LoadCaCertificates(string path)
    {
        var certificates = new System.Security.Cryptography.X509Certificates.X509Certificate2Collection();
        try { certificates.ImportFromPemFile(path); }
        catch (System.Security.Cryptography.CryptographicException) { certificates.Clear(); }
        return certificates;
    }

    private static bool HoldsCertificate(string path)
    {
        var certificates = LoadCaCertificates(path);
        foreach (var certificate in certificates) certificate.Dispose(); // only counted here; the publisher loads its own
        return certificates.Count > 0;
    }

    public void ThrowIfInvalid()
    {
        var errors = Validate();
        if (errors.Count > 0) throw new ArgumentException("Invalid MQTT options: " + string.Join(" ", errors));
    }
}
