using EdgeCounter.Publishing;
using EdgeCounter.Reporting;
using EdgeCounter.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeCounter.Lis;

/// <summary>One attempt's outcome. <paramref name="Rejected"/>: the receiver refused the message itself (a person has
/// to act there), so the next try waits the longer interval.</summary>
public readonly record struct DeliveryAttempt(bool Delivered, string? Error = null, bool Rejected = false)
{
    public static DeliveryAttempt Done => new(true);
    public static DeliveryAttempt Failed(string error, bool rejected = false) => new(false, error, rejected);
}

/// <summary>How one kind of lab system receives a report: the message is made once (<see cref="Prepare"/>) and sent as
/// often as it takes (<see cref="SendAsync"/>).</summary>
public interface IReportTransport
{
    /// <summary>For the log: what is sent, e.g. "HL7 ORU^R01".</summary>
    string Name { get; }

    /// <summary>For the log: where it goes.</summary>
    string Destination { get; }

    /// <summary>The message for a report; its <see cref="OutboxMessage.Topic"/> is the message's key (an HL7 control id).</summary>
    OutboxMessage Prepare(SessionReport report);

    Task<DeliveryAttempt> SendAsync(OutboxMessage message, CancellationToken cancellationToken);
}

/// <summary>
/// Delivers issued reports to a lab system at least once and in the order they were issued (an amendment never
/// overtakes the result it corrects). Each message is made once, at <see cref="Enqueue"/>, and kept in a durable queue
/// (an <see cref="Outbox"/>: SQLite in the state directory) until the receiver takes it; a retry resends the same bytes,
/// so the receiver can recognise a repeat. A failure is tried again after the retry interval, a rejection after the
/// longer one. The head of the queue blocks those behind it, to keep the order.
/// </summary>
public class ReportDelivery : IDisposable
{
    private const int MaxQueuedMessages = 10_000;
    private const long MaxQueuedBytes = 64L * 1024 * 1024;

    private readonly IReportTransport _transport;
    private readonly TimeSpan _retry, _rejectedRetry;
    private readonly Outbox _queue;
    private readonly TimeProvider _clock;
    private readonly ILogger _logger;
    private TaskCompletionSource _wake = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _delivered;
    private string? _lastError;

    public ReportDelivery(IReportTransport transport, string queuePath, TimeSpan retryInterval, TimeSpan rejectedRetryInterval, TimeProvider? clock = null,
        ILoggerFactory? loggers = null, StorageMonitor? storage = null)
    {
        _transport = transport ?? throw new ArgumentNullException(nameof(transport));
        ArgumentException.ThrowIfNullOrWhiteSpace(queuePath);
        (_retry, _rejectedRetry) = (retryInterval, rejectedRetryInterval);
        _clock = clock ?? TimeProvider.System;
        loggers ??= NullLoggerFactory.Instance;
        _logger = loggers.CreateLogger(GetType());
        _queue = new Outbox(queuePath, MaxQueuedMessages, MaxQueuedBytes, loggers.CreateLogger<Outbox>(), storage, clock: _clock,
            writer: $"the {transport.Name} queue");
        if (_queue.Count > 0) _logger.LogInformation("{Transport}: {Count} messages from before wait for {Destination}", transport.Name, _queue.Count, transport.Destination);
    }

    /// <summary>Messages the receiver has not taken yet.</summary>
    public int Pending => _queue.Count;

    /// <summary>Messages the receiver took since start.</summary>
    public long Delivered => Interlocked.Read(ref _delivered);

    /// <summary>Why the last attempt failed; null once a message was delivered.</summary>
    public string? LastError => Volatile.Read(ref _lastError);

    /// <summary>Makes the report's message and queues it durably; returns its key.</summary>
    public string Enqueue(SessionReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var message = _transport.Prepare(report);
        _queue.Enqueue(message);
        _logger.LogInformation("{Transport} {Key} for sample {SampleId} (session {SessionId}, {Status}) queued for {Destination}",
            _transport.Name, message.Topic, report.SampleId, report.SessionId, report.Amendments.Count > 0 ? "amended" : "final", _transport.Destination);
        Interlocked.Exchange(ref _wake, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        return message.Topic;
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
                DeliveryAttempt attempt;
                try
                {
                    attempt = await _transport.SendAsync(next.Message, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                {
                    // Whatever went wrong, the export must not stop the service: the message stays queued.
                    _logger.LogError(e, "{Transport} {Key}: sending failed unexpectedly", _transport.Name, next.Message.Topic);
                    attempt = DeliveryAttempt.Failed(e.Message);
                }
                if (attempt.Delivered)
                {
                    _queue.Remove(next.Sequence);
                    Interlocked.Increment(ref _delivered);
                    Volatile.Write(ref _lastError, null);
                    _logger.LogInformation("{Transport} {Key} taken by {Destination}; {Pending} still queued", _transport.Name, next.Message.Topic,
                        _transport.Destination, _queue.Count);
                    continue;
                }
                var retryAfter = attempt.Rejected ? _rejectedRetry : _retry;
                Volatile.Write(ref _lastError, attempt.Error);
                _logger.LogWarning("{Transport} {Key} {Error}; tried again in {Retry} ({Pending} queued)", _transport.Name, next.Message.Topic, attempt.Error,
                    retryAfter, _queue.Count);
                await Task.Delay(retryAfter, _clock, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    public void Dispose()
    {
        _queue.Dispose();
        GC.SuppressFinalize(this);
    }
}
