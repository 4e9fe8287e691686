using System.Net.Sockets;
using System.Text;
using EdgeCounter.Publishing;
using EdgeCounter.Reporting;
using EdgeCounter.Storage;
using Microsoft.Extensions.Logging;

namespace EdgeCounter.Lis;

/// <summary>
/// Delivers issued reports to the LIS as ORU^R01 over MLLP (<see cref="ReportDelivery"/>: durable, in order, at least
/// once; the queue is hl7-outbox.db in the state directory). The LIS has the message when it answers AA (or CA); a
/// retry resends the same text with the same control id. AE, no answer or no connection: tried again after
/// <see cref="Hl7Options.RetryInterval"/>; AR: after the longer <see cref="Hl7Options.RejectedRetryInterval"/>.
/// </summary>
public sealed class Hl7Delivery(Hl7Options options, string sendingFacility, string stateDirectory, TimeProvider? clock = null, ILoggerFactory? loggers = null,
    StorageMonitor? storage = null, Func<string>? newControlId = null)
    : ReportDelivery(new Hl7Transport(options, sendingFacility, clock ?? TimeProvider.System, newControlId), Path.Combine(stateDirectory, QueueFileName),
        options.RetryInterval, options.RejectedRetryInterval, clock, loggers, storage)
{
    public const string QueueFileName = "hl7-outbox.db";
}

/// <summary>ORU^R01 over MLLP: the message's queue key is its control id (MSH-10), which the ACK's MSA-2 must name.</summary>
/// <param name="sendingFacility">MSH-4 when <see cref="Hl7Options.SendingFacility"/> is empty (the service passes its device id).</param>
/// <param name="newControlId">Makes MSH-10; default: 20 random hex digits (unique, and within v2's oldest length limit).</param>
internal sealed class Hl7Transport(Hl7Options options, string sendingFacility, TimeProvider clock, Func<string>? newControlId) : IReportTransport
{
    private readonly Func<string> _newControlId = newControlId ?? (() => Guid.NewGuid().ToString("N")[..20].ToUpperInvariant());
    private readonly string _sendingFacility = string.IsNullOrWhiteSpace(options.SendingFacility) ? sendingFacility : options.SendingFacility;

    public string Name => "HL7 ORU^R01";

    public string Destination => $"{options.Host}:{options.Port}";

    public OutboxMessage Prepare(SessionReport report)
    {
        var controlId = _newControlId();
        var header = new Hl7MessageHeader(options.SendingApplication, _sendingFacility, options.ReceivingApplication, options.ReceivingFacility,
            controlId, clock.GetUtcNow());
        return new OutboxMessage(controlId, Encoding.UTF8.GetBytes(Hl7OruMessage.Format(report, header)), Retain: false, OutboxKind.Result);
    }

    public async Task<DeliveryAttempt> SendAsync(OutboxMessage message, CancellationToken cancellationToken)
    {
        string answer;
        try
        {
            answer = await MllpClient.SendAsync(options.Host, options.Port, Encoding.UTF8.GetString(message.Payload), options.AckTimeout, cancellationToken)
                .ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or IOException or SocketException)
        {
            return DeliveryAttempt.Failed($"not delivered to {Destination}: {e.Message}");
        }
        var ack = Hl7Ack.Parse(answer);
        if (ack is null) return DeliveryAttempt.Failed("the answer is not an HL7 ACK (no MSA segment)");
        if (ack.ControlId != message.Topic) return DeliveryAttempt.Failed($"the ACK answers control id '{ack.ControlId}', not this message");
        if (ack.Accepted) return DeliveryAttempt.Done;
        return ack.Rejected
            ? DeliveryAttempt.Failed($"rejected by the LIS ({ack.Code}): {ack.Text ?? "no reason given"}", rejected: true)
            : DeliveryAttempt.Failed($"error at the LIS ({ack.Code}): {ack.Text ?? "no reason given"}");
    }
}
