using System.Text.Json;
using EdgeCounter.Counting;
using EdgeCounter.Publishing;

namespace EdgeCounter.Tests.Publishing;

public class HomeAssistantDiscoveryTests
{
    private static readonly CountingCatalog Catalog = new(
        ["neutrophil", "lymphocyte", "RBC", "plasma cell"],
        new Dictionary<string, IReadOnlyList<string>> { ["WBC"] = ["neutrophil", "lymphocyte", "plasma cell"] },
        ["neutrophil", "lymphocyte"]);

    private static readonly TopicMap Topics = new("edgecounter/scope-1");

    private static List<(string Topic, JsonElement Config)> Configs() =>
        HomeAssistantDiscovery.Messages("homeassistant", Topics, "scope-1", Catalog, "cellnet 1.2.0", "1.0.0")
            .Select(m => (m.Topic, JsonDocument.Parse(m.Payload).RootElement)).ToList();

    [Fact]
    public void One_device_with_a_sensor_per_label_group_and_differential_label_and_ids_home_assistant_accepts()
    {
        var configs = Configs();
        Assert.All(configs, c => Assert.Matches(@"^homeassistant/(sensor|image|button|text)/edgecounter_scope-1/[a-z0-9_-]+/config$", c.Topic));
        Assert.Equal(configs.Count, configs.Select(c => c.Config.GetProperty("unique_id").GetString()).Distinct().Count());
        Assert.All(configs, c => Assert.Equal("edgecounter_scope-1", c.Config.GetProperty("device").GetProperty("identifiers")[0].GetString()));
        var sensors = configs.Where(c => c.Topic.StartsWith("homeassistant/sensor/")).Select(c => c.Config.GetProperty("name").GetString()).ToList();
        Assert.Contains("plasma cell", sensors);               // a label with a space: its id is sanitised, its name kept
        Assert.Contains(configs, c => c.Topic.EndsWith("/count_plasma_cell/config"));
        Assert.Contains("WBC (group)", sensors);
        Assert.Contains("lymphocyte %", sensors);
        Assert.Equal(4 + 1 + 2 + 4, sensors.Count);              // labels, groups, differential, fields/progress/state/sample
        var rbc = configs.Single(c => c.Topic.EndsWith("/count_rbc/config")).Config;
        Assert.Equal("edgecounter/scope-1/counts", rbc.GetProperty("state_topic").GetString());
        Assert.Equal("{{ value_json.totals['RBC'] | default(0) }}", rbc.GetProperty("value_template").GetString());
        Assert.Equal("measurement", rbc.GetProperty("state_class").GetString());
    }

    [Fact]
    public void Stopped_and_offline_both_read_as_unavailable()
    {
        Assert.All(Configs(), c =>
        {
            Assert.Equal("edgecounter/scope-1/available", c.Config.GetProperty("availability_topic").GetString());
            Assert.Equal("{{ 'online' if value == 'online' else 'offline' }}", c.Config.GetProperty("availability_template").GetString());
            Assert.Equal("offline", c.Config.GetProperty("payload_not_available").GetString());
        });
    }

    [Fact]
    public void The_buttons_send_commands_the_service_accepts_and_the_images_are_the_published_jpegs()
    {
        var configs = Configs();
        foreach (var (action, expected) in new[] { ("start", SessionAction.Start), ("stop", SessionAction.Stop), ("reset", SessionAction.Reset) })
        {
            var button = configs.Single(c => c.Topic == $"homeassistant/button/edgecounter_scope-1/{action}/config").Config;
            Assert.Equal(Topics.SessionSet, button.GetProperty("command_topic").GetString());
            Assert.Equal(expected, SessionCommandParser.Parse(button.GetProperty("payload_press").GetString()!).Command!.Action);
        }
        var text = configs.Single(c => c.Topic.StartsWith("homeassistant/text/")).Config;
        // Home Assistant renders the template with the typed value; as it would for a sample id with a quote in it:
        var rendered = text.GetProperty("command_template").GetString()!.Replace("{{ value | tojson }}", JsonSerializer.Serialize("S-17 \"b\""));
        var command = SessionCommandParser.Parse(rendered).Command!;
        Assert.Equal(SessionAction.Start, command.Action);
        Assert.Equal("S-17 \"b\"", command.SampleId);
        Assert.Equal([Topics.FieldImage, Topics.SlideImage],
            configs.Where(c => c.Topic.StartsWith("homeassistant/image/")).Select(c => c.Config.GetProperty("image_topic").GetString()));
    }

    [Fact]
    public void Plain_number_topics_keep_to_one_topic_level()
    {
        Assert.Equal("edgecounter/scope-1/counts/lymphocyte", Topics.CountOf("lymphocyte"));
        Assert.Equal("edgecounter/scope-1/counts/a_b_c_d", Topics.CountOf("a/b+c#d"));
    }
}
