using EdgeCounter.Publishing;

namespace EdgeCounter.Tests.Publishing;

public class TopicMapTests
{
    [Fact]
    public void Default_prefix_uses_the_device_id()
    {
        var topics = TopicMap.For(new MqttOptions { DeviceId = "scope-3" });
        Assert.Equal("edgecounter/scope-3", topics.Prefix);
        Assert.Equal("edgecounter/scope-3/available", topics.Available);
        Assert.Equal("edgecounter/scope-3/field", topics.Field);
        Assert.Equal("edgecounter/scope-3/field/image", topics.FieldImage);
        Assert.Equal("edgecounter/scope-3/counts", topics.Counts);
        Assert.Equal("edgecounter/scope-3/session/set", topics.SessionSet);
        Assert.Equal("edgecounter/scope-3/session/state", topics.SessionState);
        Assert.Equal("edgecounter/scope-3/session/error", topics.SessionError);
        Assert.Equal("edgecounter/scope-3/stats", topics.Stats);
        Assert.Equal("edgecounter/scope-3/#", topics.All);
    }

    [Fact]
    public void Configured_prefix_wins_and_loses_its_trailing_slash()
    {
        var topics = TopicMap.For(new MqttOptions { DeviceId = "x", TopicPrefix = "ward7/lab/counter/" });
        Assert.Equal("ward7/lab/counter/counts", topics.Counts);
    }

    [Theory]
    [InlineData("a/+/b")]
    [InlineData("a/#")]
    [InlineData("/")]
    public void Wildcards_and_empty_prefixes_are_refused(string prefix)
    {
        Assert.Throws<ArgumentException>(() => new TopicMap(prefix));
    }

    [Fact]
    public void Topics_are_distinct()
    {
        var t = new TopicMap("p");
        var all = new[] { t.Available, t.Field, t.FieldImage, t.Counts, t.SessionSet, t.SessionState, t.SessionError, t.Stats };
        Assert.Equal(all.Length, all.Distinct().Count());
    }
}
