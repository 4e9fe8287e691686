using System.Net;
using System.Net.Http.Headers;
using System.Text;
using EdgeCounter.Publishing;
using EdgeCounter.Reporting;
using EdgeCounter.Storage;
using Microsoft.Extensions.Logging;

namespace EdgeCounter.Lis;

/// <summary>
/// POSTs each issued report to a FHIR server (<see cref="FhirOptions.Url"/>) as the transaction Bundle of
/// <see cref="FhirReport"/> (<see cref="ReportDelivery"/>: durable, in order, at least once; the queue is
/// fhir-outbox.db in the state directory). Its entries are conditional updates, so a repeat after a lost answer
/// changes nothing on the server. 2xx: taken; 408, 429, 5xx, no answer: tried again after
/// <see cref="FhirOptions.RetryInterval"/>; any other 4xx: refused, tried again after the longer interval.
/// </summary>
public sealed class FhirDelivery(FhirOptions options, string stateDirectory, TimeProvider? clock = null, ILoggerFactory? loggers = null,
    StorageMonitor? storage = null, HttpMessageHandler? handler = null)
    : ReportDelivery(new FhirTransport(options, handler), Path.Combine(stateDirectory, QueueFileName), options.RetryInterval, options.RejectedRetryInterval,
        clock, loggers, storage)
{
    public const string QueueFileName = "fhir-outbox.db";
}

internal sealed class FhirTransport(FhirOptions options, HttpMessageHandler? handler) : IReportTransport
{
    private readonly HttpClient _http = new(handler ?? new SocketsHttpHandler { ConnectTimeout = options.Timeout }) { Timeout = options.Timeout };

    public string Name => "FHIR Bundle";

    public string Destination => options.Url;

    public OutboxMessage Prepare(SessionReport report) =>
        new($"{report.SessionId}@{report.IssuedAt.UtcDateTime:yyyyMMdd'T'HHmmss'Z'}", Encoding.UTF8.GetBytes(FhirReport.ToJson(report)), Retain: false, OutboxKind.Result);

    public async Task<DeliveryAttempt> SendAsync(OutboxMessage message, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, options.Url) { Content = new ByteArrayContent(message.Payload) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/fhir+json") { CharSet = "utf-8" };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/fhir+json"));
        if (options.BearerToken.Length > 0) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", options.BearerToken);
        try
        {
            using var response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
            if (response.IsSuccessStatusCode) return DeliveryAttempt.Done;
            var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            var why = $"HTTP {(int)response.StatusCode} from {options.Url}: {(body.Length > 300 ? body[..300] + "…" : body)}";
            var retryable = response.StatusCode is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests || (int)response.StatusCode >= 500;
            return DeliveryAttempt.Failed(why, rejected: !retryable);
        }
        catch (Exception e) when (e is HttpRequestException or IOException || e is TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return DeliveryAttempt.Failed($"not delivered to {options.Url}: {e.Message}");
        }
    }
}
