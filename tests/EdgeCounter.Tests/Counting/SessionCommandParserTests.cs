using EdgeCounter.Counting;

namespace EdgeCounter.Tests.Counting;

public class SessionCommandParserTests
{
    [Fact]
    public void Parses_start_with_sample_and_target()
    {
        var result = SessionCommandParser.Parse("""{"action":"start","sampleId":"S-1","target":200}""");
        Assert.True(result.IsValid, result.Error);
        Assert.Equal(new SessionCommand(SessionAction.Start, "S-1", 200), result.Command);
    }

    [Theory]
    [InlineData("""{"action":"start"}""", SessionAction.Start)]
    [InlineData("""{"action":"stop"}""", SessionAction.Stop)]
    [InlineData("""{ "action" : "reset" }""", SessionAction.Reset)]
    public void Parses_bare_actions(string text, SessionAction expected)
    {
        var result = SessionCommandParser.Parse(text);
        Assert.True(result.IsValid, result.Error);
        Assert.Equal(expected, result.Command!.Action);
        Assert.Null(result.Command.SampleId);
        Assert.Null(result.Command.Target);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("start", "not valid JSON (at character 1)")]
    [InlineData("{\"action\":\"start\"", "not valid JSON")]
    [InlineData("[1,2]", "JSON object")]
    [InlineData("{}", "'action' is missing")]
    [InlineData("""{"action":"explode"}""", "unknown action 'explode'")]
    [InlineData("""{"action":"START"}""", "unknown action")]
    [InlineData("""{"action":5}""", "'action' must be a string")]
    [InlineData("""{"action":"start","target":"200"}""", "'target' must be a whole number")]
    [InlineData("""{"action":"start","target":2.5}""", "'target' must be a whole number")]
    [InlineData("""{"action":"start","target":0}""", "'target' must be 1..")]
    [InlineData("""{"action":"start","target":99999999999}""", "'target' must be a whole number")]
    [InlineData("""{"action":"start","sampleId":7}""", "'sampleId' must be a string")]
    [InlineData("""{"action":"start","sampleId":"a\nb"}""", "control characters")]
    [InlineData("""{"action":"start","colour":"red"}""", "unknown property 'colour'")]
    [InlineData("""{"action":"stop","target":5}""", "takes no sampleId or target")]
    [InlineData("""{"action":"stop","action":"start"}""", "appears twice")]
    public void Refuses_bad_commands_with_a_reason(string text, string reasonPart)
    {
        var result = SessionCommandParser.Parse(text);
        Assert.False(result.IsValid);
        Assert.Null(result.Command);
        Assert.Contains(reasonPart, result.Error);
    }

    [Fact]
    public void Refuses_oversized_payloads_before_parsing()
    {
        var text = """{"action":"start","sampleId":"S-1"}""" + new string(' ', SessionCommandParser.MaxPayloadBytes);
        var result = SessionCommandParser.Parse(text);
        Assert.False(result.IsValid);
        Assert.Contains("limit is 4096", result.Error);
    }

    [Fact]
    public void Refuses_too_long_sample_ids()
    {
        var result = SessionCommandParser.Parse($$"""{"action":"start","sampleId":"{{new string('x', 65)}}"}""");
        Assert.False(result.IsValid);
        Assert.Contains("longer than 64", result.Error);
    }
}
