using EdgeCounter.Publishing;

namespace EdgeCounter.Tests.Publishing;

public class MqttOptionsTests
{
    [Fact]
    public void Defaults_are_valid_and_use_the_embedded_broker_on_loopback()
    {
        var options = new MqttOptions { DeviceId = "dev1" };
        Assert.Empty(options.Validate());
        Assert.Equal(MqttMode.Embedded, options.Mode);
        Assert.Equal(1883, options.Port);
        Assert.Equal("127.0.0.1", options.EffectiveHost);
        Assert.Equal("edgecounter-dev1", options.EffectiveClientId);
        Assert.True(options.MaxImageBytes < 1024 * 1024);
    }

    [Fact]
    public void External_mode_connects_to_the_configured_host()
    {
        var options = new MqttOptions { Mode = MqttMode.External, Host = "broker.ward", DeviceId = "d" };
        Assert.Equal("broker.ward", options.EffectiveHost);
        Assert.Empty(options.Validate());
    }

    [Fact]
    public void Bad_settings_are_all_reported()
    {
        var options = new MqttOptions
        {
            Port = 0, DeviceId = "a/b", Password = "p", MaxImageBytes = 10, UseTls = true,
            ReconnectMinDelay = TimeSpan.FromSeconds(10), ReconnectMaxDelay = TimeSpan.FromSeconds(1), OutboxMemoryMaxBytes = 10,
        };
        var errors = string.Join("\n", options.Validate());
        Assert.Contains("Port", errors);
        Assert.Contains("DeviceId", errors);
        Assert.Contains("Password needs", errors);
        Assert.Contains("MaxImageBytes", errors);
        Assert.Contains("UseTls", errors);
        Assert.Contains("ReconnectMinDelay", errors);
        Assert.Contains("OutboxMemoryMaxBytes", errors);
        Assert.Throws<ArgumentException>(options.ThrowIfInvalid);
    }
}
