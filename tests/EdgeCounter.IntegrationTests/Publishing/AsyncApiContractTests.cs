using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using EdgeCounter.Hosting;
using EdgeCounter.IntegrationTests.Service;
using Json.Schema;
using Xunit.Abstractions;
using YamlDotNet.RepresentationModel;

namespace EdgeCounter.IntegrationTests.Publishing;

/// <summary>
/// docs/asyncapi.yaml is the MQTT API as a contract: the AsyncAPI CLI (npm, tests/asyncapi) says it is a valid
/// AsyncAPI 3.0 document, and every message a running service publishes, on every channel it documents, matches the
/// channel's payload schema (which forbids properties it does not name, so the document cannot fall behind).
/// </summary>
public sealed partial class AsyncApiContractTests(ITestOutputHelper output)
{
    private static readonly string Root = FindRoot();
    private static readonly string Document = Path.Combine(Root, "docs", "asyncapi.yaml");

    [Fact]
    public async Task The_contract_is_a_valid_AsyncAPI_3_document_and_a_broken_one_is_refused()
    {
        var (ok, okText) = await ValidateAsync(Document);
        Assert.True(ok, $"asyncapi validate refused docs/asyncapi.yaml:\n{okText}");
        Assert.Equal("3.0.0", Load()["asyncapi"]!.GetValue<string>());

        // The validator is not a rubber stamp: an operation that is neither send nor receive is an error.
        var broken = Path.Combine(Path.GetTempPath(), $"asyncapi-broken-{Guid.NewGuid():N}.yaml");
        try
        {
            await File.WriteAllTextAsync(broken, (await File.ReadAllTextAsync(Document)).Replace("action: send", "action: publish"));
            var (refused, text) = await ValidateAsync(broken);
            Assert.False(refused, "a document with an unknown operation action was accepted");
            Assert.Contains("action", text);
        }
        finally
        {
            File.Delete(broken);
        }
    }

    [Fact]
    public async Task Every_message_the_service_publishes_matches_its_channel_in_the_contract()
    {
        var contract = Load();
        var channels = Channels(contract);
        var port = FreePort.Next();
        var state = Directory.CreateTempSubdirectory("edgecounter-asyncapi-").FullName;
        try
        {
            using var host = ServiceHost.Build(ServiceEndToEndTests.Args(port, state));
            await host.StartAsync();
            const string p = "edgecounter/scope-test";
            await using var device = await RecordingSubscriber.ConnectAsync(port, $"{p}/#");
            await using var discovery = await RecordingSubscriber.ConnectAsync(port, "homeassistant/#");
            await device.WaitForCountAsync(m => m.Topic == $"{p}/field", 3, TimeSpan.FromSeconds(90), "field");
            await device.WaitForAsync(m => m.Topic == $"{p}/stats", TimeSpan.FromSeconds(30), "stats");
            await device.WaitForAsync(m => m.Topic == $"{p}/slide/image", TimeSpan.FromSeconds(30), "slide map");
            // A refused command, then a good one: session/error and session/state.
            await device.PublishAsync($"{p}/session/set", "{\"action\":\"jump\"}"u8.ToArray());
            await device.WaitForAsync(m => m.Topic == $"{p}/session/error", TimeSpan.FromSeconds(30), "session error");
            // Review: a rejected cell (session/correction), then sign-off (report).
            await device.PublishAsync($"{p}/session/set", "{\"action\":\"reject\",\"cellId\":1,\"reviewer\":\"A. Tech\"}"u8.ToArray());
            await device.WaitForAsync(m => m.Topic == $"{p}/session/correction", TimeSpan.FromSeconds(30), "session correction");
            await device.PublishAsync($"{p}/session/set", "{\"action\":\"finalize\",\"reviewer\":\"Dr B\"}"u8.ToArray());
            await device.WaitForAsync(m => m.Topic == $"{p}/report", TimeSpan.FromSeconds(30), "report");
            await device.PublishAsync($"{p}/session/set", "{\"action\":\"start\",\"sampleId\":\"S-7\",\"target\":50}"u8.ToArray());
            await device.WaitForAsync(m => m.Topic == $"{p}/session/state" && m.Text.Contains("S-7"), TimeSpan.FromSeconds(30), "session state");
            await discovery.WaitForAsync(m => m.Topic.StartsWith("homeassistant/button/", StringComparison.Ordinal), TimeSpan.FromSeconds(30), "discovery");
            await host.StopAsync();

            var seen = new Dictionary<string, int>();
            foreach (var message in device.Messages.Concat(discovery.Messages))
            {
                var channel = channels.SingleOrDefault(c => c.Address.IsMatch(message.Topic));
                Assert.True(channel is not null, $"{message.Topic} is published but not in docs/asyncapi.yaml");
                seen[channel!.Name] = seen.GetValueOrDefault(channel.Name) + 1;
                // The commands this test sent are checked too (the receive side), except the one meant to be refused.
                if (channel.Name == "sessionSet" && message.Text.Contains("jump", StringComparison.Ordinal)) continue;
                var problems = Check(channel, message.Payload);
                Assert.True(problems.Count == 0, $"{message.Topic} does not match channel {channel.Name}: {string.Join("; ", problems)}\n{message.Text[..Math.Min(600, message.Text.Length)]}");
            }
            output.WriteLine(string.Join(", ", seen.OrderBy(s => s.Key).Select(s => $"{s.Key} {s.Value}")));
            // Every channel the service sends on was seen, and so the whole contract was checked.
            foreach (var name in new[] { "available", "field", "fieldImage", "slideImage", "counts", "countOfLabel", "sessionSet", "sessionState", "sessionError", "sessionCorrection", "report", "reportFhir", "stats", "homeAssistantConfig" })
                Assert.True(seen.ContainsKey(name), $"no message on {name}");
        }
        finally
        {
            Directory.Delete(state, true);
        }
    }

    [Fact]
    public async Task In_marrow_mode_the_counts_session_state_and_report_match_the_contract()
    {
        var channels = Channels(Load());
        var port = FreePort.Next();
        var state = Directory.CreateTempSubdirectory("edgecounter-asyncapi-marrow-").FullName;
        try
        {
            using var host = ServiceHost.Build(ServiceEndToEndTests.Args(port, state, "--EdgeCounter:Counting:Mode=marrow", "--EdgeCounter:Source:Simulator:Profile=marrow"));
            await host.StartAsync();
            const string p = "edgecounter/scope-test";
            await using var device = await RecordingSubscriber.ConnectAsync(port, $"{p}/#");
            await device.WaitForAsync(m => m.Topic == $"{p}/counts" && m.Text.Contains("\"nucleatedCells\":", StringComparison.Ordinal)
                && !m.Text.Contains("\"nucleatedCells\":0", StringComparison.Ordinal), TimeSpan.FromSeconds(90), "marrow counts");
            await device.PublishAsync($"{p}/session/set", "{\"action\":\"finalize\",\"reviewer\":\"Dr B\"}"u8.ToArray());
            await device.WaitForAsync(m => m.Topic == $"{p}/report", TimeSpan.FromSeconds(30), "report");
            await host.StopAsync();

            foreach (var name in new[] { "counts", "sessionState", "report" })
            {
                var channel = channels.Single(c => c.Name == name);
                var messages = device.Messages.Where(m => channel.Address.IsMatch(m.Topic)).ToList();
                Assert.NotEmpty(messages);
                foreach (var message in messages)
                {
                    Assert.Contains("\"marrow\":{", message.Text, StringComparison.Ordinal);
                    var problems = Check(channel, message.Payload);
                    Assert.True(problems.Count == 0, $"{message.Topic} does not match channel {name}: {string.Join("; ", problems)}\n{message.Text[..Math.Min(600, message.Text.Length)]}");
                }
            }
        }
        finally
        {
            Directory.Delete(state, true);
        }
    }

    [Fact]
    public void The_schemas_refuse_what_the_service_must_not_send_and_the_documented_command_passes()
    {
        var channels = Channels(Load());
        var set = channels.Single(c => c.Name == "sessionSet");
        Assert.Empty(Check(set, "{\"action\":\"start\",\"sampleId\":\"S-1\",\"target\":200}"u8.ToArray()));
        Assert.NotEmpty(Check(set, "{\"action\":\"start\",\"target\":0}"u8.ToArray()));
        Assert.NotEmpty(Check(set, "{\"action\":\"start\",\"colour\":\"red\"}"u8.ToArray()));
        var counts = channels.Single(c => c.Name == "counts");
        Assert.NotEmpty(Check(counts, "{\"sessionId\":\"s\",\"state\":\"paused\"}"u8.ToArray()));
        var available = channels.Single(c => c.Name == "available");
        Assert.Empty(Check(available, "offline"u8.ToArray()));
        Assert.NotEmpty(Check(available, "gone"u8.ToArray()));
        Assert.NotEmpty(Check(channels.Single(c => c.Name == "fieldImage"), "not a jpeg"u8.ToArray()));
    }

    private sealed record Channel(string Name, Regex Address, string ContentType, JsonSchema Schema);

    /// <summary>What is wrong with a payload on a channel: its schema's errors, or for images, not a JPEG.</summary>
    private static List<string> Check(Channel channel, byte[] payload)
    {
        if (channel.ContentType == "image/jpeg")
            return payload is [0xFF, 0xD8, ..] && payload[^2..] is [0xFF, 0xD9] ? [] : ["not a JPEG"];
        JsonElement instance;
        if (channel.ContentType == "text/plain") instance = JsonSerializer.SerializeToElement(System.Text.Encoding.UTF8.GetString(payload));
        else
        {
            try
            {
                instance = JsonDocument.Parse(payload).RootElement;
            }
            catch (JsonException e)
            {
                return [$"not JSON: {e.Message}"];
            }
        }
        var result = channel.Schema.Evaluate(instance, new EvaluationOptions { OutputFormat = OutputFormat.List, RequireFormatValidation = true });
        if (result.IsValid) return [];
        return (result.Details ?? [])
            .Where(d => d.Errors is { Count: > 0 })
            .SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Value}"))
            .DefaultIfEmpty("invalid")
            .ToList();
    }

    private static List<Channel> Channels(JsonObject contract)
    {
        var messages = contract["components"]!["messages"]!.AsObject();
        var list = new List<Channel>();
        foreach (var (name, node) in contract["channels"]!.AsObject())
        {
            var address = node!["address"]!.GetValue<string>();
            var pattern = "^" + string.Join("/", address.Split('/').Select(level => level.StartsWith('{') ? "[^/]+" : Regex.Escape(level))) + "$";
            var reference = node["messages"]!.AsObject().Single().Value!["$ref"]!.GetValue<string>();
            var message = messages[reference.Split('/')[^1]]!;
            var contentType = message["contentType"]?.GetValue<string>() ?? contract["defaultContentType"]!.GetValue<string>();
            list.Add(new Channel(name, new Regex(pattern, RegexOptions.CultureInvariant), contentType, JsonSchema.FromText(message["payload"]!.ToJsonString())));
        }
        return list;
    }

    private static JsonObject Load()
    {
        var yaml = new YamlStream();
        using (var reader = new StreamReader(Document)) yaml.Load(reader);
        return (JsonObject)ToJson(yaml.Documents[0].RootNode)!;
    }

    /// <summary>YAML to JSON with the YAML 1.2 core schema for plain scalars (true, 12, 0.5, null); quoted ones stay strings.</summary>
    private static JsonNode? ToJson(YamlNode node) => node switch
    {
        YamlMappingNode map => new JsonObject(map.Children.Select(c => KeyValuePair.Create(((YamlScalarNode)c.Key).Value!, ToJson(c.Value)))),
        YamlSequenceNode seq => new JsonArray(seq.Children.Select(ToJson).ToArray()),
        YamlScalarNode { Style: YamlDotNet.Core.ScalarStyle.Plain } s => s.Value switch
        {
            null or "" or "~" or "null" or "Null" or "NULL" => null,
            "true" or "True" or "TRUE" => JsonValue.Create(true),
            "false" or "False" or "FALSE" => JsonValue.Create(false),
            var v when Integer().IsMatch(v) => JsonValue.Create(long.Parse(v, CultureInfo.InvariantCulture)),
            var v when Float().IsMatch(v) => JsonValue.Create(double.Parse(v, CultureInfo.InvariantCulture)),
            var v => JsonValue.Create(v),
        },
        YamlScalarNode s => JsonValue.Create(s.Value),
        _ => throw new InvalidDataException($"unexpected YAML node {node.NodeType}"),
    };

    [GeneratedRegex(@"^[-+]?[0-9]+$")]
    private static partial Regex Integer();

    [GeneratedRegex(@"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")]
    private static partial Regex Float();

    /// <summary>Runs the pinned AsyncAPI CLI (installed by this project's build, tests/asyncapi) on a document.</summary>
    private static async Task<(bool Valid, string Output)> ValidateAsync(string path)
    {
        var cli = Path.Combine(Root, "tests", "asyncapi", "node_modules", ".bin", "asyncapi");
        Assert.True(File.Exists(cli), $"{cli} is missing: the test build installs it (npm ci in tests/asyncapi)");
        var start = new ProcessStartInfo(cli) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Path.Combine(Root, "tests", "asyncapi") };
        foreach (var a in new[] { "validate", path, "--fail-severity", "error" }) start.ArgumentList.Add(a);
        // No analytics, no config-file warnings: nothing outside is reachable here anyway.
        start.Environment["ASYNCAPI_METRICS"] = "false";
        start.Environment["SUPPRESS_NO_CONFIG_WARNING"] = "true";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode == 0, await stdout + await stderr);
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "EdgeCounter.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("EdgeCounter.sln not found above the test binaries");
    }
}
