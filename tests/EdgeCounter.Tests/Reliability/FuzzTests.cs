using System.Text;
using EdgeCounter.Counting;
using EdgeCounter.Fields;
using OpenCvSharp;

namespace EdgeCounter.Tests.Reliability;

/// <summary>Throws many random, truncated and mutated inputs at the command parser and the frame stages.</summary>
public class FuzzTests
{
    private static readonly string[] Valid =
    [
        """{"action":"start","sampleId":"S-1","target":200}""",
        """{"action":"stop"}""",
        """{"action":"reset"}""",
        """{"action":"start"}""",
    ];

    private static IEnumerable<byte[]> Payloads(int seed, int count)
    {
        var rng = new Random(seed);
        for (var i = 0; i < count; i++)
        {
            var valid = Encoding.UTF8.GetBytes(Valid[rng.Next(Valid.Length)]);
            switch (rng.Next(6))
            {
                case 0: // random bytes
                    var junk = new byte[rng.Next(0, 64)];
                    rng.NextBytes(junk);
                    yield return junk;
                    break;
                case 1: // truncated valid command
                    yield return valid[..rng.Next(0, valid.Length)];
                    break;
                case 2: // one byte flipped
                    var flipped = (byte[])valid.Clone();
                    flipped[rng.Next(flipped.Length)] ^= (byte)(1 << rng.Next(8));
                    yield return flipped;
                    break;
                case 3: // oversized
                    yield return Encoding.UTF8.GetBytes("{\"action\":\"start\",\"sampleId\":\"" + new string('x', rng.Next(4000, 20000)) + "\"}");
                    break;
                case 4: // wrong types and odd values
                    string[] odd = ["{\"action\":1}", "{\"action\":null}", "[]", "null", "\"start\"", "{\"action\":\"start\",\"target\":-5}",
                        "{\"action\":\"start\",\"target\":1e99}", "{\"action\":\"start\",\"target\":\"200\"}", "{\"action\":\"START\"}",
                        "{\"action\":\"start\",\"sampleId\":{}}", "{\"action\":\"stop\",\"extra\":true}", "{", "}", "\uFEFF{}", "{\"action\":\"start\",\"action\":\"stop\"}"];
                    yield return Encoding.UTF8.GetBytes(odd[rng.Next(odd.Length)]);
                    break;
                default: // deep nesting
                    var depth = rng.Next(1, 2000);
                    yield return Encoding.UTF8.GetBytes(new string('[', depth) + new string(']', depth));
                    break;
            }
        }
    }

    [Fact]
    public void The_command_parser_never_throws_and_refuses_every_malformed_payload_with_a_reason()
    {
        var accepted = 0;
        foreach (var payload in Payloads(seed: 1, count: 5000))
        {
            var result = SessionCommandParser.Parse(payload);
            if (result.IsValid)
            {
                accepted++;
                Assert.Null(result.Error);
                Assert.True(payload.Length <= SessionCommandParser.MaxPayloadBytes);
            }
            else
            {
                Assert.False(string.IsNullOrWhiteSpace(result.Error));
            }
        }
        Assert.InRange(accepted, 1, 4999); // some mutations stay valid (e.g. flipped bits in a sample id), most do not
    }

    [Fact]
    public async Task Malformed_commands_through_the_real_handler_change_nothing_in_the_open_session()
    {
        var dir = Directory.CreateTempSubdirectory("edgecounter-fuzz-");
        try
        {
            var service = new CountingService(Counting.CountingTestData.Catalog(), new CountingOptions(), new SessionStore(dir.FullName));
            service.CountField(Counting.CountingTestData.Field(("neutrophil", 2), ("RBC", 5)));
            var before = service.Snapshot();
            // A publisher that is not connected: error replies are skipped, state changes would still be applied.
            await using var publisher = global::EdgeCounter.Publishing.MqttPublisher.Create(new global::EdgeCounter.Publishing.MqttOptions { DeviceId = "fuzz" }, dir.FullName);
            using var handler = new global::EdgeCounter.Publishing.SessionCommandHandler(service, publisher);
            foreach (var payload in Payloads(seed: 2, count: 2000).Where(p => !SessionCommandParser.Parse(p).IsValid))
                await handler.HandleAsync(payload, CancellationToken.None);
            var after = service.Snapshot();
            Assert.Equal(before.SessionId, after.SessionId);
            Assert.Equal(before.State, after.State);
            Assert.Equal(before.Totals, after.Totals);

            // The same handler does act on a valid command, so the loop above really went through it.
            await handler.HandleAsync(Encoding.UTF8.GetBytes("""{"action":"reset"}"""), CancellationToken.None);
            Assert.NotEqual(before.SessionId, service.Snapshot().SessionId);
        }
        finally
        {
            dir.Delete(true);
        }
    }

    [Fact]
    public void The_frame_stages_survive_random_sizes_contents_and_corrupt_jpegs()
    {
        var rng = new Random(3);
        using var scorer = new FrameScorer();
        using var guard = new RevisitGuard(memory: 8);
        var detector = new StableFieldDetector(new FieldOptions());
        var t = TimeSpan.Zero;
        using var good = new Mat(240, 320, MatType.CV_8UC3);
        Cv2.Randu(good, Scalar.All(0), Scalar.All(255));
        Cv2.ImEncode(".jpg", good, out var jpeg);
        for (var i = 0; i < 300; i++)
        {
            Mat frame;
            if (i % 3 == 0)
            {
                // A corrupt frame from a camera: truncated or damaged JPEG. Decoding may give nothing, never a crash.
                var bytes = jpeg[..rng.Next(1, jpeg.Length)];
                if (rng.Next(2) == 0) bytes[rng.Next(bytes.Length)] ^= 0xFF;
                frame = Cv2.ImDecode(bytes, ImreadModes.Color);
                if (frame.Empty()) { frame.Dispose(); continue; }
            }
            else
            {
                frame = new Mat(rng.Next(1, 700), rng.Next(1, 900), MatType.CV_8UC3);
                Cv2.Randu(frame, Scalar.All(0), Scalar.All(255));
            }
            using (frame)
            {
                var score = scorer.Score(frame);
                Assert.True(score.Focus >= 0 && !double.IsNaN(score.Focus));
                Assert.False(double.IsNaN(score.Motion));
                detector.Next(t += TimeSpan.FromMilliseconds(33), score);
                guard.CheckAndRemember(frame, out var match);
                Assert.InRange(match, -1.0001, 1.0001);
            }
        }
        Assert.InRange(guard.Count, 1, 8);
    }
}
