//! A line-based socket client with timeouts.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// A client for line-based protocols over any byte stream (TCP, TLS, a Unix
/// socket). Every read waits at most the client's timeout and panics after
/// it, so a server that goes quiet fails the test rather than hanging it.
///
/// The protocol harnesses add their reply formats on top (IMAP tags and
/// literals, POP3 multi-line bodies, LMTP `250-` continuations).
#[derive(Debug)]
pub struct LineClient<S> {
    /// The buffered stream; take it back with `io.into_inner()` (or
    /// [`LineClient::into_inner`]) to, say, start TLS on it.
    pub io: BufReader<S>,
    timeout: Duration,
}

impl<S: AsyncRead + AsyncWrite + Unpin> LineClient<S> {
    /// How long a read waits unless [`LineClient::with_timeout`] says otherwise.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// A client over `io` with [`LineClient::DEFAULT_TIMEOUT`].
    pub fn new(io: S) -> LineClient<S> {
        LineClient::with_timeout(io, Self::DEFAULT_TIMEOUT)
    }

    /// A client over `io` whose reads wait at most `timeout`.
    pub fn with_timeout(io: S, timeout: Duration) -> LineClient<S> {
        LineClient {
            io: BufReader::new(io),
            timeout,
        }
    }

    /// The stream (anything read ahead into the buffer is dropped).
    pub fn into_inner(self) -> S {
        self.io.into_inner()
    }

    /// Writes `bytes` and flushes.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.io.get_mut().write_all(bytes).await.unwrap();
        self.io.get_mut().flush().await.unwrap();
    }

    /// Writes `line` and CRLF.
    pub async fn send_line(&mut self, line: &str) {
        self.send(format!("{line}\r\n").as_bytes()).await;
    }

    /// Bytes up to and including the next `\n` (or up to EOF, if the stream
    /// ends mid-line); `None` at EOF or on a read error.
    pub async fn read_raw_line(&mut self) -> Option<Vec<u8>> {
        let mut buf = Vec::new();
        let n = tokio::time::timeout(self.timeout, self.io.read_until(b'\n', &mut buf))
            .await
            .unwrap_or_else(|_| panic!("no line from the server within {:?}", self.timeout))
            .ok()?;
        (n > 0).then_some(buf)
    }

    /// Exactly `n` bytes (an IMAP literal, say); `None` if the stream ends first.
    pub async fn read_exact(&mut self, n: usize) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; n];
        tokio::time::timeout(self.timeout, self.io.read_exact(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {n} bytes from the server within {:?}", self.timeout))
            .ok()?;
        Some(buf)
    }

    /// The next line without its CRLF, which must be there; `None` at EOF.
    pub async fn try_line_bytes(&mut self) -> Option<Vec<u8>> {
        let mut buf = self.read_raw_line().await?;
        assert!(buf.ends_with(b"\r\n"), "line ends with CRLF: {buf:?}");
        buf.truncate(buf.len() - 2);
        Some(buf)
    }

    /// The next line as UTF-8 without its CRLF; `None` at EOF.
    pub async fn try_line(&mut self) -> Option<String> {
        let buf = self.try_line_bytes().await?;
        Some(String::from_utf8(buf).unwrap())
    }

    /// The next line; panics at EOF (use [`LineClient::try_line`] to expect it).
    pub async fn line(&mut self) -> String {
        self.try_line().await.expect("server closed the connection")
    }

    /// Asserts that the server has closed the connection.
    pub async fn expect_closed(&mut self) {
        assert_eq!(self.try_line().await, None, "connection closed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_crlf_lines_raw_lines_and_exact_bytes() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let mut c = LineClient::new(ours);
        theirs
            .write_all(b"one\r\n{3}\r\nabctwo\nlast")
            .await
            .unwrap();
        drop(theirs);
        assert_eq!(c.line().await, "one");
        assert_eq!(c.read_raw_line().await.unwrap(), b"{3}\r\n");
        assert_eq!(c.read_exact(3).await.unwrap(), b"abc");
        assert_eq!(c.read_raw_line().await.unwrap(), b"two\n");
        assert_eq!(c.read_raw_line().await.unwrap(), b"last");
        c.expect_closed().await;
    }

    #[tokio::test]
    async fn sends_lines_with_crlf() {
        let (ours, theirs) = tokio::io::duplex(1024);
        let mut c = LineClient::new(ours);
        let mut peer = LineClient::new(theirs);
        c.send_line("NOOP").await;
        assert_eq!(peer.line().await, "NOOP");
    }

    #[tokio::test]
    #[should_panic(expected = "line ends with CRLF")]
    async fn a_bare_lf_is_not_a_line() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        theirs.write_all(b"bare\n").await.unwrap();
        let _ = LineClient::new(ours).try_line().await;
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "no line from the server")]
    async fn a_silent_server_times_out() {
        let (ours, _theirs) = tokio::io::duplex(1024);
        let _ = LineClient::with_timeout(ours, Duration::from_secs(1))
            .read_raw_line()
            .await;
    }
}
