using System.Net.Sockets;
using System.Text;

namespace EdgeCounter.Lis;

/// <summary>MLLP (HL7 minimal lower layer protocol): a message is framed as 0x0B, the message, 0x1C 0x0D. One
/// connection per message: connect, send, read the one answer, close (nothing held open between results).</summary>
public static class MllpClient
{
    public const byte StartBlock = 0x0B;
    public const byte EndBlock = 0x1C;
    public const byte CarriageReturn = 0x0D;
    private const int MaxAnswerBytes = 1024 * 1024;

    public static byte[] Frame(string message)
    {
        var body = Encoding.UTF8.GetBytes(message);
        var framed = new byte[body.Length + 3];
        framed[0] = StartBlock;
        body.CopyTo(framed, 1);
        framed[^2] = EndBlock;
        framed[^1] = CarriageReturn;
        return framed;
    }

    /// <summary>Sends one message and returns the answer's text (the frame's content).</summary>
    /// <exception cref="TimeoutException">No connection or no complete answer within <paramref name="timeout"/>.</exception>
    /// <exception cref="IOException">The connection failed or closed before an answer.</exception>
    /// <exception cref="SocketException">The connection was refused or the host not found.</exception>
    public static async Task<string> SendAsync(string host, int port, string message, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            using var client = new TcpClient { NoDelay = true };
            await client.ConnectAsync(host, port, deadline.Token).ConfigureAwait(false);
            var stream = client.GetStream();
            await stream.WriteAsync(Frame(message), deadline.Token).ConfigureAwait(false);
            await stream.FlushAsync(deadline.Token).ConfigureAwait(false);
            return await ReadFrameAsync(stream, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"no answer from {host}:{port} within {timeout.TotalSeconds:0.#} s");
        }
    }

    /// <summary>Reads up to the end of the first frame; bytes before the start block are ignored.</summary>
    public static async Task<string> ReadFrameAsync(Stream stream, CancellationToken cancellationToken)
    {
        var received = new MemoryStream();
        var buffer = new byte[4096];
        while (true)
        {
            var read = await stream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            if (read == 0) throw new IOException("the connection closed before a complete MLLP frame");
            received.Write(buffer, 0, read);
            var bytes = received.GetBuffer().AsSpan(0, (int)received.Length);
            var start = bytes.IndexOf(StartBlock);
            if (start >= 0)
            {
                var end = bytes[start..].IndexOf([EndBlock, CarriageReturn]);
                if (end >= 0) return Encoding.UTF8.GetString(bytes.Slice(start + 1, end - 1));
            }
            if (received.Length > MaxAnswerBytes) throw new IOException($"no MLLP frame end within {MaxAnswerBytes} bytes");
        }
    }
}
