using EdgeCounter.Counting;
using EdgeCounter.Lis;
using EdgeCounter.Reporting;

namespace EdgeCounter.IntegrationTests.Lis;

/// <summary>The HL7 queue against a LIS stand-in on a real socket: delivery on AA, retries after AE, AR and silence,
/// and a message left undelivered at a stop delivered by the next instance over the same state directory.</summary>
public sealed class Hl7DeliveryTests : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private readonly string _state = Directory.CreateTempSubdirectory("edgecounter-hl7-").FullName;

    public void Dispose() => Directory.Delete(_state, recursive: true);

    private static SessionReport Report(string sampleId = "S-7") => new(
        "sess-1", sampleId, SessionState.Final, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch.AddMinutes(5), DateTimeOffset.UnixEpoch.AddMinutes(6),
        "Dr B", 3, 4, new Dictionary<string, long> { ["neutrophil"] = 3, ["lymphocyte"] = 1 }, new Dictionary<string, long>(),
        new Dictionary<string, DifferentialLine> { ["neutrophil"] = new(3, 75, [30, 95], null, null), ["lymphocyte"] = new(1, 25, [5, 70], null, null) },
        "4 white cells counted.", 0, [], "model", "1", DateTimeOffset.UnixEpoch.AddMinutes(6));

    private Hl7Delivery Delivery(int port, TimeSpan? ackTimeout = null) => new(new Hl7Options
    {
        Host = "127.0.0.1",
        Port = port,
        AckTimeout = ackTimeout ?? TimeSpan.FromSeconds(5),
        RetryInterval = TimeSpan.FromMilliseconds(200),
        RejectedRetryInterval = TimeSpan.FromMilliseconds(400),
    }, "scope-test", _state);

    private static Task UntilAsync(Func<bool> condition, string what) => Eventually.UntilAsync(condition, what, Wait);

    [Fact]
    public async Task An_AA_acknowledged_message_arrives_framed_and_leaves_the_queue()
    {
        await using var lis = new MllpTestListener();
        using var delivery = Delivery(lis.Port);
        var controlId = delivery.Enqueue(Report());
        using var stop = new CancellationTokenSource();
        var running = delivery.RunAsync(stop.Token);

        var message = Assert.Single(await lis.WaitForAsync(1, Wait));
        Assert.Equal(controlId, MllpTestListener.Field(message, "MSH", 10));
        Assert.Equal("ORU^R01^ORU_R01", MllpTestListener.Field(message, "MSH", 9));
        Assert.Equal("S-7", MllpTestListener.Field(message, "OBR", 2));
        Assert.Contains("\rOBX|1|NM|770-8^", message);
        await UntilAsync(() => delivery.Delivered == 1 && delivery.Pending == 0, "acknowledged");
        Assert.Null(delivery.LastError);
        stop.Cancel();
        await running;
    }

    [Theory]
    [InlineData("AE")]
    [InlineData("AR")]
    public async Task An_error_or_reject_is_retried_with_the_same_message_until_acknowledged(string firstAnswer)
    {
        await using var lis = new MllpTestListener(answer: attempt => attempt == 1 ? firstAnswer : "AA");
        using var delivery = Delivery(lis.Port);
        delivery.Enqueue(Report());
        using var stop = new CancellationTokenSource();
        var running = delivery.RunAsync(stop.Token);

        await lis.WaitForAsync(1, Wait);
        await UntilAsync(() => delivery.LastError is not null, "the error noted");
        Assert.Contains($"({firstAnswer}): test says {firstAnswer}", delivery.LastError);
        Assert.Equal(1, delivery.Pending);
        var both = await lis.WaitForAsync(2, Wait);
        Assert.Equal(both[0], both[1]); // the same text, control id included: the LIS can tell a repeat
        var waited = lis.Arrivals[1] - lis.Arrivals[0];
        Assert.True(waited >= TimeSpan.FromMilliseconds(firstAnswer == "AR" ? 380 : 180), $"retried after {waited.TotalMilliseconds:0} ms"); // AR waits longer
        await UntilAsync(() => delivery.Delivered == 1 && delivery.Pending == 0, "acknowledged on the retry");
        await Task.Delay(600); // longer than both retry intervals: delivered once, not sent again
        Assert.Equal(2, lis.Received.Count);
        stop.Cancel();
        await running;
    }

    [Fact]
    public async Task A_message_unanswered_at_a_stop_is_delivered_by_the_next_instance_over_the_same_state()
    {
        string controlId;
        await using (var silent = new MllpTestListener(answer: _ => null))
        using (var first = Delivery(silent.Port, ackTimeout: TimeSpan.FromMilliseconds(300)))
        {
            controlId = first.Enqueue(Report("S-RESTART"));
            using var stop = new CancellationTokenSource();
            var running = first.RunAsync(stop.Token);
            await silent.WaitForAsync(1, Wait);
            await UntilAsync(() => first.LastError?.Contains("no answer") == true, "the timeout noted");
            stop.Cancel();
            await running;
            Assert.Equal(1, first.Pending);
        }

        await using var lis = new MllpTestListener();
        using var second = Delivery(lis.Port);
        Assert.Equal(1, second.Pending);
        using var stopSecond = new CancellationTokenSource();
        var sending = second.RunAsync(stopSecond.Token);
        var message = Assert.Single(await lis.WaitForAsync(1, Wait));
        Assert.Equal((controlId, "S-RESTART"), (MllpTestListener.Field(message, "MSH", 10), MllpTestListener.Field(message, "OBR", 2)));
        await UntilAsync(() => second.Pending == 0, "acknowledged after the restart");
        stopSecond.Cancel();
        await sending;
    }
}
