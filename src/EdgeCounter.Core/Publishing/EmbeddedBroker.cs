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

    public EmbeddedBroker(int port, ILogger<EmbeddedBroker>? logger = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        Port = port;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        var factory = new MqttServerFactory();
        var options = factory.CreateServerOptionsBuilder()
            .WithDefaultEndpoint()
            .WithDefaultEndpointPort(port)
            .WithDefaultEndpointBoundIPAddress(IPAddress.Loopback)
            .WithDefaultEndpointBoundIPV6Address(IPAddress.None)
            .WithPersistentSessions(true)
            .WithMaxPendingMessagesPerClient(10_000)
            .Build();
        Server = factory.CreateMqttServer(options);
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
        await Server.StopAsync(new MqttServerStopOptions()).WaitAsync(cancellationToken).ConfigureAwait(false);
        _logger.LogInformation("Embedded MQTT broker stopped");
    }

    public async ValueTask DisposeAsync()
    {
        try { await StopAsync().ConfigureAwait(false); }
        finally { Server.Dispose(); }
    }
}
