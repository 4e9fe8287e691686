using System.Net;

namespace EdgeCounter.Web;

/// <summary>Configuration section "EdgeCounter:Web": the service's own HTTP endpoints for hospital IT (docs/http.md).</summary>
public sealed class WebOptions
{
    public const string SectionName = "Web";

    /// <summary>Serve /healthz, /readyz, /metrics and /latest.jpg.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Where to listen, separated by ';' (Kestrel URLs). Port 0 picks a free port (tests). Loopback by
    /// default: any other address needs <see cref="Token"/>.</summary>
    public string Urls { get; set; } = "http://127.0.0.1:8080";

    /// <summary>Bearer token that /metrics and /latest.jpg ask for (Authorization: Bearer ...); required when listening
    /// beyond loopback. /healthz and /readyz stay open (probes; they carry no patient data).</summary>
    public string? Token { get; set; }

    /// <summary>The MQTT WebSocket URL the pages connect to (e.g. wss://broker.ward.local:8084/mqtt for an external
    /// broker); empty: /mqtt on this service (embedded broker).</summary>
    public string MqttWebSocketUrl { get; set; } = "";

    public IReadOnlyList<Uri> ParsedUrls() =>
        Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(u => Uri.TryCreate(u, UriKind.Absolute, out var uri) ? uri : null).OfType<Uri>().ToList();

    /// <summary>Whether a URL's host is this machine only.</summary>
    public static bool IsLoopback(Uri url) =>
        url.IsLoopback || (IPAddress.TryParse(url.Host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (!Enabled) return errors;
        var parts = Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0) errors.Add("Web:Urls must name at least one URL (e.g. http://127.0.0.1:8080), or set Web:Enabled to false.");
        foreach (var part in parts)
        {
            if (!Uri.TryCreate(part, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https") || url.AbsolutePath != "/")
            {
                errors.Add($"Web:Urls: '{part}' is not an http(s)://host:port URL.");
                continue;
            }
            if (url.Scheme == "https") errors.Add($"Web:Urls: '{part}': https is not served (no certificate setting); use http on loopback behind a TLS proxy.");
            if (!IsLoopback(url) && string.IsNullOrEmpty(Token))
                errors.Add($"Web:Urls: '{part}' listens beyond this machine; set Web:Token so /metrics and /latest.jpg are not open to the network.");
        }
        if (MqttWebSocketUrl.Length > 0 && !(Uri.TryCreate(MqttWebSocketUrl, UriKind.Absolute, out var ws) && ws.Scheme is "ws" or "wss"))
            errors.Add($"Web:MqttWebSocketUrl: '{MqttWebSocketUrl}' is not a ws:// or wss:// URL.");
        if (Token is { Length: > 0 and < 16 }) errors.Add("Web:Token must be at least 16 characters.");
        return errors;
    }
}
