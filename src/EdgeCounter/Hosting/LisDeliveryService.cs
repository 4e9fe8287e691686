using EdgeCounter.Lis;
using Microsoft.Extensions.Options;

namespace EdgeCounter.Hosting;

/// <summary>Sends the queued HL7 result messages to the LIS (Report:Hl7) in the background; registered only when
/// Report:Hl7:Host is set. Stopping leaves what is unacknowledged in the durable queue for the next start.</summary>
public sealed class LisDeliveryService(Hl7Delivery delivery, IOptions<EdgeCounterOptions> options, ILogger<LisDeliveryService> logger) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var hl7 = options.Value.Report.Hl7;
        logger.LogInformation("HL7: reports go to the LIS at {Host}:{Port} as ORU^R01 over MLLP ({Pending} queued)", hl7.Host, hl7.Port, delivery.Pending);
        return delivery.RunAsync(stoppingToken);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        if (delivery.Pending > 0) logger.LogWarning("HL7: {Pending} result messages not yet acknowledged by the LIS stay queued for the next start", delivery.Pending);
    }
}
