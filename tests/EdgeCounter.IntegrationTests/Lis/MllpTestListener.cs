using System.Net;
using System.Net.Sockets;
using System.Text;

namespace EdgeCounter.IntegrationTests.Lis;

/// <summary>A LIS stand-in on a real socket: takes MLLP frames (checking the framing), keeps each message and answers
/// with an ACK whose MSA-1 the test chooses per attempt (null: no answer at all, as a hung LIS).</summary>
internal sealed class MllpTestListener : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly Func<int, string?> _answer;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly List<string> _received = [];
    private readonly List<DateTime> _arrivals = [];
    private readonly SemaphoreSlim _arrived = new(0);

    /// <param name="answer">Attempt number (1, 2, ...) to the MSA-1 code answered; default: always AA.</param>
    public MllpTestListener(int port = 0, Func<int, string?>? answer = null)
    {
        _answer = answer ?? (_ => "AA");
        _listener = new TcpListener(IPAddress.Loopback, port);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = AcceptAsync();
    }

    public int Port { get; }

    public IReadOnlyList<string> Received { get { lock (_received) return [.. _received]; } }

    /// <summary>When each message arrived (UTC), in the order of <see cref="Received"/>.</summary>
    public IReadOnlyList<DateTime> Arrivals { get { lock (_received) return [.. _arrivals]; } }

    /// <summary>Waits until <paramref name="count"/> messages came in; returns them all.</summary>
    public async Task<IReadOnlyList<string>> WaitForAsync(int count, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (Received.Count < count)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || !await _arrived.WaitAsync(left))
                throw new TimeoutException($"{Received.Count} of {count} HL7 messages arrived within {timeout}");
        }
        return Received;
    }

    public static string Field(string message, string segment, int index) =>
        message.Split('\r').First(s => s.StartsWith(segment + "|", StringComparison.Ordinal)).Split('|')[segment == "MSH" ? index - 1 : index];

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                _ = ServeAsync(client);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using (client)
        {
            try
            {
                var stream = client.GetStream();
                var bytes = new List<byte>();
                var buffer = new byte[4096];
                while (bytes.Count < 2 || bytes[^2] != 0x1C || bytes[^1] != 0x0D)
                {
                    var read = await stream.ReadAsync(buffer, _stop.Token);
                    if (read == 0) return;
                    bytes.AddRange(buffer.AsSpan(0, read));
                }
                if (bytes[0] != 0x0B) throw new InvalidDataException("an MLLP frame starts with 0x0B");
                var message = Encoding.UTF8.GetString(bytes.ToArray(), 1, bytes.Count - 3);
                int attempt;
                lock (_received)
                {
                    _received.Add(message);
                    _arrivals.Add(DateTime.UtcNow);
                    attempt = _received.Count;
                }
                _arrived.Release();
                if (_answer(attempt) is not { } code)
                {
                    await Task.Delay(Timeout.Infinite, _stop.Token); // a LIS that takes the message and never answers
                    return;
                }
                var text = code == "AA" ? "" : $"|test says {code}";
                var ack = $"MSH|^~\\&|LIS|LAB|EdgeCounter|scope|20260101000000||ACK^R01^ACK|A{attempt}|P|2.5.1\rMSA|{code}|{Field(message, "MSH", 10)}{text}\r";
                await stream.WriteAsync(EdgeCounter.Lis.MllpClient.Frame(ack), _stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException)
            {
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        await _accepting;
        _stop.Dispose();
    }
}
