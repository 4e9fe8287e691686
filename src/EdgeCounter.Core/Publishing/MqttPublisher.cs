using System.Buffers;
using System.Text;
using System.Threading.Channels;
using EdgeCounter.Counting;
using EdgeCounter.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace EdgeCounter.Publishing;

/// <summary>Keeps one MQTT connection up (reconnecting with back-off), announces availability (retained
/// "online", "stopped" on clean shutdown, "offline" as last will), receives session commands, and drains the
/// durable outbox in order: a message leaves the outbox only once the broker acknowledged it (QoS 1 PUBACK).</summary>
public sealed class MqttPublisher : IAsyncDisposable
{
    private const int PumpBatch = 64;
    private const int MaxAttemptsPerMessage = 5;

    private readonly MqttOptions _options;
    private readonly Outbox _outbox;
    private readonly bool _ownsOutbox;
    private readonly TimeProvider _clock;
    private readonly ILogger _logger;
    private readonly IMqttClient _client;
    private readonly MqttClientOptions _clientOptions;
    private readonly SemaphoreSlim _wakePump = new(0, 1);
    private readonly SemaphoreSlim _connectionLost = new(0, 1);
    private readonly Channel<byte[]> _commands = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(64) { FullMode = BoundedChannelFullMode.DropOldest });
    private CancellationTokenSource? _running;
    private Task _loops = Task.CompletedTask;
    private int _state = (int)ConnectionState.Disconnected;
    private long _connects; // the first connect is not a reconnect: stats.reconnects = connects - 1
    private long _published;
    private long _failingSequence = -1;
    private int _failingAttempts;
    private bool _stopped;

    public MqttPublisher(MqttOptions options, Outbox outbox, TimeProvider? clock = null, ILogger<MqttPublisher>? logger = null)
        : this(ValidOrThrow(options), outbox, ownsOutbox: false, clock, logger)
    {
    }

    private static MqttOptions ValidOrThrow(MqttOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.ThrowIfInvalid();
        return options;
    }

    private MqttPublisher(MqttOptions options, Outbox outbox, bool ownsOutbox, TimeProvider? clock, ILogger<MqttPublisher>? logger)
    {
        _options = options; // validated by the public constructor or Create
        _outbox = outbox ?? throw new ArgumentNullException(nameof(outbox));
        _ownsOutbox = ownsOutbox;
        _clock = clock ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        Topics = TopicMap.For(options);
        _clientOptions = BuildClientOptions(options, Topics);
        _client = new MqttClientFactory().CreateMqttClient();
        _client.DisconnectedAsync += OnDisconnectedAsync;
        _client.ApplicationMessageReceivedAsync += OnMessageReceivedAsync;
    }

    /// <summary>A publisher with its own outbox file (options.OutboxFileName) in the state directory.</summary>
    /// <param name="storage">The state directory's monitor; default: one with the default reserve.</param>
    public static MqttPublisher Create(MqttOptions options, string stateDirectory, ILoggerFactory? loggerFactory = null, TimeProvider? clock = null,
        StorageMonitor? storage = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.ThrowIfInvalid();
        ArgumentException.ThrowIfNullOrWhiteSpace(stateDirectory);
        loggerFactory ??= NullLoggerFactory.Instance;
        storage ??= new StorageMonitor(stateDirectory, logger: loggerFactory.CreateLogger<StorageMonitor>(), clock: clock);
        var outbox = new Outbox(Path.Combine(stateDirectory, options.OutboxFileName), options.OutboxMaxMessages, options.OutboxMaxBytes,
            loggerFactory.CreateLogger<Outbox>(), storage, options.OutboxMemoryMaxBytes, clock);
        return new MqttPublisher(options, outbox, ownsOutbox: true, clock, loggerFactory.CreateLogger<MqttPublisher>());
    }

    public TopicMap Topics { get; }

    private volatile IReadOnlyList<RetainedMessage> _announcements = [];
    private int _announceAgain;

    /// <summary>Retained messages (e.g. Home Assistant discovery) published at every connect and again when
    /// <see cref="AnnounceAgainTopic"/> receives "online". Set before <see cref="StartAsync"/>.</summary>
    public IReadOnlyList<RetainedMessage> Announcements { get => _announcements; set => _announcements = value ?? []; }

    /// <summary>Where a consumer says it (re)started, e.g. homeassistant/status; null: none.</summary>
    public string? AnnounceAgainTopic { get; set; }

    public Outbox Outbox => _outbox;

    public ConnectionState State => (ConnectionState)Volatile.Read(ref _state);

    public bool IsConnected => State == ConnectionState.Connected && _client.IsConnected;

    /// <summary>Raw payloads received on P/session/set, delivered one at a time off the MQTT receive loop.</summary>
    public event Func<ReadOnlyMemory<byte>, CancellationToken, Task>? SessionCommandReceived;

    /// <summary>The client options used: clean session, last will "offline" retained on P/available.</summary>
    public static MqttClientOptions BuildClientOptions(MqttOptions options, TopicMap topics)
    {
        var builder = new MqttClientOptionsBuilder()
            .WithTcpServer(options.EffectiveHost, options.Port)
            .WithClientId(options.EffectiveClientId)
            .WithProtocolVersion(options.ProtocolVersion == "5" ? MqttProtocolVersion.V500 : MqttProtocolVersion.V311)
            .WithCleanSession(true)
            .WithKeepAlivePeriod(options.KeepAlive)
            .WithTimeout(options.ConnectTimeout)
            .WithWillTopic(topics.Available)
            .WithWillPayload("offline")
            .WithWillRetain(true)
            .WithWillQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce);
        if (options.Username is not null) builder.WithCredentials(options.Username, options.Password ?? "");
        if (options.UseTls)
            builder.WithTlsOptions(tls =>
            {
                tls.UseTls().WithTargetHost(options.Host).WithAllowUntrustedCertificates(options.AllowUntrustedCertificates)
                    .WithIgnoreCertificateChainErrors(options.AllowUntrustedCertificates);
                // A hospital CA: trust the broker through it alone (custom root trust), not the system store.
                if (!string.IsNullOrWhiteSpace(options.CaCertificateFile))
                    tls.WithTrustChain(MqttOptions.LoadCaCertificates(options.CaCertificateFile));
                // A broker that asks for client certificates (mosquitto require_certificate true).
                if (!string.IsNullOrWhiteSpace(options.ClientCertificateFile) && !string.IsNullOrWhiteSpace(options.ClientKeyFile))
                    tls.WithClientCertificates([MqttOptions.LoadClientCertificate(options.ClientCertificateFile, options.ClientKeyFile)]);
            });
        return builder.Build();
    }

    /// <summary>Starts the connection loop, the outbox pump and the command loop; returns at once.</summary>
    public Task StartAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ObjectDisposedException.ThrowIf(_stopped, this);
        if (_running is not null) throw new InvalidOperationException("Already started.");
        _running = new CancellationTokenSource();
        var token = _running.Token;
        _loops = Task.WhenAll(
            Task.Run(() => ConnectLoopAsync(token), CancellationToken.None),
            Task.Run(() => PumpLoopAsync(token), CancellationToken.None),
            Task.Run(() => CommandLoopAsync(token), CancellationToken.None));
        _logger.LogInformation("MQTT publisher started: {Mode} broker {Host}:{Port}, client {ClientId}, topics {Prefix}/...",
            _options.Mode, _options.EffectiveHost, _options.Port, _options.EffectiveClientId, Topics.Prefix);
        return Task.CompletedTask;
    }

    /// <summary>Clean shutdown: tries to send what is waiting (up to <paramref name="drainTimeout"/>, default 2 s; the
    /// rest stays in the outbox for the next start), publishes "stopped" and disconnects (no last will).</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default, TimeSpan? drainTimeout = null)
    {
        if (_running is null || _stopped) return;
        _stopped = true;
        try
        {
            if (IsConnected) await WaitForDrainAsync(drainTimeout ?? TimeSpan.FromSeconds(2), cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Out of shutdown time: what is not sent stays in the outbox for the next start.
        }
        await _running.CancelAsync().ConfigureAwait(false);
        try { await _loops.ConfigureAwait(false); }
        catch (OperationCanceledException) { }

        if (_client.IsConnected)
        {
            try
            {
                await _client.PublishAsync(Message(Topics.Available, "stopped"u8.ToArray(), retain: true, 1), cancellationToken).ConfigureAwait(false);
                await _client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().WithReason(MqttClientDisconnectOptionsReason.NormalDisconnection).Build(),
                    cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                // The host's shutdown time ran out (a loaded machine): stopping must still finish. The broker
                // publishes the last will when the connection drops, so dashboards still see the device go.
                _logger.LogWarning("MQTT publisher stop ran out of time before 'stopped' was published; the broker's last will says offline");
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                _logger.LogWarning(ex, "Clean MQTT disconnect failed");
            }
        }
        Volatile.Write(ref _state, (int)ConnectionState.Stopped);
        _logger.LogInformation("MQTT publisher stopped; {Count} messages remain in the outbox", _outbox.Count);
    }

    /// <summary>Queues a field result (QoS 1, not retained). Never lost while the broker is away.</summary>
    public long EnqueueField(FieldMessage field) => EnqueueField(PublishingJson.Serialize(field));

    /// <summary>Queues a field result already serialized (as kept with the session).</summary>
    public long EnqueueField(byte[] payload) => Enqueue(new OutboxMessage(Topics.Field, payload, Retain: false, OutboxKind.Result));

    /// <summary>Queues the annotated field image (retained; only the newest unsent one is kept).</summary>
    public long EnqueueFieldImage(byte[] jpeg)
    {
        ArgumentNullException.ThrowIfNull(jpeg);
        if (jpeg.Length > _options.MaxImageBytes)
            throw new ArgumentException($"Image of {jpeg.Length} bytes exceeds Mqtt:MaxImageBytes {_options.MaxImageBytes}.", nameof(jpeg));
        return Enqueue(new OutboxMessage(Topics.FieldImage, jpeg, Retain: true, OutboxKind.Image, CoalesceKey: "field/image"));
    }

    /// <summary>Queues the slide map (retained; only the newest unsent one is kept).</summary>
    public long EnqueueSlideImage(byte[] jpeg)
    {
        ArgumentNullException.ThrowIfNull(jpeg);
        if (jpeg.Length > _options.MaxImageBytes)
            throw new ArgumentException($"Image of {jpeg.Length} bytes exceeds Mqtt:MaxImageBytes {_options.MaxImageBytes}.", nameof(jpeg));
        return Enqueue(new OutboxMessage(Topics.SlideImage, jpeg, Retain: true, OutboxKind.Image, CoalesceKey: "slide/image"));
    }

    /// <summary>Queues the running totals (retained; only the newest unsent one is kept). Its plain numbers
    /// (P/counts/&lt;label&gt;) are derived from it as it is sent.</summary>
    public long EnqueueCounts(CountsSnapshot counts) =>
        Enqueue(new OutboxMessage(Topics.Counts, PublishingJson.Serialize(counts), Retain: true, OutboxKind.Result, CoalesceKey: "counts"));

    /// <summary>Queues the session state echo (retained; only the newest unsent one is kept).</summary>
    public long EnqueueSessionState(CountsSnapshot state) =>
        Enqueue(new OutboxMessage(Topics.SessionState, PublishingJson.Serialize(state), Retain: true, OutboxKind.Result, CoalesceKey: "session/state"));

    /// <summary>Queues one audit-trail entry on P/session/correction (QoS 1, not retained, never lost).</summary>
    public long EnqueueCorrection(CellCorrection correction, string sessionId) =>
        Enqueue(new OutboxMessage(Topics.SessionCorrection, PublishingJson.Serialize(new CorrectionMessage(sessionId, correction)), Retain: false, OutboxKind.Result));

    /// <summary>Queues the signed report (retained; only the newest unsent one is kept).</summary>
    public long EnqueueReport(byte[] reportJson) =>
        Enqueue(new OutboxMessage(Topics.Report, reportJson, Retain: true, OutboxKind.Result, CoalesceKey: "report"));

    /// <summary>Queues the signed report as FHIR R4 JSON on P/report/fhir (retained; only the newest unsent one is kept).</summary>
    public long EnqueueReportFhir(byte[] bundleJson) =>
        Enqueue(new OutboxMessage(Topics.ReportFhir, bundleJson, Retain: true, OutboxKind.Result, CoalesceKey: "report/fhir"));

    /// <summary>Replies to a refused command on P/session/error (QoS 1, not retained). Returns false when not connected.</summary>
    public Task<bool> PublishSessionErrorAsync(SessionErrorMessage error, CancellationToken cancellationToken = default) =>
        PublishNowAsync(Topics.SessionError, PublishingJson.Serialize(error), retain: false, qos: 1, cancellationToken);

    /// <summary>Publishes P/stats (QoS 0, not retained) with the publisher's own figures added. Returns false when not connected.</summary>
    public Task<bool> PublishStatsAsync(PipelineStats pipeline, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        var message = StatsMessage.Create(pipeline, GetStats(), _clock.GetUtcNow());
        return PublishNowAsync(Topics.Stats, PublishingJson.Serialize(message), retain: false, qos: 0, cancellationToken);
    }

    public PublisherStats GetStats() => new(
        State, Math.Max(0, Interlocked.Read(ref _connects) - 1), _outbox.Count, _outbox.Bytes, _outbox.DroppedImages, _outbox.DroppedResults,
        Interlocked.Read(ref _published),
        new StoragePayload(_outbox.Storage.State, _outbox.Storage.BytesFree, _outbox.Storage.ReserveBytes, _outbox.PendingInMemory, _outbox.DroppedFromMemory));

    /// <summary>Waits until the outbox is empty; false on timeout.</summary>
    public async Task<bool> WaitForDrainAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var deadline = _clock.GetUtcNow() + timeout;
        while (_outbox.Count > 0)
        {
            if (_clock.GetUtcNow() >= deadline) return false;
            await Task.Delay(TimeSpan.FromMilliseconds(20), _clock, cancellationToken).ConfigureAwait(false);
        }
        return true;
    }

    public async ValueTask DisposeAsync()
    {
        if (_running is not null && !_stopped)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try { await StopAsync(timeout.Token, TimeSpan.FromSeconds(1)).ConfigureAwait(false); }
            catch (OperationCanceledException) { }
        }
        _stopped = true;
        _client.Dispose();
        _running?.Dispose();
        if (_ownsOutbox) _outbox.Dispose();
    }

    private long Enqueue(OutboxMessage message)
    {
        var sequence = _outbox.Enqueue(message);
        Signal(_wakePump);
        return sequence;
    }

    private async Task<bool> PublishNowAsync(string topic, byte[] payload, bool retain, int qos, CancellationToken cancellationToken)
    {
        if (!IsConnected) return false;
        try
        {
            await _client.PublishAsync(Message(topic, payload, retain, qos), cancellationToken).ConfigureAwait(false);
            Interlocked.Increment(ref _published);
            return true;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            _logger.LogDebug(ex, "Publishing {Topic} failed", topic);
            return false;
        }
    }

    private async Task ConnectLoopAsync(CancellationToken cancellationToken)
    {
        var delay = _options.ReconnectMinDelay;
        var failures = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            if (!_client.IsConnected)
            {
                Volatile.Write(ref _state, (int)ConnectionState.Connecting);
                try
                {
                    using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    attempt.CancelAfter(_options.ConnectTimeout);
                    await _client.ConnectAsync(_clientOptions, attempt.Token).ConfigureAwait(false);
                    await _client.PublishAsync(Message(Topics.Available, "online"u8.ToArray(), retain: true, 1), attempt.Token).ConfigureAwait(false);
                    var subscriptions = new MqttClientSubscribeOptionsBuilder()
                        .WithTopicFilter(f => f.WithTopic(Topics.SessionSet).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce));
                    if (AnnounceAgainTopic is { } again)
                        subscriptions.WithTopicFilter(f => f.WithTopic(again).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce));
                    await _client.SubscribeAsync(subscriptions.Build(), attempt.Token).ConfigureAwait(false);
                    await AnnounceAsync(attempt.Token).ConfigureAwait(false);
                    Interlocked.Exchange(ref _plainCountsStale, 1);
                    Volatile.Write(ref _state, (int)ConnectionState.Connected);
                    if (Interlocked.Increment(ref _connects) > 1 || failures > 0)
                        _logger.LogInformation("MQTT connected to {Host}:{Port} after {Failures} failed attempts; {Count} messages to replay",
                            _options.EffectiveHost, _options.Port, failures, _outbox.Count);
                    else
                        _logger.LogInformation("MQTT connected to {Host}:{Port}", _options.EffectiveHost, _options.Port);
                    delay = _options.ReconnectMinDelay;
                    failures = 0;
                    Signal(_wakePump);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    break;
                }
                catch (Exception ex)
                {
                    Volatile.Write(ref _state, (int)ConnectionState.Disconnected);
                    failures++;
                    if (failures == 1) _logger.LogWarning("MQTT connection to {Host}:{Port} failed: {Error}; retrying with back-off", _options.EffectiveHost, _options.Port, ex.Message);
                    else _logger.LogDebug("MQTT connection attempt {Attempt} failed: {Error}", failures, ex.Message);
                    await ForceDisconnectAsync().ConfigureAwait(false);
                    try { await Task.Delay(Jitter(delay), _clock, cancellationToken).ConfigureAwait(false); }
                    catch (OperationCanceledException) { break; }
                    delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, _options.ReconnectMaxDelay.Ticks));
                    continue;
                }
            }

            try { await _connectionLost.WaitAsync(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false); }
            catch (OperationCanceledException) { break; }
            if (Interlocked.Exchange(ref _announceAgain, 0) == 1 && _client.IsConnected)
            {
                try { await AnnounceAsync(cancellationToken).ConfigureAwait(false); }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested) { break; }
                catch (Exception ex) { _logger.LogDebug(ex, "Announcing again failed; done at the next connect"); }
            }
        }
    }

    private async Task PumpLoopAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try { await _wakePump.WaitAsync(TimeSpan.FromMilliseconds(500), cancellationToken).ConfigureAwait(false); }
            catch (OperationCanceledException) { break; }
            // What waits in memory (the disk refused it) goes to disk once it takes writes, fields coming or not.
            _outbox.PersistPending();

            while (IsConnected && !cancellationToken.IsCancellationRequested)
            {
                var batch = _outbox.Peek(PumpBatch);
                if (batch.Count == 0) break;
                if (!await SendInOrderAsync(batch, cancellationToken).ConfigureAwait(false)) break;
            }
        }
    }

    /// <summary>Sends one at a time so order holds; stops at the first failure (the message stays for the next try).</summary>
    private async Task<bool> SendInOrderAsync(IReadOnlyList<OutboxEntry> batch, CancellationToken cancellationToken)
    {
        foreach (var entry in batch)
        {
            try
            {
                // Plain numbers beside the JSON (P/counts/<label> -> "31"), for dashboards that read one value per topic:
                // derived from the counts message as it goes out, so they cost no outbox writes and never disagree with it.
                // Only the labels whose total changed since the last one sent on this connection (a field changes a few).
                if (entry.Message.Topic == Topics.Counts)
                {
                    if (Interlocked.Exchange(ref _plainCountsStale, 0) == 1) _plainCountsSent.Clear();
                    foreach (var (topic, value) in PlainCounts(entry.Message.Payload))
                    {
                        if (_plainCountsSent.TryGetValue(topic, out var sent) && sent == value) continue;
                        await _client.PublishAsync(Message(topic, Encoding.UTF8.GetBytes(value), retain: true, 1), cancellationToken).ConfigureAwait(false);
                        _plainCountsSent[topic] = value;
                    }
                }
                var message = Message(entry.Message.Topic, entry.Message.Payload, entry.Message.Retain, entry.Message.QoS);
                var result = await _client.PublishAsync(message, cancellationToken).ConfigureAwait(false);
                if (!result.IsSuccess)
                {
                    // The broker answered but refused (MQTT 5 reason code): retrying would never succeed.
                    _logger.LogWarning("Broker refused {Topic} #{Sequence}: {Reason}; dropping it", entry.Message.Topic, entry.Sequence, result.ReasonCode);
                }
                _outbox.Remove(entry.Sequence);
                Interlocked.Increment(ref _published);
                _failingSequence = -1;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return false;
            }
            catch (Exception ex)
            {
                NoteFailure(entry, ex);
                return false;
            }
        }
        return true;
    }

    private List<(string Topic, string Value)> PlainCounts(byte[] countsJson)
    {
        using var document = System.Text.Json.JsonDocument.Parse(countsJson);
        return document.RootElement.GetProperty("totals").EnumerateObject()
            .Select(t => (Topics.CountOf(t.Name), t.Value.GetRawText())).ToList();
    }

    // The plain numbers sent on this connection (pump loop only); every connect sends them all again (a broker
    // without persistence may have lost its retained ones).
    private readonly Dictionary<string, string> _plainCountsSent = new(StringComparer.Ordinal);
    private int _plainCountsStale = 1;

    /// <summary>A message that keeps failing while connected (e.g. larger than the broker allows) would block every
    /// later one: after a few tries it is dropped, logged and counted.</summary>
    private void NoteFailure(OutboxEntry entry, Exception ex)
    {
        if (_failingSequence != entry.Sequence)
        {
            _failingSequence = entry.Sequence;
            _failingAttempts = 0;
        }
        _failingAttempts++;
        _logger.LogDebug(ex, "Publishing {Topic} #{Sequence} failed (attempt {Attempt})", entry.Message.Topic, entry.Sequence, _failingAttempts);
        if (_failingAttempts >= MaxAttemptsPerMessage)
        {
            _logger.LogError(ex, "Giving up on {Topic} #{Sequence} ({Bytes} bytes) after {Attempts} attempts", entry.Message.Topic, entry.Sequence,
                entry.Message.Payload.Length, _failingAttempts);
            _outbox.Remove(entry.Sequence);
            _failingSequence = -1;
        }
    }

    private async Task CommandLoopAsync(CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var payload in _commands.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                var handler = SessionCommandReceived;
                if (handler is null)
                {
                    _logger.LogWarning("Session command received but no handler is attached");
                    continue;
                }
                try { await handler(payload, cancellationToken).ConfigureAwait(false); }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    _logger.LogError(ex, "Session command handler failed");
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    private async Task AnnounceAsync(CancellationToken cancellationToken)
    {
        foreach (var m in Announcements)
            await _client.PublishAsync(Message(m.Topic, m.Payload, retain: true, 1), cancellationToken).ConfigureAwait(false);
    }

    private Task OnMessageReceivedAsync(MqttApplicationMessageReceivedEventArgs e)
    {
        if (AnnounceAgainTopic is { } again && e.ApplicationMessage.Topic == again)
        {
            // Home Assistant restarted (or its broker did): announce again, off the receive loop.
            if (e.ApplicationMessage.ConvertPayloadToString() == "online") Interlocked.Exchange(ref _announceAgain, 1);
            return Task.CompletedTask;
        }
        if (e.ApplicationMessage.Topic == Topics.SessionSet)
        {
            // Copy out and hand over: handlers publish replies, which must not run on the receive loop.
            var payload = e.ApplicationMessage.Payload;
            var bytes = payload.Length > SessionCommandParser.MaxPayloadBytes + 1
                ? payload.Slice(0, SessionCommandParser.MaxPayloadBytes + 1).ToArray()
                : payload.ToArray();
            _commands.Writer.TryWrite(bytes);
        }
        return Task.CompletedTask;
    }

    private Task OnDisconnectedAsync(MqttClientDisconnectedEventArgs e)
    {
        if (Interlocked.CompareExchange(ref _state, (int)ConnectionState.Disconnected, (int)ConnectionState.Connected) == (int)ConnectionState.Connected)
            _logger.LogWarning("MQTT connection lost ({Reason}); {Count} messages wait in the outbox", e.Reason, _outbox.Count);
        Signal(_connectionLost);
        return Task.CompletedTask;
    }

    private async Task ForceDisconnectAsync()
    {
        if (!_client.IsConnected) return;
        try { await _client.DisconnectAsync(new MqttClientDisconnectOptions(), CancellationToken.None).ConfigureAwait(false); }
        catch (Exception ex) { _logger.LogDebug(ex, "Disconnect after a failed connect failed"); }
    }

    private static void Signal(SemaphoreSlim signal)
    {
        if (signal.CurrentCount == 0)
        {
            try { signal.Release(); }
            catch (SemaphoreFullException) { }
        }
    }

    private static TimeSpan Jitter(TimeSpan delay) => delay * (0.8 + 0.4 * Random.Shared.NextDouble());

    private static MqttApplicationMessage Message(string topic, byte[] payload, bool retain, int qos) =>
        new MqttApplicationMessageBuilder()
            .WithTopic(topic)
            .WithPayload(payload)
            .WithRetainFlag(retain)
            .WithQualityOfServiceLevel((MqttQualityOfServiceLevel)qos)
            .Build();
}
