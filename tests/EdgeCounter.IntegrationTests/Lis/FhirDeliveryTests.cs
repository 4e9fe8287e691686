using System.Collections.Concurrent;
using System.Net;
using System.Text;
using EdgeCounter.Hosting;
using EdgeCounter.IntegrationTests.Publishing;
using EdgeCounter.IntegrationTests.Reports;
using EdgeCounter.IntegrationTests.Service;
using EdgeCounter.Lis;
using EdgeCounter.Reporting;
using Hl7.Fhir.Serialization;
using Microsoft.Extensions.Hosting;

namespace EdgeCounter.IntegrationTests.Lis;

/// <summary>The FHIR export against a FHIR server stand-in on a real HTTP listener: a transaction POSTed as
/// application/fhir+json, retried after a server error and after a refusal (the longer wait), kept across a restart,
/// and the real service POSTing the Bundle of a signed session.</summary>
[Collection("Service")]
public sealed class FhirDeliveryTests : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private readonly string _state = Directory.CreateTempSubdirectory("edgecounter-fhir-").FullName;

    public void Dispose() => Directory.Delete(_state, recursive: true);

    /// <summary>Answers each POST with the next status of <paramref name="statuses"/> (then 200), keeping what it got.</summary>
    private sealed class FhirServerStandIn : IDisposable
    {
        private readonly HttpListener _listener = new();
        private readonly Queue<int> _statuses;
        public ConcurrentQueue<(string ContentType, string? Authorization, string Body, DateTime At)> Received { get; } = new();
        public string Url { get; }

        public FhirServerStandIn(params int[] statuses)
        {
            _statuses = new Queue<int>(statuses);
            Url = $"http://127.0.0.1:{FreePort.Next()}/fhir/";
            _listener.Prefixes.Add(Url);
            _listener.Start();
            _ = Task.Run(ServeAsync);
        }

        private async Task ServeAsync()
        {
            while (_listener.IsListening)
            {
                HttpListenerContext context;
                try { context = await _listener.GetContextAsync(); } catch (Exception e) when (e is HttpListenerException or ObjectDisposedException) { return; }
                using var reader = new StreamReader(context.Request.InputStream, Encoding.UTF8);
                Received.Enqueue((context.Request.ContentType ?? "", context.Request.Headers["Authorization"], await reader.ReadToEndAsync(), DateTime.UtcNow));
                int status;
                lock (_statuses) status = _statuses.Count > 0 ? _statuses.Dequeue() : 200;
                context.Response.StatusCode = status;
                var answer = status < 300 ? """{"resourceType":"Bundle","type":"transaction-response"}"""
                    : """{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"stand-in says no"}]}""";
                var bytes = Encoding.UTF8.GetBytes(answer);
                context.Response.ContentType = "application/fhir+json";
                await context.Response.OutputStream.WriteAsync(bytes);
                context.Response.Close();
            }
        }

        public void Dispose() => _listener.Close();
    }

    private FhirDelivery Delivery(string url) => new(new FhirOptions
    {
        Url = url, BearerToken = "secret-token", RetryInterval = TimeSpan.FromMilliseconds(200), RejectedRetryInterval = TimeSpan.FromMilliseconds(1500),
    }, _state);

    private static Task UntilAsync(Func<bool> condition, string what) => Eventually.UntilAsync(condition, what, Wait);

    [Fact]
    public async Task The_bundle_is_posted_retried_after_a_server_error_and_after_a_refusal_and_taken_once()
    {
        using var server = new FhirServerStandIn(503, 422);
        using var delivery = Delivery(server.Url);
        delivery.Enqueue(FhirReportTests.SignedReport());
        using var stop = new CancellationTokenSource();
        var running = delivery.RunAsync(stop.Token);
        await UntilAsync(() => delivery.Delivered == 1 && delivery.Pending == 0, "taken on the third try");
        await stop.CancelAsync();
        await running;

        var posts = server.Received.ToArray();
        Assert.Equal(3, posts.Length);
        Assert.All(posts, p => Assert.StartsWith("application/fhir+json", p.ContentType));
        Assert.All(posts, p => Assert.Equal("Bearer secret-token", p.Authorization));
        Assert.Single(posts.Select(p => p.Body).Distinct()); // the same Bundle each time
        // After the refusal (422) the next try waits the longer interval; after the server error (503), the shorter one.
        Assert.True(posts[2].At - posts[1].At >= TimeSpan.FromMilliseconds(1400), $"{(posts[2].At - posts[1].At).TotalMilliseconds} ms after the refusal");
        Assert.True(posts[1].At - posts[0].At < TimeSpan.FromMilliseconds(1400), $"{(posts[1].At - posts[0].At).TotalMilliseconds} ms after the server error");
        var bundle = new FhirJsonDeserializer().Deserialize<Hl7.Fhir.Model.Bundle>(posts[0].Body);
        Assert.Equal(Hl7.Fhir.Model.Bundle.BundleType.Transaction, bundle.Type);
    }

    [Fact]
    public async Task A_report_the_server_never_took_is_posted_by_the_next_start()
    {
        var unreachable = $"http://127.0.0.1:{FreePort.Next()}/fhir/";
        using (var first = Delivery(unreachable))
        {
            first.Enqueue(FhirReportTests.SignedReport());
            using var stop = new CancellationTokenSource();
            var running = first.RunAsync(stop.Token);
            await UntilAsync(() => first.LastError is not null, "the failure noted");
            await stop.CancelAsync();
            await running;
            Assert.Equal(1, first.Pending);
        }
        using var server = new FhirServerStandIn();
        using var second = Delivery(server.Url);
        Assert.Equal(1, second.Pending);
        using var stopSecond = new CancellationTokenSource();
        var sending = second.RunAsync(stopSecond.Token);
        await UntilAsync(() => second.Pending == 0, "posted after the restart");
        await stopSecond.CancelAsync();
        await sending;
        Assert.Contains("S-2026-0412", Assert.Single(server.Received).Body);
    }

    [Fact]
    public async Task The_service_posts_a_signed_session_to_the_configured_fhir_server()
    {
        using var server = new FhirServerStandIn();
        var port = FreePort.Next();
        using var host = ServiceHost.Build(ServiceEndToEndTests.Args(port, _state, $"--EdgeCounter:Report:Fhir:Url={server.Url}"));
        await host.StartAsync();
        await using var watcher = await RecordingSubscriber.ConnectAsync(port, "edgecounter/scope-test/#");
        await watcher.WaitForAsync(m => m.Topic == "edgecounter/scope-test/field", TimeSpan.FromSeconds(60), "a field");
        await watcher.PublishAsync("edgecounter/scope-test/session/set", """{"action":"finalize","reviewer":"Dr B"}"""u8.ToArray());
        await UntilAsync(() => !server.Received.IsEmpty, "the Bundle at the FHIR server");
        var published = await watcher.WaitForAsync(m => m.Topic == "edgecounter/scope-test/report/fhir", TimeSpan.FromSeconds(30), "P/report/fhir");
        Assert.Equal(published.Text, Assert.Single(server.Received).Body); // the same Bundle on MQTT and at the server
        await host.StopAsync();
    }
}
