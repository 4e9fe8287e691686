using System.Security.Cryptography;
using System.Text;
using EdgeCounter.Counting;
using EdgeCounter.Hosting;
using EdgeCounter.Publishing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.StaticFiles;
using Microsoft.Extensions.Options;

namespace EdgeCounter.Web;

/// <summary>
/// The service's HTTP endpoints for hospital IT, served by Kestrel in the same process (docs/http.md): /healthz
/// (alive), /readyz (each check named; 503 when one fails), /metrics (Prometheus text) and /latest.jpg (the last
/// annotated field). They answer from the same figures as P/stats, so they work when MQTT is down. A port already
/// in use is logged and the service goes on counting without them.
/// </summary>
public sealed class WebEndpoints(
    PipelineMonitor monitor,
    MqttPublisher publisher,
    CountingService counting,
    FieldPublisher fields,
    CellCropStore crops,
    IOptions<EdgeCounterOptions> options,
    ILoggerFactory loggerFactory,
    TimeProvider clock,
    MQTTnet.AspNetCore.MqttWebSocketServerAdapter? mqttWebSockets = null) : IHostedService, IAsyncDisposable
{
    private readonly ILogger _logger = loggerFactory.CreateLogger<WebEndpoints>();
    private readonly ServiceMetrics _metrics = new();
    private WebApplication? _app;
    private Microsoft.Extensions.FileProviders.PhysicalFileProvider? _pages;

    /// <summary>The addresses Kestrel listens on (with the real port when 0 was asked for); empty when not serving.</summary>
    public IReadOnlyList<string> BoundUrls { get; private set; } = [];

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var web = options.Value.Web;
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(loggerFactory); // one log, the service's
        builder.WebHost.UseUrls(web.ParsedUrls().Select(u => u.ToString().TrimEnd('/')).ToArray());
        var app = builder.Build();
        if (mqttWebSockets is not null)
        {
            // The embedded broker, for browsers (MQTT over WebSockets, subprotocol "mqtt").
            app.UseWebSockets();
            app.Map("/mqtt", async (HttpContext context) =>
            {
                if (!context.WebSockets.IsWebSocketRequest)
                {
                    context.Response.StatusCode = StatusCodes.Status400BadRequest;
                    await context.Response.WriteAsync("MQTT over WebSockets: connect with a WebSocket, subprotocol mqtt.", context.RequestAborted);
                    return;
                }
                var subProtocol = MQTTnet.AspNetCore.MqttSubProtocolSelector.SelectSubProtocol(context.Request);
                using var socket = await context.WebSockets.AcceptWebSocketAsync(subProtocol);
                try
                {
                    await mqttWebSockets.RunWebSocketConnectionAsync(socket, context);
                }
                catch (Exception e) when (e is MQTTnet.Exceptions.MqttCommunicationException or System.Net.WebSockets.WebSocketException or OperationCanceledException)
                {
                    // A browser tab closed, or a refused client hung up: its connection is over, nothing else is.
                    _logger.LogDebug("MQTT WebSocket from {Remote} ended: {Error}", context.Connection.RemoteIpAddress, e.Message);
                }
            });
        }
        // The pages (wwwroot beside the binary): / this microscope, /ward every microscope on the broker.
        var wwwroot = Path.Combine(AppContext.BaseDirectory, "wwwroot");
        Microsoft.Extensions.FileProviders.IFileProvider pages = Directory.Exists(wwwroot)
            ? _pages = new Microsoft.Extensions.FileProviders.PhysicalFileProvider(wwwroot)
            : new Microsoft.Extensions.FileProviders.NullFileProvider(); // the page handlers then say what is missing
        app.UseStaticFiles(new StaticFileOptions { FileProvider = pages });
        app.MapGet("/", (HttpContext context) => Page(context, pages, "index.html"));
        app.MapGet("/ward", (HttpContext context) => Page(context, pages, "ward.html"));
        app.MapGet("/review", (HttpContext context) => Page(context, pages, "review.html"));
        app.MapGet("/config.json", (HttpContext context) => Json(context, StatusCodes.Status200OK, new
        {
            deviceId = options.Value.EffectiveDeviceId,
            topicPrefix = publisher.Topics.Prefix,
            mqttUrl = options.Value.Web.MqttWebSocketUrl.Length > 0 ? options.Value.Web.MqttWebSocketUrl : null,
            liveOverMqtt = mqttWebSockets is not null || options.Value.Web.MqttWebSocketUrl.Length > 0,
            // A browser on another machine gives the web token as its MQTT password (/mqtt of the embedded broker).
            credentialsRequired = mqttWebSockets is not null && !EmbeddedBroker.IsLocal(context.Connection.RemoteIpAddress),
        }));
        app.MapGet("/healthz", (HttpContext context) =>
            Json(context, StatusCodes.Status200OK, new { status = "alive", uptimeSeconds = Math.Round(monitor.Uptime.TotalSeconds, 1) }));
        app.MapGet("/readyz", (HttpContext context) =>
        {
            var report = Readiness.Of(Stats(), options.Value.Mqtt.OutboxMaxMessages);
            return Json(context, report.Ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable, report);
        });
        app.MapGet("/metrics", async (HttpContext context) =>
        {
            if (!Authorised(context)) return;
            var stats = Stats();
            _metrics.Update(stats, Readiness.Of(stats, options.Value.Mqtt.OutboxMaxMessages), counting.Snapshot());
            // Collected whole first (a few KB), then sent with its length in one write: a scraper or a `curl | grep -q`
            // that stops reading early never sees a half-written exposition.
            using var text = new MemoryStream();
            await _metrics.Registry.CollectAndExportAsTextAsync(text, context.RequestAborted);
            context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            context.Response.ContentLength = text.Length;
            await context.Response.Body.WriteAsync(text.GetBuffer().AsMemory(0, (int)text.Length), context.RequestAborted);
        });
        // The session as P/counts has it, for a page's first paint (before MQTT over WebSockets connects, or where a
        // proxy does not pass WebSockets) and for scripts; guarded like /metrics.
        app.MapGet("/counts.json", async (HttpContext context) =>
        {
            if (!Authorised(context)) return;
            await Json(context, StatusCodes.Status200OK, counting.Snapshot());
        });
        // The review gallery: the open session's counted cells (with their crops) and the labels a cell can be given.
        app.MapGet("/cells.json", async (HttpContext context) =>
        {
            if (!Authorised(context)) return;
            var review = counting.Review();
            var sessionId = review.Counts.SessionId;
            var cropped = crops.CroppedCells(sessionId);
            await Json(context, StatusCodes.Status200OK, new
            {
                sessionId,
                state = review.Counts.State,
                labels = counting.Catalog.Labels,
                cells = review.Cells.Where(c => c.Status != CellStatus.Moved).Select(c => new
                {
                    c.CellId, c.FieldId, c.Label, c.DetectedLabel, Score = Math.Round(c.Score, 3),
                    Status = c.Status == CellStatus.Rejected ? "rejected" : "counted",
                    Crop = cropped.Contains(c.CellId) ? $"/cells/{sessionId}/{c.CellId}.jpg" : null,
                }),
            });
        });
        app.MapGet("/cells/{sessionId}/{cellId:long}.jpg", async (HttpContext context, string sessionId, long cellId) =>
        {
            if (!Authorised(context)) return;
            if (crops.PathOf(sessionId, cellId) is not { } path)
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return;
            }
            context.Response.ContentType = "image/jpeg";
            context.Response.Headers.CacheControl = "private, max-age=86400"; // a cell's crop never changes
            await context.Response.SendFileAsync(path, context.RequestAborted);
        });
        app.MapGet("/latest.jpg", async (HttpContext context) =>
        {
            if (!Authorised(context)) return;
            if (fields.LatestImage is not { } jpeg)
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                await context.Response.WriteAsync("No field has been counted yet.", context.RequestAborted);
                return;
            }
            context.Response.ContentType = "image/jpeg";
            context.Response.Headers.CacheControl = "no-store";
            await context.Response.Body.WriteAsync(jpeg, context.RequestAborted);
        });
        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch (IOException e)
        {
            // Counting matters more than its web view: say so and go on without it.
            _logger.LogError("Web endpoints not served: {Urls}: {Reason}. Set EdgeCounter:Web:Urls to a free port (or Web:Enabled false); counting goes on",
                web.Urls, e.Message);
            await app.DisposeAsync();
            _pages?.Dispose();
            _pages = null;
            return;
        }
        _app = app;
        BoundUrls = app.Urls.ToList();
        _logger.LogInformation("Web endpoints on {Urls}: / /review /ward /healthz /readyz /metrics /counts.json /cells.json /latest.jpg{Mqtt}{Token}", string.Join(" ", BoundUrls),
            mqttWebSockets is null ? "" : " /mqtt (MQTT over WebSockets)",
            string.IsNullOrEmpty(web.Token) ? "" : " (token required for /metrics, /counts.json, /cells.json, the crops and /latest.jpg)");
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_app is not null) await _app.StopAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null) await _app.DisposeAsync();
        _app = null;
        _pages?.Dispose();
        _pages = null;
    }

    private static async Task Page(HttpContext context, Microsoft.Extensions.FileProviders.IFileProvider pages, string name)
    {
        var file = pages.GetFileInfo(name);
        if (!file.Exists)
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            await context.Response.WriteAsync($"{name} is not beside the binary (wwwroot/): build src/EdgeCounter again.", context.RequestAborted);
            return;
        }
        context.Response.ContentType = "text/html; charset=utf-8";
        context.Response.Headers.CacheControl = "no-cache";
        await context.Response.SendFileAsync(file, context.RequestAborted);
    }

    private static async Task Json<T>(HttpContext context, int status, T body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        context.Response.Headers.CacheControl = "no-store";
        await context.Response.Body.WriteAsync(PublishingJson.Serialize(body), context.RequestAborted);
    }

    private StatsMessage Stats() =>
        StatsMessage.Create(monitor.Stats(options.Value.StuckDetectionAfter), publisher.GetStats(), clock.GetUtcNow());

    private bool Authorised(HttpContext context)
    {
        if (options.Value.Web.Token is not { Length: > 0 } token) return true;
        var given = context.Request.Headers.Authorization.ToString();
        var expected = "Bearer " + token;
        if (CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(given), Encoding.UTF8.GetBytes(expected))) return true;
        context.Response.StatusCode = StatusCodes.Status401Unauthorized;
        context.Response.Headers.WWWAuthenticate = "Bearer";
        return false;
    }
}
