using EdgeCounter.Counting;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text.Json;
using EdgeCounter.Hosting;
using EdgeCounter.IntegrationTests.Publishing;
using EdgeCounter.IntegrationTests.Service;
using EdgeCounter.Web;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MQTTnet;
using OpenCvSharp;

namespace EdgeCounter.IntegrationTests.Web;

/// <summary>The service's HTTP endpoints, on the real service (simulated microscope, shipped model, embedded broker),
/// asked by a real HTTP client.</summary>
[Collection("Service")]
public class WebEndpointsTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private static string BaseUrl(IHost host) => host.Services.GetRequiredService<WebEndpoints>().BoundUrls.Single();

    private static async Task<JsonElement> ReadyzAsync(HttpClient http, string url, HttpStatusCode expect, Func<JsonElement, bool>? until = null)
    {
        var deadline = DateTime.UtcNow + Patience;
        JsonElement last = default;
        HttpStatusCode status = 0;
        while (DateTime.UtcNow < deadline)
        {
            using var response = await http.GetAsync($"{url}/readyz");
            status = response.StatusCode;
            last = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
            if (status == expect && (until?.Invoke(last) ?? true)) return last;
            await Task.Delay(250);
        }
        throw new TimeoutException($"/readyz never answered {expect} as expected; last {status}: {last}");
    }

    private static JsonElement Check(JsonElement report, string name) =>
        report.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("name").GetString() == name);

    [Fact]
    public async Task Health_readiness_metrics_and_the_latest_image_are_served_while_the_service_counts()
    {
        var state = Directory.CreateTempSubdirectory("edgecounter-web-").FullName;
        try
        {
            using var host = ServiceHost.Build(ServiceEndToEndTests.Args(FreePort.Next(), state));
            await host.StartAsync();
            var url = BaseUrl(host);
            Assert.StartsWith("http://127.0.0.1:", url);
            using var http = new HttpClient();

            using (var alive = await http.GetAsync($"{url}/healthz"))
            {
                Assert.Equal(HttpStatusCode.OK, alive.StatusCode);
                Assert.Equal("alive", JsonDocument.Parse(await alive.Content.ReadAsStringAsync()).RootElement.GetProperty("status").GetString());
            }

            var ready = await ReadyzAsync(http, url, HttpStatusCode.OK);
            Assert.True(ready.GetProperty("ready").GetBoolean());
            Assert.Equal(["camera", "detector", "mqtt", "outbox", "storage"],
                ready.GetProperty("checks").EnumerateArray().Select(c => c.GetProperty("name").GetString()));
            Assert.All(ready.GetProperty("checks").EnumerateArray(), c => Assert.True(c.GetProperty("ok").GetBoolean()));

            // Once a field is counted, the metrics say so and the latest annotated field is a JPEG.
            var deadline = DateTime.UtcNow + Patience;
            string metrics;
            do
            {
                metrics = await http.GetStringAsync($"{url}/metrics");
                // The session counts a field before the pipeline's counter takes it (one scrape may fall between).
                if (Value(metrics, "edgecounter_session_fields") >= 1 && Value(metrics, "edgecounter_fields_processed_total") >= 1) break;
                await Task.Delay(250);
            } while (DateTime.UtcNow < deadline);
            Assert.True(Value(metrics, "edgecounter_session_fields") >= 1, metrics);
            Assert.True(Value(metrics, "edgecounter_fields_processed_total") >= 1);
            Assert.Equal(1, Value(metrics, "edgecounter_mqtt_connected"));
            Assert.Equal(0, Value(metrics, "edgecounter_mqtt_reconnects_total")); // the first connect is not a reconnect
            Assert.Equal(1, Value(metrics, "edgecounter_ready"));
            Assert.Equal(1, Value(metrics, "edgecounter_storage_state{state=\"ok\"}"));
            Assert.True(Value(metrics, "edgecounter_session_cells{label=\"RBC\"}") > 0);
            Assert.Contains("process_working_set_bytes", metrics);

            deadline = DateTime.UtcNow + Patience;
            HttpResponseMessage image;
            while ((image = await http.GetAsync($"{url}/latest.jpg")).StatusCode == HttpStatusCode.NotFound && DateTime.UtcNow < deadline)
            {
                image.Dispose();
                await Task.Delay(250);
            }
            using (image)
            {
                Assert.Equal(HttpStatusCode.OK, image.StatusCode);
                Assert.Equal("image/jpeg", image.Content.Headers.ContentType?.MediaType);
                using var decoded = Cv2.ImDecode(await image.Content.ReadAsByteArrayAsync(), ImreadModes.Color);
                Assert.False(decoded.Empty(), "/latest.jpg is not a decodable JPEG");
                Assert.True(decoded.Width >= 320);
            }
            await host.StopAsync();
        }
        finally { Directory.Delete(state, recursive: true); }
    }

    [Fact]
    public async Task Readyz_is_not_ready_and_names_mqtt_while_the_broker_is_down_and_metrics_still_answer()
    {
        var state = Directory.CreateTempSubdirectory("edgecounter-web-").FullName;
        try
        {
            // An external broker on a port nobody listens on.
            using var host = ServiceHost.Build(ServiceEndToEndTests.Args(FreePort.Next(), state,
                "--EdgeCounter:Mqtt:Mode=External", "--EdgeCounter:Mqtt:Host=127.0.0.1"));
            await host.StartAsync();
            var url = BaseUrl(host);
            using var http = new HttpClient();
            var report = await ReadyzAsync(http, url, HttpStatusCode.ServiceUnavailable, r => Check(r, "camera").GetProperty("ok").GetBoolean());
            Assert.False(report.GetProperty("ready").GetBoolean());
            Assert.False(Check(report, "mqtt").GetProperty("ok").GetBoolean());
            Assert.Contains("not connected", Check(report, "mqtt").GetProperty("detail").GetString());
            Assert.True(Check(report, "storage").GetProperty("ok").GetBoolean());
            var metrics = await http.GetStringAsync($"{url}/metrics");
            Assert.Equal(0, Value(metrics, "edgecounter_mqtt_connected"));
            Assert.Equal(0, Value(metrics, "edgecounter_ready_check{check=\"mqtt\"}"));
            await host.StopAsync();
        }
        finally { Directory.Delete(state, recursive: true); }
    }

    [Fact]
    public async Task With_a_token_metrics_and_the_image_refuse_a_request_without_it_while_probes_stay_open()
    {
        var state = Directory.CreateTempSubdirectory("edgecounter-web-").FullName;
        const string token = "a-long-enough-test-token";
        try
        {
            using var host = ServiceHost.Build(ServiceEndToEndTests.Args(FreePort.Next(), state, $"--EdgeCounter:Web:Token={token}"));
            await host.StartAsync();
            var url = BaseUrl(host);
            using var http = new HttpClient();
            using (var refused = await http.GetAsync($"{url}/metrics"))
            {
                Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
                Assert.Equal("Bearer", refused.Headers.WwwAuthenticate.Single().Scheme);
            }
            using (var wrong = new HttpRequestMessage(HttpMethod.Get, $"{url}/latest.jpg"))
            {
                wrong.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token + "x");
                using var response = await http.SendAsync(wrong);
                Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            }
            using (var right = new HttpRequestMessage(HttpMethod.Get, $"{url}/metrics"))
            {
                right.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
                using var response = await http.SendAsync(right);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                Assert.Contains("edgecounter_ready", await response.Content.ReadAsStringAsync());
            }
            // The counts snapshot (the pages' first paint) is guarded the same way, and is P/counts' JSON.
            using (var refused = await http.GetAsync($"{url}/counts.json")) Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            using (var right = new HttpRequestMessage(HttpMethod.Get, $"{url}/counts.json"))
            {
                right.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
                using var response = await http.SendAsync(right);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                var counts = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
                Assert.Equal(host.Services.GetRequiredService<CountingService>().Snapshot().SessionId, counts.GetProperty("sessionId").GetString());
                Assert.Equal("running", counts.GetProperty("state").GetString());
                Assert.True(counts.GetProperty("totals").TryGetProperty("RBC", out _));
            }
            using (var probe = await http.GetAsync($"{url}/healthz")) Assert.Equal(HttpStatusCode.OK, probe.StatusCode);
            await host.StopAsync();
        }
        finally { Directory.Delete(state, recursive: true); }
    }

    [Fact]
    public async Task A_web_port_already_taken_is_logged_and_the_service_goes_on_counting()
    {
        var state = Directory.CreateTempSubdirectory("edgecounter-web-").FullName;
        var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        try
        {
            var webPort = ((IPEndPoint)taken.LocalEndpoint).Port;
            var mqttPort = FreePort.Next();
            using var host = ServiceHost.Build(ServiceEndToEndTests.Args(mqttPort, state, $"--EdgeCounter:Web:Urls=http://127.0.0.1:{webPort}"));
            await host.StartAsync();
            Assert.Empty(host.Services.GetRequiredService<WebEndpoints>().BoundUrls);
            await using var watcher = await RecordingSubscriber.ConnectAsync(mqttPort, "edgecounter/scope-test/field");
            await watcher.WaitForAsync(m => m.Topic == "edgecounter/scope-test/field", Patience, "a counted field");
            await host.StopAsync();
        }
        finally
        {
            taken.Stop();
            Directory.Delete(state, recursive: true);
        }
    }

    [Fact]
    public async Task Browsers_reach_the_embedded_broker_over_websockets_at_mqtt_and_can_send_commands()
    {
        var state = Directory.CreateTempSubdirectory("edgecounter-web-").FullName;
        try
        {
            using var host = ServiceHost.Build(ServiceEndToEndTests.Args(FreePort.Next(), state));
            await host.StartAsync();
            var url = BaseUrl(host);
            using var client = new MQTTnet.MqttClientFactory().CreateMqttClient();
            var received = new System.Collections.Concurrent.ConcurrentQueue<(string Topic, string Text)>();
            client.ApplicationMessageReceivedAsync += e =>
            {
                received.Enqueue((e.ApplicationMessage.Topic, e.ApplicationMessage.ConvertPayloadToString()));
                return Task.CompletedTask;
            };
            await client.ConnectAsync(new MQTTnet.MqttClientOptionsBuilder()
                .WithWebSocketServer(o => o.WithUri(url.Replace("http://", "ws://") + "/mqtt")).WithClientId("browser-like").Build());
            await client.SubscribeAsync("edgecounter/scope-test/session/state");
            async Task<string> SessionIdAsync(Func<string, bool> accept)
            {
                var deadline = DateTime.UtcNow + Patience;
                while (DateTime.UtcNow < deadline)
                {
                    foreach (var (_, text) in received)
                        if (JsonDocument.Parse(text).RootElement.GetProperty("sessionId").GetString() is { } id && accept(id)) return id;
                    await Task.Delay(100);
                }
                throw new TimeoutException("no session state over the WebSocket");
            }
            var first = await SessionIdAsync(_ => true);              // the retained state
            await client.PublishStringAsync("edgecounter/scope-test/session/set", "{\"action\":\"start\",\"sampleId\":\"from-a-browser\"}");
            var second = await SessionIdAsync(id => id != first);
            Assert.NotEqual(first, second);
            Assert.Contains(received, m => m.Text.Contains("\"sampleId\":\"from-a-browser\""));
            await client.DisconnectAsync();
            await host.StopAsync();
        }
        finally { Directory.Delete(state, recursive: true); }
    }

    /// <summary>This machine's first non-loopback IPv4 address: what another machine on the ward network would reach.</summary>
    internal static System.Net.IPAddress NetworkAddress() =>
        System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
            .Where(n => n.OperationalStatus == System.Net.NetworkInformation.OperationalStatus.Up)
            .SelectMany(n => n.GetIPProperties().UnicastAddresses).Select(a => a.Address)
            .FirstOrDefault(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && !System.Net.IPAddress.IsLoopback(a))
        ?? throw new InvalidOperationException("this machine has no non-loopback IPv4 address to test from");

    [Fact]
    public async Task Beyond_loopback_a_websocket_client_must_give_the_web_token_and_an_unauthenticated_command_never_arrives()
    {
        const string token = "a-long-enough-test-token";
        var state = Directory.CreateTempSubdirectory("edgecounter-web-").FullName;
        try
        {
            using var host = ServiceHost.Build(ServiceEndToEndTests.Args(FreePort.Next(), state,
                "--EdgeCounter:Web:Urls=http://0.0.0.0:0", $"--EdgeCounter:Web:Token={token}"));
            await host.StartAsync();
            var port = new Uri(BaseUrl(host)).Port;
            // From the network address, as a browser on another machine would come.
            var mqttUrl = $"ws://{NetworkAddress()}:{port}/mqtt";
            MQTTnet.MqttClientOptions Options(string id, string? password) => new MQTTnet.MqttClientOptionsBuilder()
                .WithWebSocketServer(o => o.WithUri(mqttUrl)).WithClientId(id).WithCredentials("dashboard", password).Build();

            // MQTT 3.1.1 has one code for both (5, not authorized); the log says which.
            async Task<string> RefusalAsync(string id, string? password)
            {
                using var c = new MQTTnet.MqttClientFactory().CreateMqttClient();
                try
                {
                    var result = await c.ConnectAsync(Options(id, password));
                    return result.ResultCode.ToString();
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    return $"refused ({e.GetType().Name}: {e.Message})";
                }
            }
            Assert.NotEqual("Success", await RefusalAsync("no-token", null));
            Assert.NotEqual("Success", await RefusalAsync("wrong-token", "not-the-token-at-all"));

            // With the token: connected, and its command is applied.
            using var client = new MQTTnet.MqttClientFactory().CreateMqttClient();
            var states = new System.Collections.Concurrent.ConcurrentQueue<string>();
            client.ApplicationMessageReceivedAsync += e => { states.Enqueue(e.ApplicationMessage.ConvertPayloadToString()); return Task.CompletedTask; };
            await client.ConnectAsync(Options("with-token", token));
            await client.SubscribeAsync("edgecounter/scope-test/session/state");
            await client.PublishStringAsync("edgecounter/scope-test/session/set", "{\"action\":\"start\",\"sampleId\":\"remote-ok\"}");
            var deadline = DateTime.UtcNow + Patience;
            while (!states.Any(t => t.Contains("\"sampleId\":\"remote-ok\"")) && DateTime.UtcNow < deadline) await Task.Delay(100);
            Assert.Contains(states, t => t.Contains("\"sampleId\":\"remote-ok\""));
            await client.DisconnectAsync();

            // The pages tell a browser on another machine that it needs the token; one on this machine does not.
            using var http = new HttpClient();
            var remote = JsonDocument.Parse(await http.GetStringAsync($"http://{NetworkAddress()}:{port}/config.json")).RootElement;
            Assert.True(remote.GetProperty("credentialsRequired").GetBoolean());
            var local = JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{port}/config.json")).RootElement;
            Assert.False(local.GetProperty("credentialsRequired").GetBoolean());
            await host.StopAsync();
        }
        finally { Directory.Delete(state, recursive: true); }
    }

    [Theory]
    [InlineData("http://0.0.0.0:8080", null, "Token")]
    [InlineData("http://192.168.1.20:8080", "short", "at least 16")]
    [InlineData("ftp://127.0.0.1:21", null, "not an http")]
    [InlineData("https://127.0.0.1:8443", null, "https is not served")]
    public void Invalid_web_settings_are_a_start_error_naming_the_key(string urls, string? token, string named)
    {
        var args = new List<string> { $"--EdgeCounter:Web:Urls={urls}" };
        if (token is not null) args.Add($"--EdgeCounter:Web:Token={token}");
        var e = Assert.Throws<ConfigurationProblemException>(() => ServiceHost.Build([.. args]));
        Assert.Contains(e.Problems, p => p.Contains("EdgeCounter:Web:") && p.Contains(named));
    }

    [Fact]
    public void Loopback_names_are_loopback_and_others_are_not()
    {
        Assert.True(WebOptions.IsLoopback(new Uri("http://127.0.0.1:8080")));
        Assert.True(WebOptions.IsLoopback(new Uri("http://localhost:8080")));
        Assert.True(WebOptions.IsLoopback(new Uri("http://[::1]:8080")));
        Assert.False(WebOptions.IsLoopback(new Uri("http://0.0.0.0:8080")));
        Assert.False(WebOptions.IsLoopback(new Uri("http://10.0.0.5:8080")));
    }

    /// <summary>A sample's value from the Prometheus text (the line "name value").</summary>
    private static double Value(string metrics, string sample)
    {
        foreach (var line in metrics.Split('\n'))
            if (line.StartsWith(sample + " ", StringComparison.Ordinal))
                return double.Parse(line[(sample.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        return double.NaN;
    }
}
