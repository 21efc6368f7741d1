//! The `[metrics]` endpoint: a minimal HTTP/1.1 server that answers
//! `GET /metrics` with [`Metrics::render_prometheus`], for a Prometheus
//! scraper.
//!
//! The registry is the one the IMAP, IMAPS, POP3, POP3S and LMTP
//! listeners' metrics layers record into. The server here does exactly one
//! thing, so it is a few lines of tokio rather than an HTTP library:
//!
//! - `GET /metrics` (a query string is ignored) is `200` with
//!   `Content-Type: text/plain; version=0.0.4`; `HEAD /metrics` is the same
//!   without the body; any other method on `/metrics` is `405` (with
//!   `Allow: GET, HEAD`), any other path `404`, a request line that is not
//!   HTTP/1.x `400`.
//! - Every input is bounded: the request head (request line and headers)
//!   may be at most [`MAX_REQUEST_HEAD`] bytes (else `431`) and must arrive
//!   within [`READ_TIMEOUT`] (else `408`); the answer must be written within
//!   [`WRITE_TIMEOUT`]; at most [`MAX_CONNECTIONS`] connections are served
//!   at once (more get `503`). A request body is never read. The accept
//!   loop, the limit and the timeouts are the `mailroom_server` runtime's,
//!   as for every other listener.
//! - One request per connection (`Connection: close`): scrapes are seconds
//!   apart, and a server that never keeps connections open cannot be held
//!   open by one either.
//!
//! The endpoint listens on loopback by default ([`DEFAULT_LISTEN`]); it has
//! no authentication, and counters reveal traffic patterns, so expose it
//! beyond the host only to the scraper (a firewall rule, or a proxy).
//!
//! ```
//! use std::sync::Arc;
//! use mailroom_core::metrics::Metrics;
//! use mailroomd::metrics::respond;
//!
//! let metrics = Metrics::new();
//! let answer = String::from_utf8(respond(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &metrics)).unwrap();
//! assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"));
//! assert!(answer.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
//! assert!(answer.ends_with(&metrics.render_prometheus()));
//! let answer = respond(b"POST /metrics HTTP/1.1\r\n\r\n", &metrics);
//! assert!(answer.starts_with(b"HTTP/1.1 405 "));
//! ```

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use mailroom_core::metrics::Metrics;
use mailroom_server::limit::{ConnectionLimits, Refusal};
use mailroom_server::timeout::timed_out;
use mailroom_server::{Connection, Protocol, Server, Timeouts};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// Where `[metrics]` listens when the table has no `listen` key: loopback
/// only.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 9153);
/// The largest request head (request line and headers) read.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// How long a client has to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long writing the answer may take.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// The most connections served at once.
pub const MAX_CONNECTIONS: usize = 16;

/// The media type of the Prometheus text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// More series rendered for each scrape after the registry's (e.g. the
/// replication series of [`crate::replication::Node::render_prometheus`]).
pub type ExtraSeries = Arc<dyn Fn() -> BoxFuture<'static, String> + Send + Sync>;

/// The endpoint as a [`Protocol`] of the `mailroom_server` runtime.
struct Endpoint {
    metrics: Arc<Metrics>,
    extra: Option<ExtraSeries>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("extra", &self.extra.is_some())
            .finish_non_exhaustive()
    }
}

impl Protocol for Endpoint {
    fn name(&self) -> &'static str {
        "metrics"
    }

    fn refusal(&self, _: Refusal) -> Bytes {
        Bytes::from(status_only(503, "Service Unavailable"))
    }

    fn serve(&self, connection: Connection) -> BoxFuture<'static, ()> {
        let metrics = self.metrics.clone();
        let extra = self.extra.clone();
        Box::pin(async move {
            if let Err(e) =
                connection_answer(connection.stream, &metrics, extra, READ_TIMEOUT).await
            {
                tracing::debug!(error = %e, "metrics connection ended with an error");
            }
        })
    }
}

/// Serves `metrics` on `listener` until `shutdown` completes, on the
/// `mailroom_server` runtime: at most [`MAX_CONNECTIONS`] at once (more
/// get `503`), a write that makes no progress for [`WRITE_TIMEOUT`] drops
/// the connection.
/// `extra`, when given, adds its series after the registry's.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    extra: Option<ExtraSeries>,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    Server::new(Endpoint { metrics, extra })
        .limits(ConnectionLimits::new(MAX_CONNECTIONS, MAX_CONNECTIONS))
        .timeouts(Timeouts {
            idle: READ_TIMEOUT,
            read: READ_TIMEOUT,
            write: WRITE_TIMEOUT,
        })
        // Scrapes take milliseconds; whatever is still running is not waited for long.
        .shutdown_grace(Duration::from_millis(200))
        .serve(listener, shutdown)
        .await
}

/// Reads one request head (within `read_timeout`), answers it, closes.
async fn connection_answer<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    metrics: &Metrics,
    extra: Option<ExtraSeries>,
    read_timeout: Duration,
) -> io::Result<()> {
    let answer = match tokio::time::timeout(read_timeout, read_head(&mut stream)).await {
        Err(_) => status_only(408, "Request Timeout"),
        Ok(Err(HeadError::TooLarge)) => status_only(431, "Request Header Fields Too Large"),
        Ok(Err(HeadError::Closed)) => return Ok(()),
        Ok(Err(HeadError::Io(e))) if timed_out(&e).is_some() => status_only(408, "Request Timeout"),
        Ok(Err(HeadError::Io(e))) => return Err(e),
        Ok(Ok(head)) => {
            let extra = match extra {
                Some(render) => render().await,
                None => String::new(),
            };
            respond_with(&head, metrics, &extra)
        }
    };
    stream.write_all(&answer).await?;
    stream.shutdown().await
}

/// Why no request head was read.
#[derive(Debug)]
enum HeadError {
    /// More than [`MAX_REQUEST_HEAD`] bytes without the blank line.
    TooLarge,
    /// The client closed the connection first.
    Closed,
    /// The socket failed.
    Io(io::Error),
}

/// Reads until the blank line that ends the head (`\r\n\r\n`, or `\n\n`
/// from a lenient client), at most [`MAX_REQUEST_HEAD`] bytes.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Vec<u8>, HeadError> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let room = MAX_REQUEST_HEAD - head.len();
        if room == 0 {
            return Err(HeadError::TooLarge);
        }
        let n = stream
            .read(&mut chunk[..room.min(1024)])
            .await
            .map_err(HeadError::Io)?;
        if n == 0 {
            return Err(HeadError::Closed);
        }
        // Look for the end only around the new bytes.
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = head_end(&head[from..]) {
            head.truncate(from + end);
            return Ok(head);
        }
    }
}

/// The length of the head up to and including its blank line, if complete.
fn head_end(bytes: &[u8]) -> Option<usize> {
    let crlf = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    let lf = bytes.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The complete answer to a request head: status line, headers, body.
pub fn respond(head: &[u8], metrics: &Metrics) -> Vec<u8> {
    respond_with(head, metrics, "")
}

/// [`respond`] with `extra` series after the registry's.
pub fn respond_with(head: &[u8], metrics: &Metrics, extra: &str) -> Vec<u8> {
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let line = head[..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&head[..line_end]);
    let Ok(line) = std::str::from_utf8(line) else {
        return status_only(400, "Bad Request");
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return status_only(400, "Bad Request");
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return status_only(400, "Bad Request");
    }
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    if path != "/metrics" {
        return status_only(404, "Not Found");
    }
    match method {
        "GET" | "HEAD" => {
            let mut body = metrics.render_prometheus();
            body.push_str(extra);
            answer(200, "OK", CONTENT_TYPE, &[], &body, method == "GET")
        }
        _ => answer(
            405,
            "Method Not Allowed",
            "text/plain; charset=utf-8",
            &[("Allow", "GET, HEAD")],
            "405 Method Not Allowed\n",
            true,
        ),
    }
}

/// An error answer whose body repeats the status.
fn status_only(code: u16, reason: &str) -> Vec<u8> {
    answer(
        code,
        reason,
        "text/plain; charset=utf-8",
        &[],
        &format!("{code} {reason}\n"),
        true,
    )
}

fn answer(
    code: u16,
    reason: &str,
    content_type: &str,
    extra: &[(&str, &str)],
    body: &str,
    with_body: bool,
) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in extra {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    if with_body {
        out.push_str(body);
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    use mailroom_core::metrics::Protocol;
    use tokio::net::TcpStream;

    fn text(head: &[u8], metrics: &Metrics) -> String {
        String::from_utf8(respond(head, metrics)).unwrap()
    }

    #[test]
    fn extra_series_follow_the_registry() {
        let metrics = Metrics::new();
        let extra =
            "# TYPE mailroom_replication_connected gauge\nmailroom_replication_connected 1\n";
        let answer = respond_with(b"GET /metrics HTTP/1.1\r\n\r\n", &metrics, extra);
        let answer = String::from_utf8(answer).unwrap();
        let body = format!("{}{extra}", metrics.render_prometheus());
        assert!(answer.ends_with(&format!("\r\n\r\n{body}")), "{answer}");
        assert!(answer.contains(&format!("Content-Length: {}\r\n", body.len())));
        let head = respond_with(b"HEAD /metrics HTTP/1.1\r\n\r\n", &metrics, extra);
        assert!(String::from_utf8(head).unwrap().ends_with("\r\n\r\n"));
    }

    #[test]
    fn get_metrics_is_the_rendered_registry() {
        let metrics = Metrics::new();
        metrics.record_command(Protocol::Imap, "NOOP", "OK", Duration::from_millis(2));
        let body = metrics.render_prometheus();
        let expected = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        assert_eq!(
            text(b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", &metrics),
            expected
        );
        assert_eq!(text(b"GET /metrics?x=1 HTTP/1.0\n\n", &metrics), expected);
        let head = text(b"HEAD /metrics HTTP/1.1\r\n\r\n", &metrics);
        assert_eq!(head, expected.strip_suffix(body.as_str()).unwrap());
    }

    #[test]
    fn other_paths_methods_and_garbage() {
        let metrics = Metrics::new();
        let status = |head: &[u8]| text(head, &metrics).lines().next().unwrap().to_owned();
        assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), "HTTP/1.1 404 Not Found");
        assert_eq!(
            status(b"GET /metrics/ HTTP/1.1\r\n\r\n"),
            "HTTP/1.1 404 Not Found"
        );
        assert_eq!(
            status(b"POST /metrics HTTP/1.1\r\n\r\n"),
            "HTTP/1.1 405 Method Not Allowed"
        );
        assert!(
            text(b"DELETE /metrics HTTP/1.1\r\n\r\n", &metrics)
                .contains("\r\nAllow: GET, HEAD\r\n")
        );
        assert_eq!(
            status(b"POST /other HTTP/1.1\r\n\r\n"),
            "HTTP/1.1 404 Not Found"
        );
        for bad in [
            &b"GET /metrics\r\n\r\n"[..],
            b"GET /metrics HTTP/2\r\n\r\n",
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"\xff /metrics HTTP/1.1\r\n\r\n",
            b"\r\n\r\n",
        ] {
            assert_eq!(status(bad), "HTTP/1.1 400 Bad Request", "{bad:?}");
        }
    }

    #[test]
    fn the_head_ends_at_the_first_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody"), Some(24));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
    }

    async fn roundtrip(request: &[u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::new());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, metrics, None, async {
            let _ = stopped.await;
        }));
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(request).await.unwrap();
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        let _ = stop.send(());
        server.await.unwrap().unwrap();
        String::from_utf8(answer).unwrap()
    }

    #[tokio::test]
    async fn past_the_connection_limit_the_answer_is_503() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, Arc::new(Metrics::new()), None, async {
            let _ = stopped.await;
        }));
        // MAX_CONNECTIONS clients that say nothing hold every slot
        let mut held = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            let mut c = TcpStream::connect(addr).await.unwrap();
            c.write_all(b"GET /metrics HTTP/1.1\r\n").await.unwrap();
            held.push(c);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut late = TcpStream::connect(addr).await.unwrap();
        let mut answer = String::new();
        late.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
        drop(held);
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }

    fn resolve(toml_text: &str) -> Result<crate::config::Config, crate::config::ConfigError> {
        let file: crate::config::ConfigFile = toml::from_str(toml_text).unwrap();
        file.resolve(
            Some(std::path::Path::new("/etc/m.toml")),
            std::path::Path::new("/etc"),
        )
    }

    #[test]
    fn config_table() {
        assert_eq!(resolve("[imap]\n").unwrap().metrics, None);
        assert_eq!(
            resolve("[metrics]\n").unwrap().metrics,
            Some(DEFAULT_LISTEN)
        );
        let addr: SocketAddr = "127.0.0.1:9999".parse().unwrap();
        assert_eq!(
            resolve("[metrics]\nlisten = \"127.0.0.1:9999\"\n")
                .unwrap()
                .metrics,
            Some(addr)
        );
        let clash = resolve("[imap]\nlisten = \"127.0.0.1:9153\"\n[metrics]\n").unwrap_err();
        assert!(
            clash
                .to_string()
                .contains("[metrics] and [imap] both listen on 127.0.0.1:9153"),
            "{clash}"
        );
        // Port 0 never clashes.
        assert!(
            resolve("[imap]\nlisten = \"127.0.0.1:0\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n")
                .is_ok()
        );
        assert!(toml::from_str::<crate::config::ConfigFile>("[metrics]\nport = 1\n").is_err());
    }

    #[tokio::test]
    async fn serves_over_a_socket() {
        let answer = roundtrip(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.contains("mailroom_connections_open{protocol=\"imap\"} 0\n"));
    }

    #[tokio::test]
    async fn an_oversized_head_is_431() {
        // Exactly the limit without the blank line: the server reads it all
        // (so closing sends FIN, not RST) and finds no end.
        let mut request = b"GET /metrics HTTP/1.1\r\n".to_vec();
        request.resize(MAX_REQUEST_HEAD, b'a');
        let answer = roundtrip(&request).await;
        assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    }

    #[tokio::test]
    async fn a_silent_client_gets_408() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        client
            .write_all(b"GET /metrics HTTP/1.1\r\n")
            .await
            .unwrap();
        connection_answer(stream, &Metrics::new(), None, Duration::from_millis(100))
            .await
            .unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    }
}
