using EdgeCounter.Lis;

namespace EdgeCounter.Hosting;

/// <summary>Sends the queued reports to the lab's systems (Report:Hl7, Report:Fhir) in the background, each from its own
/// queue; registered only when one is configured. Stopping leaves what is not yet taken in the durable queues for the
/// next start.</summary>
public sealed class LisDeliveryService(IEnumerable<ReportDelivery> deliveries, ILogger<LisDeliveryService> logger) : BackgroundService
{
    private readonly IReadOnlyList<ReportDelivery> _deliveries = deliveries.ToArray();

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(_deliveries.Select(d => d.RunAsync(stoppingToken)));

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        foreach (var delivery in _deliveries.Where(d => d.Pending > 0))
            logger.LogWarning("{Pending} reports not yet taken by {Delivery} stay queued for the next start", delivery.Pending, delivery.GetType().Name);
    }
}
