using System.Net;
using System.Net.Sockets;
using System.Text;

namespace TransformerForge.Tests.Search;

/// <summary>
/// A TCP proxy in front of the test PostgreSQL server that can lose a reply: armed with a piece of SQL, it forwards the
/// request that carries it, lets the server run (and commit) it, then cuts the connection before the reply reaches the
/// client — the case where a client cannot know whether its commit landed. Plain TCP only (sslmode=disable).
/// </summary>
public sealed class CuttingProxy : IDisposable
{
    readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    readonly string _host;
    readonly int _port;
    readonly List<TcpClient> _sockets = new();
    volatile string? _marker;
    int _cuts;

    public CuttingProxy(string host, int port)
    {
        _host = host;
        _port = port;
        _listener.Start();
        new Thread(AcceptLoop) { IsBackground = true, Name = "cutting proxy" }.Start();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Connections cut so far.</summary>
    public int Cuts => Volatile.Read(ref _cuts);

    /// <summary>Cut the connection after the next request containing <paramref name="sql"/> has reached the server.</summary>
    public void CutAfter(string sql) => _marker = sql;

    void AcceptLoop()
    {
        try
        {
            while (true)
            {
                var client = _listener.AcceptTcpClient();
                var server = new TcpClient(_host, _port);
                lock (_sockets) _sockets.AddRange([client, server]);
                var severed = new StrongBox();
                new Thread(() => Pump(client, server, severed, toServer: true)) { IsBackground = true }.Start();
                new Thread(() => Pump(server, client, severed, toServer: false)) { IsBackground = true }.Start();
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or InvalidOperationException)
        {
            // Disposed.
        }
    }

    sealed class StrongBox
    {
        public volatile bool Severed;
    }

    void Pump(TcpClient from, TcpClient to, StrongBox connection, bool toServer)
    {
        var buffer = new byte[65536];
        try
        {
            var input = from.GetStream();
            var output = to.GetStream();
            int n;
            while ((n = input.Read(buffer, 0, buffer.Length)) > 0)
            {
                if (connection.Severed) return;
                bool cut = toServer && _marker is { } marker && Encoding.UTF8.GetString(buffer, 0, n).Contains(marker, StringComparison.Ordinal);
                if (cut)
                {
                    _marker = null;
                    Interlocked.Increment(ref _cuts);
                    connection.Severed = true;   // nothing more reaches the client on this connection: its reply is dropped
                }
                output.Write(buffer, 0, n);
                if (cut)
                {
                    Thread.Sleep(500);   // the server runs and commits the request meanwhile
                    from.Close();
                    to.Close();
                    return;
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
        }
        finally
        {
            from.Close();
            to.Close();
        }
    }

    public void Dispose()
    {
        _listener.Stop();
        lock (_sockets) foreach (var s in _sockets) s.Close();
    }
}
