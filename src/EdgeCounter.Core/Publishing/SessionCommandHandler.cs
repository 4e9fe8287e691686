using EdgeCounter.Counting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeCounter.Publishing;

/// <summary>Connects P/session/set to the counting service: valid commands change the session and are echoed on
/// P/session/state (retained) with new P/counts; anything else gets a reply on P/session/error and changes nothing.</summary>
public sealed class SessionCommandHandler : IDisposable
{
    private readonly CountingService _counting;
    private readonly MqttPublisher _publisher;
    private readonly TimeProvider _clock;
    private readonly ILogger _logger;
    private readonly ReportPublisher? _reports;

    /// <summary>Attaches to <see cref="MqttPublisher.SessionCommandReceived"/>.</summary>
    /// <param name="reports">Issues the report at finalize and at each amendment after it; null: none issued.</param>
    public SessionCommandHandler(CountingService counting, MqttPublisher publisher, TimeProvider? clock = null, ILogger<SessionCommandHandler>? logger = null,
        ReportPublisher? reports = null)
    {
        _reports = reports;
        _counting = counting ?? throw new ArgumentNullException(nameof(counting));
        _publisher = publisher ?? throw new ArgumentNullException(nameof(publisher));
        _clock = clock ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _publisher.SessionCommandReceived += HandleAsync;
    }

    /// <summary>Queues the current state and counts (retained), e.g. at service start so dashboards have them at once.</summary>
    public void PublishCurrentState()
    {
        var snapshot = _counting.Snapshot();
        _publisher.EnqueueSessionState(snapshot);
        _publisher.EnqueueCounts(snapshot);
    }

    public async Task HandleAsync(ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        var parsed = SessionCommandParser.Parse(payload.Span);
        if (!parsed.IsValid)
        {
            await RefuseAsync(parsed.Error!, payload, cancellationToken).ConfigureAwait(false);
            return;
        }

        var result = _counting.Apply(parsed.Command!);
        if (!result.Applied)
        {
            await RefuseAsync(result.Error!, payload, cancellationToken).ConfigureAwait(false);
            return;
        }
        _publisher.EnqueueSessionState(result.Counts);
        _publisher.EnqueueCounts(result.Counts);
        if (result.Correction is { } correction) _publisher.EnqueueCorrection(correction, result.Counts.SessionId);
        if (result.ResultChanged) _reports?.Issue(_counting.Review());
    }

    /// <summary>A command that changes nothing: said in the log and on P/session/error.</summary>
    private async Task RefuseAsync(string error, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        _logger.LogWarning("Session command refused: {Error}", error);
        var sent = await _publisher.PublishSessionErrorAsync(SessionErrorMessage.Create(error, payload.Span, _clock.GetUtcNow()), cancellationToken)
            .ConfigureAwait(false);
        if (!sent) _logger.LogWarning("Could not send the session error reply (not connected)");
    }

    public void Dispose() => _publisher.SessionCommandReceived -= HandleAsync;
}
