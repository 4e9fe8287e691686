using System.Text;
using System.Text.Json.Nodes;
using EdgeCounter.Counting;

namespace EdgeCounter.Publishing;

/// <summary>One retained MQTT message.</summary>
public sealed record RetainedMessage(string Topic, byte[] Payload);

/// <summary>
/// Home Assistant MQTT discovery (docs/mqtt.md "Home Assistant"): one device per microscope, with a sensor per label,
/// per report group and per differential label (read from the retained P/counts), the session's state, progress and
/// sample id, the latest field and the slide map as image entities, buttons that send start/stop/reset, and a text
/// entity that starts a session with the sample id typed in. Every entity reads P/available so that both "stopped"
/// and "offline" show as unavailable (Home Assistant knows only one payload for each). Pure: builds the messages.
/// </summary>
public static class HomeAssistantDiscovery
{
    public static IReadOnlyList<RetainedMessage> Messages(string discoveryPrefix, TopicMap topics, string deviceId, CountingCatalog catalog,
        string modelName, string softwareVersion)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(discoveryPrefix);
        ArgumentNullException.ThrowIfNull(topics);
        ArgumentNullException.ThrowIfNull(catalog);
        var node = "edgecounter_" + ObjectId(deviceId);
        var device = new JsonObject
        {
            ["identifiers"] = new JsonArray(node),
            ["name"] = $"EdgeCounter {deviceId}",
            ["manufacturer"] = "EdgeCounter",
            ["model"] = modelName,
            ["sw_version"] = softwareVersion,
        };
        var messages = new List<RetainedMessage>();

        void Add(string component, string objectId, string name, JsonObject config)
        {
            config["name"] = name;
            config["unique_id"] = $"{node}_{objectId}";
            config["object_id"] = $"{node}_{objectId}";
            config["device"] = device.DeepClone();
            config["availability_topic"] = topics.Available;
            // "online" is available; "stopped" (clean shutdown) and "offline" (last will) are not.
            config["availability_template"] = "{{ 'online' if value == 'online' else 'offline' }}";
            config["payload_available"] = "online";
            config["payload_not_available"] = "offline";
            messages.Add(new RetainedMessage($"{discoveryPrefix}/{component}/{node}/{objectId}/config", Encoding.UTF8.GetBytes(config.ToJsonString(PublishingJson.Options))));
        }

        JsonObject CountSensor(string expression, string unit) => new()
        {
            ["state_topic"] = topics.Counts,
            ["value_template"] = "{{ " + expression + " }}",
            ["unit_of_measurement"] = unit,
            ["state_class"] = "measurement",
        };

        foreach (var label in catalog.Labels)
            Add("sensor", "count_" + ObjectId(label), label, CountSensor($"value_json.totals['{label}'] | default(0)", "cells"));
        foreach (var group in catalog.GroupOrder)
            Add("sensor", "group_" + ObjectId(group), $"{group} (group)", CountSensor($"value_json.groups['{group}'] | default(0)", "cells"));
        foreach (var label in catalog.DifferentialLabels)
            Add("sensor", "differential_" + ObjectId(label), $"{label} %", CountSensor($"value_json.differential['{label}'] | default(0)", "%"));
        Add("sensor", "fields", "Fields counted", CountSensor("value_json.fields", "fields"));
        Add("sensor", "progress", "Progress", CountSensor("(value_json.progress * 100) | round(1)", "%"));
        Add("sensor", "session_state", "Session state", new JsonObject { ["state_topic"] = topics.SessionState, ["value_template"] = "{{ value_json.state }}" });
        Add("sensor", "sample_id", "Sample id", new JsonObject { ["state_topic"] = topics.SessionState, ["value_template"] = "{{ value_json.sampleId }}" });
        Add("image", "field", "Latest field", new JsonObject { ["image_topic"] = topics.FieldImage, ["content_type"] = "image/jpeg" });
        Add("image", "slide_map", "Slide map", new JsonObject { ["image_topic"] = topics.SlideImage, ["content_type"] = "image/jpeg" });
        foreach (var action in new[] { "start", "stop", "reset" })
            Add("button", action, $"{char.ToUpperInvariant(action[0])}{action[1..]} session", new JsonObject
            {
                ["command_topic"] = topics.SessionSet,
                ["payload_press"] = $"{{\"action\":\"{action}\"}}",
            });
        // Typing a sample id starts a new session for it (the target stays the default).
        Add("text", "start_sample", "Start sample", new JsonObject
        {
            ["command_topic"] = topics.SessionSet,
            ["command_template"] = "{\"action\":\"start\",\"sampleId\":{{ value | tojson }}}",
            ["state_topic"] = topics.SessionState,
            ["value_template"] = "{{ value_json.sampleId }}",
            ["min"] = 1,
            ["max"] = 64,
        });
        return messages;
    }

    /// <summary>Home Assistant ids allow [a-zA-Z0-9_-]; anything else becomes '_'.</summary>
    public static string ObjectId(string name)
    {
        var sb = new StringBuilder(name.Length);
        foreach (var c in name) sb.Append(char.IsAsciiLetterOrDigit(c) || c is '_' or '-' ? char.ToLowerInvariant(c) : '_');
        return sb.ToString();
    }
}
