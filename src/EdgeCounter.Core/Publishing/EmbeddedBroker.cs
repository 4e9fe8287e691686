using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MQTTnet.Server;

namespace EdgeCounter.Publishing;

/// <summary>The MQTTnet broker run inside the service: loopback only (IPv4 127.0.0.1, no IPv6), retained
/// messages and persistent sessions kept in memory while the service runs.</summary>
public sealed class EmbeddedBroker : IAsyncDisposable
{
    private readonly ILogger _logger;

    /// <param name="moreTransports">Further ways in besides TCP on <paramref name="port"/>, e.g. MQTT over WebSockets
    /// served by the web endpoints (/mqtt).</param>
    /// <param name="remotePassword">The password a client from another machine must give (any user name); such clients
    /// can only come through <paramref name="moreTransports"/> (TCP is bound to loopback). Null: they are refused.</param>
    public EmbeddedBroker(int port, ILogger<EmbeddedBroker>? logger = null, IEnumerable<IMqttServerAdapter>? moreTransports = null, string? remotePassword = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        Port = port;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        if (ConnectPacketField is null)
            _logger.LogWarning("This MQTTnet version hides the CONNECT packet differently: MQTT 3.1.1 clients without a client id (plain mosquitto_sub) will be refused; give them -i <id>");
        var factory = new MqttServerFactory();
        var options = factory.CreateServerOptionsBuilder()
            .WithDefaultEndpoint()
            .WithDefaultEndpointPort(port)
            .WithDefaultEndpointBoundIPAddress(IPAddress.Loopback)
            .WithDefaultEndpointBoundIPV6Address(IPAddress.None)
            .WithPersistentSessions(true)
            .WithMaxPendingMessagesPerClient(10_000)
            .Build();
        IMqttServerAdapter[] transports = [new MQTTnet.Server.Internal.Adapter.MqttTcpServerAdapter(), .. moreTransports ?? []];
        Server = factory.CreateMqttServer(options, transports);
        Server.ValidatingConnectionAsync += AssignClientIdWhenEmpty;
        _remotePassword = string.IsNullOrEmpty(remotePassword) ? null : System.Text.Encoding.UTF8.GetBytes(remotePassword);
        Server.ValidatingConnectionAsync += RefuseUnauthenticatedRemoteClients;
    }

    private readonly byte[]? _remotePassword;

    /// <summary>Whether a client's address is this machine (loopback, or unknown: an in-process transport).</summary>
    public static bool IsLocal(EndPoint? endPoint) => endPoint switch
    {
        IPEndPoint ip => IsLocal(ip.Address),
        null => true,
        _ => false,
    };

    /// <summary>Whether an address is this machine (loopback, also as an IPv4-mapped IPv6 address; null: unknown).</summary>
    public static bool IsLocal(IPAddress? address) =>
        address is null || IPAddress.IsLoopback(address) || (address.IsIPv4MappedToIPv6 && IPAddress.IsLoopback(address.MapToIPv4()));

    // A browser on another machine reaches the broker only through /mqtt on a non-loopback Web:Urls; it may read the
    // counts and send session commands, so it must present the web token as its MQTT password.
    private Task RefuseUnauthenticatedRemoteClients(ValidatingConnectionEventArgs e)
    {
        if (IsLocal(e.RemoteEndPoint)) return Task.CompletedTask;
        var given = System.Text.Encoding.UTF8.GetBytes(e.Password ?? "");
        if (_remotePassword is not null && System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(given, _remotePassword)) return Task.CompletedTask;
        e.ReasonCode = given.Length == 0 ? MQTTnet.Protocol.MqttConnectReasonCode.NotAuthorized : MQTTnet.Protocol.MqttConnectReasonCode.BadUserNameOrPassword;
        _logger.LogWarning("MQTT client {ClientId} from {Remote} refused: {Why}", e.ClientId, e.RemoteEndPoint,
            _remotePassword is null ? "clients from other machines are not accepted (set Web:Token)" : given.Length == 0 ? "no password (the web token)" : "wrong password");
        return Task.CompletedTask;
    }

    // MQTT 3.1.1 (3.1.3.1) lets a client with a clean session send an empty client id and requires the server to
    // assign one; mosquitto_sub does this by default. MQTTnet assigns ids only to MQTT 5 clients and refuses 3.1.1
    // ones, so a dashboard engineer's first `mosquitto_sub -t 'edgecounter/#' -v` would be turned away. Give the
    // packet an id before MQTTnet checks it (the packet is not exposed publicly, hence reflection).
    private static readonly System.Reflection.FieldInfo? ConnectPacketField =
        typeof(ValidatingConnectionEventArgs).GetFields(System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic)
            .FirstOrDefault(f => f.FieldType == typeof(MQTTnet.Packets.MqttConnectPacket));

    private static Task AssignClientIdWhenEmpty(ValidatingConnectionEventArgs e)
    {
        if (!string.IsNullOrEmpty(e.ClientId)) return Task.CompletedTask;
        var assigned = "auto-" + Guid.NewGuid().ToString("N")[..12];
        e.AssignedClientIdentifier = assigned;
        if (e.CleanSession != false && ConnectPacketField?.GetValue(e) is MQTTnet.Packets.MqttConnectPacket packet) packet.ClientId = assigned;
        return Task.CompletedTask;
    }

    public int Port { get; }

    /// <summary>The MQTTnet server, for events (e.g. validating connections) before <see cref="StartAsync"/>.</summary>
    public MqttServer Server { get; }

    public bool IsStarted => Server.IsStarted;

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        await Server.StartAsync().ConfigureAwait(false);
        _logger.LogInformation("Embedded MQTT broker listening on 127.0.0.1:{Port}", Port);
    }

    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        if (!Server.IsStarted) return;
        // The service's last messages ("stopped" on P/available) were acknowledged by the broker, but may still wait
        // in connected subscribers' queues: let them go out (briefly) so a dashboard sees the clean stop, not nothing.
        // (Offline persistent sessions keep their queues; they are not waited for.)
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(2);
        try
        {
            while (DateTime.UtcNow < deadline && !cancellationToken.IsCancellationRequested
                   && (await Server.GetClientsAsync().ConfigureAwait(false)).Sum(c => c.Session?.PendingApplicationMessagesCount ?? 0) > 0)
                await Task.Delay(20, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        await Server.StopAsync(new MqttServerStopOptions()).WaitAsync(cancellationToken).ConfigureAwait(false);
        _logger.LogInformation("Embedded MQTT broker stopped");
    }

    public async ValueTask DisposeAsync()
    {
        try { await StopAsync().ConfigureAwait(false); }
        finally { Server.Dispose(); }
    }
}
