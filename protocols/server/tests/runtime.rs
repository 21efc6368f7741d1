//! The runtime over real sockets, with a small line protocol: refusal inside
//! TLS on implicit-TLS listeners, PROXY v1/v2 (the real address reaches the
//! per-IP limit and the protocol; bad and untrusted headers are refused),
//! the write and idle timeouts, graceful shutdown, Unix sockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use mailroom_server::limit::{ConnectionLimits, Refusal};
use mailroom_server::proxy::{ProxyProtocol, V2_SIGNATURE};
use mailroom_server::timeout::{TimeoutKind, timed_out};
use mailroom_server::{Connection, Protocol, Server, Timeouts};
use mailroom_testkit::{spawn_on_loopback, tls_connect, tls_pair};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Greets with `hello <peer>`, then per line: `sleep` takes 300 ms before
/// answering `done`, `flood` writes until the write fails, anything else is
/// echoed. Says `bye` when the server shuts down between commands.
#[derive(Default)]
struct Lines {
    /// How each connection ended, for the test to look at.
    ended: Arc<Mutex<Vec<Option<TimeoutKind>>>>,
}

impl Protocol for Lines {
    fn name(&self) -> &'static str {
        "lines"
    }

    fn refusal(&self, refusal: Refusal) -> Bytes {
        Bytes::from(format!("busy: {refusal}\r\n"))
    }

    fn serve(&self, conn: Connection) -> BoxFuture<'static, ()> {
        let ended = self.ended.clone();
        Box::pin(async move {
            let Connection {
                stream,
                info,
                mut shutdown,
                ..
            } = conn;
            let mut io = BufReader::new(stream);
            let peer = info.peer.map_or("none".to_owned(), |p| p.to_string());
            let result: std::io::Result<()> = async {
                io.get_mut()
                    .write_all(format!("hello {peer} tls={}\r\n", info.tls).as_bytes())
                    .await?;
                let mut line = String::new();
                loop {
                    line.clear();
                    tokio::select! {
                        n = io.read_line(&mut line) => if n? == 0 { return Ok(()) },
                        () = shutdown.requested() => {
                            io.get_mut().write_all(b"bye\r\n").await?;
                            return Ok(());
                        }
                    }
                    match line.trim_end() {
                        "sleep" => {
                            tokio::time::sleep(Duration::from_millis(300)).await;
                            io.get_mut().write_all(b"done\r\n").await?;
                        }
                        "flood" => loop {
                            io.get_mut().write_all(&[b'x'; 64 * 1024]).await?;
                        },
                        other => {
                            io.get_mut()
                                .write_all(format!("{other}\r\n").as_bytes())
                                .await?;
                        }
                    }
                }
            }
            .await;
            ended
                .lock()
                .unwrap()
                .push(result.err().and_then(|e| timed_out(&e)));
        })
    }
}

async fn line<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> String {
    let mut s = String::new();
    tokio::time::timeout(Duration::from_secs(10), r.read_line(&mut s))
        .await
        .expect("a line in time")
        .unwrap();
    s
}

async fn closed<R: tokio::io::AsyncRead + Unpin>(r: &mut R) -> Vec<u8> {
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), r.read_to_end(&mut rest))
        .await
        .expect("closed in time");
    rest
}

#[tokio::test]
async fn over_the_limit_on_implicit_tls_the_refusal_comes_inside_tls() {
    let (server_tls, client_tls) = tls_pair();
    let server = Server::new(Lines::default())
        .implicit_tls(server_tls)
        .limits(ConnectionLimits::new(1, 10));
    let spawned = spawn_on_loopback(|l, stop| server.serve(l, stop)).await;
    let first = TcpStream::connect(spawned.addr()).await.unwrap();
    let mut first = BufReader::new(tls_connect(first, client_tls.clone()).await);
    assert!(line(&mut first).await.ends_with("tls=true\r\n"));

    let second = TcpStream::connect(spawned.addr()).await.unwrap();
    let mut second = BufReader::new(tls_connect(second, client_tls.clone()).await);
    assert_eq!(line(&mut second).await, "busy: too many connections\r\n");

    drop(first);
    // the slot comes back when the first connection is gone
    let third = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let s = TcpStream::connect(spawned.addr()).await.unwrap();
            let mut s = BufReader::new(tls_connect(s, client_tls.clone()).await);
            if line(&mut s).await.starts_with("hello") {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(third.is_ok());
}

fn v2_header(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (source.ip(), destination.ip()) else {
        panic!("IPv4 only here")
    };
    let mut h = V2_SIGNATURE.to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0, 12]);
    h.extend_from_slice(&s.octets());
    h.extend_from_slice(&d.octets());
    h.extend_from_slice(&source.port().to_be_bytes());
    h.extend_from_slice(&destination.port().to_be_bytes());
    h
}

#[tokio::test]
async fn proxy_headers_give_the_real_address_to_the_limit_and_the_protocol() {
    let trusted = ProxyProtocol::trusting(["127.0.0.1/32".parse().unwrap()]);
    let server = Server::new(Lines::default())
        .proxy_protocol(trusted)
        .limits(ConnectionLimits::new(100, 1));
    let limits = server.connection_limits().clone();
    let spawned = spawn_on_loopback(|l, stop| server.serve(l, stop)).await;

    // v1, with a command in the same packet as the header
    let mut a = BufReader::new(TcpStream::connect(spawned.addr()).await.unwrap());
    a.get_mut()
        .write_all(b"PROXY TCP4 192.0.2.7 198.51.100.1 50000 143\r\nping\r\n")
        .await
        .unwrap();
    assert_eq!(line(&mut a).await, "hello 192.0.2.7:50000 tls=false\r\n");
    assert_eq!(line(&mut a).await, "ping\r\n");
    assert_eq!(limits.open_from("192.0.2.7".parse().unwrap()), 1);
    assert_eq!(limits.open_from("127.0.0.1".parse().unwrap()), 0);

    // v2 from the same client: over its per-address limit of one
    let mut b = BufReader::new(TcpStream::connect(spawned.addr()).await.unwrap());
    let header = v2_header(
        "192.0.2.7:50001".parse().unwrap(),
        "198.51.100.1:143".parse().unwrap(),
    );
    b.get_mut().write_all(&header).await.unwrap();
    assert_eq!(
        line(&mut b).await,
        "busy: too many connections from your address\r\n"
    );

    // v2 from another client behind the same proxy: served
    let mut c = BufReader::new(TcpStream::connect(spawned.addr()).await.unwrap());
    let header = v2_header(
        "192.0.2.8:40000".parse().unwrap(),
        "198.51.100.1:143".parse().unwrap(),
    );
    c.get_mut().write_all(&header).await.unwrap();
    assert_eq!(line(&mut c).await, "hello 192.0.2.8:40000 tls=false\r\n");

    // no header, a bad header: closed without a word
    for bad in [
        &b"A001 LOGIN alice secret\r\n"[..],
        b"PROXY TCP4 192.0.2.7 198.51.100.1 99999 143\r\n",
        b"\r\n\r\n\0\r\nQUIT\n\x31\x11\x00\x0c",
    ] {
        let mut s = TcpStream::connect(spawned.addr()).await.unwrap();
        s.write_all(bad).await.unwrap();
        assert_eq!(closed(&mut s).await, b"", "{bad:?}");
    }
}

#[tokio::test]
async fn untrusted_sources_and_silent_ones_are_refused_on_proxy_listeners() {
    let server = Server::new(Lines::default())
        .proxy_protocol(ProxyProtocol::trusting(["10.0.0.0/8".parse().unwrap()]));
    let spawned = spawn_on_loopback(|l, stop| server.serve(l, stop)).await;
    let mut s = TcpStream::connect(spawned.addr()).await.unwrap();
    let _ = s
        .write_all(b"PROXY TCP4 192.0.2.7 198.51.100.1 50000 143\r\n")
        .await;
    assert_eq!(closed(&mut s).await, b"");

    let server = Server::new(Lines::default())
        .proxy_protocol(ProxyProtocol::trusting(["127.0.0.0/8".parse().unwrap()]))
        .timeouts(Timeouts {
            read: Duration::from_millis(200),
            ..Timeouts::default()
        });
    let spawned = spawn_on_loopback(|l, stop| server.serve(l, stop)).await;
    let mut s = TcpStream::connect(spawned.addr()).await.unwrap();
    s.write_all(b"PROXY TCP4 192.0").await.unwrap();
    assert_eq!(closed(&mut s).await, b"", "half a header, then silence");
}

async fn wait_for_end(ended: &Arc<Mutex<Vec<Option<TimeoutKind>>>>) -> Option<TimeoutKind> {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(e) = ended.lock().unwrap().first() {
                return *e;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the connection ended in time")
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_after_the_write_timeout() {
    let protocol = Lines::default();
    let ended = protocol.ended.clone();
    let server = Server::new(protocol).timeouts(Timeouts {
        write: Duration::from_millis(500),
        ..Timeouts::default()
    });
    let limits = server.connection_limits().clone();
    let spawned = spawn_on_loopback(|l, stop| server.serve(l, stop)).await;
    let mut s = TcpStream::connect(spawned.addr()).await.unwrap();
    s.write_all(b"flood\r\n").await.unwrap();
    // never read
    assert_eq!(wait_for_end(&ended).await, Some(TimeoutKind::Write));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(limits.open(), 0, "its slot is free");
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_the_idle_timeout() {
    let protocol = Lines::default();
    let ended = protocol.ended.clone();
    let server = Server::new(protocol).timeouts(Timeouts {
        idle: Duration::from_millis(300),
        ..Timeouts::default()
    });
    let spawned = spawn_on_loopback(|l, stop| server.serve(l, stop)).await;
    let mut s = BufReader::new(TcpStream::connect(spawned.addr()).await.unwrap());
    line(&mut s).await;
    assert_eq!(wait_for_end(&ended).await, Some(TimeoutKind::Idle));
}

#[tokio::test]
async fn graceful_shutdown_lets_the_command_in_flight_finish() {
    let server = Server::new(Lines::default()).shutdown_grace(Duration::from_secs(5));
    let mut spawned = spawn_on_loopback(|l, stop| server.serve(l, stop)).await;
    let mut s = BufReader::new(TcpStream::connect(spawned.addr()).await.unwrap());
    line(&mut s).await;
    s.get_mut().write_all(b"sleep\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    spawned.signal_stop();
    assert_eq!(line(&mut s).await, "done\r\n");
    assert_eq!(line(&mut s).await, "bye\r\n");
    assert_eq!(closed(&mut s).await, b"");
    spawned.stop_and_join().await.unwrap().unwrap();
    // the listener is closed
    assert!(TcpStream::connect(spawned.addr()).await.is_err());
}

#[tokio::test]
async fn shutdown_closes_what_is_left_after_the_grace_period() {
    let server = Server::new(Lines::default()).shutdown_grace(Duration::from_millis(200));
    let mut spawned = spawn_on_loopback(|l, stop| server.serve(l, stop)).await;
    let mut s = BufReader::new(TcpStream::connect(spawned.addr()).await.unwrap());
    line(&mut s).await;
    s.get_mut().write_all(b"flood\r\n").await.unwrap();
    let started = std::time::Instant::now();
    spawned.stop_and_join().await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
}

async fn write_all<W: AsyncWrite + Unpin>(w: &mut W, b: &[u8]) {
    w.write_all(b).await.unwrap();
}

#[tokio::test]
async fn unix_sockets_are_served_with_the_peer_uid() {
    let dir = std::env::temp_dir().join(format!("mailroom-server-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("lines.sock");
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path).unwrap();

    struct Uid;
    impl Protocol for Uid {
        fn name(&self) -> &'static str {
            "uid"
        }
        fn refusal(&self, _: Refusal) -> Bytes {
            Bytes::from_static(b"busy\n")
        }
        fn serve(&self, mut conn: Connection) -> BoxFuture<'static, ()> {
            Box::pin(async move {
                let text = format!("{:?} {:?}\n", conn.info.unix_uid, conn.info.peer);
                let _ = conn.stream.write_all(text.as_bytes()).await;
            })
        }
    }
    let server = Server::new(Uid).limits(ConnectionLimits::new(1, 1));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));
    let mut s = tokio::net::UnixStream::connect(&path).await.unwrap();
    write_all(&mut s, b"").await;
    let got = String::from_utf8(closed(&mut s).await).unwrap();
    // the uid the server saw is ours
    let me = s.peer_cred().unwrap().uid();
    assert_eq!(got, format!("Some({me}) None\n"));
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A client stream whose first write carries `prefix` in the same segment
/// (a load balancer sends the PROXY header and the client's first bytes,
/// here a TLS ClientHello, together).
struct Prefixed {
    inner: TcpStream,
    prefix: Vec<u8>,
}

impl tokio::io::AsyncRead for Prefixed {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::task::Poll;
        if self.prefix.is_empty() {
            return std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        }
        let together = [self.prefix.as_slice(), buf].concat();
        match std::pin::Pin::new(&mut self.inner).poll_write(cx, &together) {
            Poll::Ready(Ok(n)) if n > self.prefix.len() => {
                let sent = n - self.prefix.len();
                self.prefix.clear();
                Poll::Ready(Ok(sent))
            }
            Poll::Ready(Ok(n)) => {
                self.prefix.drain(..n);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            other => other,
        }
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn a_proxy_header_in_the_same_segment_as_the_client_hello() {
    let (server_tls, client_tls) = tls_pair();
    let server = Server::new(Lines::default())
        .implicit_tls(server_tls)
        .proxy_protocol(ProxyProtocol::trusting(["127.0.0.1/32".parse().unwrap()]));
    let spawned = spawn_on_loopback(|l, stop| server.serve(l, stop)).await;
    for header in [
        b"PROXY TCP6 2001:db8::7 2001:db8::1 40000 993\r\n".to_vec(),
        v2_header(
            "192.0.2.9:40001".parse().unwrap(),
            "198.51.100.1:993".parse().unwrap(),
        ),
    ] {
        let inner = TcpStream::connect(spawned.addr()).await.unwrap();
        let client = Prefixed {
            inner,
            prefix: header,
        };
        let mut tls = BufReader::new(tls_connect(client, client_tls.clone()).await);
        let greeting = line(&mut tls).await;
        assert!(
            greeting == "hello [2001:db8::7]:40000 tls=true\r\n"
                || greeting == "hello 192.0.2.9:40001 tls=true\r\n",
            "{greeting}"
        );
    }
}
