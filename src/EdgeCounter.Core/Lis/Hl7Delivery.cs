using System.Net.Sockets;
using System.Text;
using EdgeCounter.Publishing;
using EdgeCounter.Reporting;
using EdgeCounter.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeCounter.Lis;

/// <summary>
/// Delivers issued reports to the LIS as ORU^R01 over MLLP, at least once and in the order they were issued (an
/// amendment's C never overtakes its final F). Each message is formatted once, at <see cref="Enqueue"/>, and kept in a
/// durable queue (an <see cref="Outbox"/>: SQLite, hl7-outbox.db in the state directory) until the LIS answers AA (or
/// CA); a retry resends the same text with the same control id, so the LIS can recognise a repeat. AE, no answer
/// or no connection: tried again after <see cref="Hl7Options.RetryInterval"/>; AR: after the longer
/// <see cref="Hl7Options.RejectedRetryInterval"/>. The head of the queue blocks those behind it, to keep the order.
/// </summary>
public sealed class Hl7Delivery : IDisposable
{
    public const string QueueFileName = "hl7-outbox.db";
    private const int MaxQueuedMessages = 10_000;
    private const long MaxQueuedBytes = 64L * 1024 * 1024;

    private readonly Hl7Options _options;
    private readonly string _sendingFacility;
    private readonly Outbox _queue;
    private readonly TimeProvider _clock;
    private readonly Func<string> _newControlId;
    private readonly ILogger _logger;
    private TaskCompletionSource _wake = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _delivered;
    private string? _lastError;

    /// <param name="sendingFacility">MSH-4 when <see cref="Hl7Options.SendingFacility"/> is empty (the service passes its device id).</param>
    /// <param name="newControlId">Makes MSH-10; default: 20 random hex digits (unique, and within v2's oldest length limit).</param>
    public Hl7Delivery(Hl7Options options, string sendingFacility, string stateDirectory, TimeProvider? clock = null, ILoggerFactory? loggers = null,
        StorageMonitor? storage = null, Func<string>? newControlId = null)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        ArgumentException.ThrowIfNullOrWhiteSpace(stateDirectory);
        _sendingFacility = string.IsNullOrWhiteSpace(options.SendingFacility) ? sendingFacility : options.SendingFacility;
        _clock = clock ?? TimeProvider.System;
        _newControlId = newControlId ?? (() => Guid.NewGuid().ToString("N")[..20].ToUpperInvariant());
        loggers ??= NullLoggerFactory.Instance;
        _logger = loggers.CreateLogger<Hl7Delivery>();
        _queue = new Outbox(Path.Combine(stateDirectory, QueueFileName), MaxQueuedMessages, MaxQueuedBytes, loggers.CreateLogger<Outbox>(), storage,
            clock: _clock, writer: "the HL7 queue");
        if (_queue.Count > 0) _logger.LogInformation("HL7: {Count} result messages from before wait for {Host}:{Port}", _queue.Count, options.Host, options.Port);
    }

    /// <summary>Messages not yet acknowledged by the LIS.</summary>
    public int Pending => _queue.Count;

    /// <summary>Messages the LIS acknowledged since start.</summary>
    public long Delivered => Interlocked.Read(ref _delivered);

    /// <summary>Why the last attempt failed; null once a message was delivered.</summary>
    public string? LastError => Volatile.Read(ref _lastError);

    /// <summary>Formats the report as ORU^R01 and queues it durably; returns its control id (MSH-10).</summary>
    public string Enqueue(SessionReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var controlId = _newControlId();
        var header = new Hl7MessageHeader(_options.SendingApplication, _sendingFacility, _options.ReceivingApplication, _options.ReceivingFacility,
            controlId, _clock.GetUtcNow());
        var text = Hl7OruMessage.Format(report, header);
        // The queue's "topic" holds the control id: what the ACK's MSA-2 must name.
        _queue.Enqueue(new OutboxMessage(controlId, Encoding.UTF8.GetBytes(text), Retain: false, OutboxKind.Result));
        _logger.LogInformation("HL7: ORU^R01 {ControlId} for sample {SampleId} (session {SessionId}, {Status}) queued for {Host}:{Port}",
            controlId, report.SampleId, report.SessionId, report.Amendments.Count > 0 ? "corrected" : "final", _options.Host, _options.Port);
        Interlocked.Exchange(ref _wake, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        return controlId;
    }

    /// <summary>Sends what is queued, oldest first, until cancelled; waits for new messages when none is left.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var wake = Volatile.Read(ref _wake).Task; // taken before the look, so an Enqueue meanwhile is not missed
                _queue.PersistPending();
                if (_queue.Peek(1) is not [var next])
                {
                    await wake.WaitAsync(cancellationToken).ConfigureAwait(false);
                    continue;
                }
                TimeSpan retryAfter;
                try
                {
                    retryAfter = await TryDeliverAsync(next, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // Whatever went wrong, the LIS export must not stop the service: the message stays queued.
                    _logger.LogError(e, "HL7: sending ORU^R01 {ControlId} failed unexpectedly; tried again in {Retry}", next.Message.Topic, _options.RetryInterval);
                    Volatile.Write(ref _lastError, e.Message);
                    retryAfter = _options.RetryInterval;
                }
                if (retryAfter > TimeSpan.Zero) await Task.Delay(retryAfter, _clock, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>One attempt; returns how long to wait before the next (zero: delivered, go on).</summary>
    private async Task<TimeSpan> TryDeliverAsync(OutboxEntry entry, CancellationToken cancellationToken)
    {
        var controlId = entry.Message.Topic;
        string answer;
        try
        {
            answer = await MllpClient.SendAsync(_options.Host, _options.Port, Encoding.UTF8.GetString(entry.Message.Payload), _options.AckTimeout,
                cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or IOException or SocketException)
        {
            return Failed(controlId, $"not delivered to {_options.Host}:{_options.Port}: {e.Message}", _options.RetryInterval);
        }
        var ack = Hl7Ack.Parse(answer);
        if (ack is null) return Failed(controlId, "the answer is not an HL7 ACK (no MSA segment)", _options.RetryInterval);
        if (ack.ControlId != controlId)
            return Failed(controlId, $"the ACK answers control id '{ack.ControlId}', not this message", _options.RetryInterval);
        if (ack.Accepted)
        {
            _queue.Remove(entry.Sequence);
            Interlocked.Increment(ref _delivered);
            Volatile.Write(ref _lastError, null);
            _logger.LogInformation("HL7: ORU^R01 {ControlId} acknowledged ({Code}) by {Host}:{Port}; {Pending} still queued",
                controlId, ack.Code, _options.Host, _options.Port, _queue.Count);
            return TimeSpan.Zero;
        }
        return ack.Rejected
            ? Failed(controlId, $"rejected by the LIS ({ack.Code}): {ack.Text ?? "no reason given"}", _options.RejectedRetryInterval)
            : Failed(controlId, $"error at the LIS ({ack.Code}): {ack.Text ?? "no reason given"}", _options.RetryInterval);
    }

    private TimeSpan Failed(string controlId, string error, TimeSpan retryAfter)
    {
        Volatile.Write(ref _lastError, error);
        _logger.LogWarning("HL7: ORU^R01 {ControlId} {Error}; tried again in {Retry} ({Pending} queued)", controlId, error, retryAfter, _queue.Count);
        return retryAfter;
    }

    public void Dispose() => _queue.Dispose();
}
