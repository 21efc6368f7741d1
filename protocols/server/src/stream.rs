//! The byte stream a protocol gets: the accepted socket, with the bytes
//! read past a PROXY header put back in front, the [timeouts](crate::timeout)
//! and, on implicit-TLS listeners, TLS.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

use crate::timeout::TimedIo;

/// Any byte stream an integrator hands to
/// [`Server::serve_io`](crate::Server::serve_io).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// An accepted connection's transport.
pub(crate) enum Transport {
    Tcp(QuickAck),
    Unix(UnixStream),
    Other(Box<dyn Io>),
}

/// A transport with bytes already read from it (after a PROXY header) to
/// be read again first.
pub(crate) struct Socket {
    transport: Transport,
    unread: Bytes,
}

impl Socket {
    pub(crate) fn new(transport: Transport) -> Socket {
        Socket {
            transport,
            unread: Bytes::new(),
        }
    }

    pub(crate) fn unread(&mut self, bytes: Bytes) {
        self.unread = bytes;
    }
}

macro_rules! each {
    ($t:expr, $io:ident => $e:expr) => {
        match $t {
            Transport::Tcp($io) => $e,
            Transport::Unix($io) => $e,
            Transport::Other($io) => $e,
        }
    };
}

impl AsyncRead for Socket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.unread.is_empty() {
            let n = this.unread.len().min(buf.remaining());
            buf.put_slice(&this.unread[..n]);
            this.unread.advance(n);
            return Poll::Ready(Ok(()));
        }
        each!(&mut this.transport, io => Pin::new(io).poll_read(cx, buf))
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(&mut self.transport, io => Pin::new(io).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each!(&mut self.transport, io => Pin::new(io).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        each!(&self.transport, io => io.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(&mut self.transport, io => Pin::new(io).poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(&mut self.transport, io => Pin::new(io).poll_shutdown(cx))
    }
}

enum Inner {
    Plain(TimedIo<Socket>),
    Tls(Box<tokio_rustls::server::TlsStream<TimedIo<Socket>>>),
}

/// A connection's bytes, as the runtime hands them to a protocol: already
/// inside TLS on an implicit-TLS listener, bounded by the listener's
/// [`Timeouts`](crate::timeout::Timeouts) either way. A protocol's
/// STARTTLS wraps it in TLS again like any stream.
pub struct Stream(Inner);

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("tls", &matches!(self.0, Inner::Tls(_)))
            .finish_non_exhaustive()
    }
}

impl Stream {
    pub(crate) fn plain(io: TimedIo<Socket>) -> Stream {
        Stream(Inner::Plain(io))
    }

    pub(crate) fn tls(io: tokio_rustls::server::TlsStream<TimedIo<Socket>>) -> Stream {
        Stream(Inner::Tls(Box::new(io)))
    }

    /// Whether the runtime did TLS on it (implicit TLS).
    pub fn is_tls(&self) -> bool {
        matches!(self.0, Inner::Tls(_))
    }

    /// The connection's `tls-exporter` channel-binding value, when the
    /// runtime did TLS 1.3 on it (see [`tls_exporter`]).
    pub fn tls_exporter(&self) -> Option<[u8; 32]> {
        match &self.0 {
            Inner::Tls(io) => tls_exporter(io.get_ref().1),
            Inner::Plain(_) => None,
        }
    }
}

/// The RFC 9266 `tls-exporter` channel-binding value of a server
/// connection: 32 bytes exported with the label `EXPORTER-Channel-Binding`
/// and no context. Only on TLS 1.3: RFC 9266 §3 rules it out on TLS 1.2
/// without the extended master secret, which cannot be checked here.
pub fn tls_exporter(conn: &rustls::ServerConnection) -> Option<[u8; 32]> {
    if conn.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3) {
        return None;
    }
    conn.export_keying_material([0u8; 32], b"EXPORTER-Channel-Binding", None)
        .ok()
}

macro_rules! inner {
    ($s:expr, $io:ident => $e:expr) => {
        match $s {
            Inner::Plain($io) => $e,
            Inner::Tls($io) => $e,
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        inner!(&mut self.0, io => Pin::new(io).poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        inner!(&mut self.0, io => Pin::new(io).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        inner!(&mut self.0, io => Pin::new(io).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        inner!(&self.0, io => io.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        inner!(&mut self.0, io => Pin::new(io).poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        inner!(&mut self.0, io => Pin::new(io).poll_shutdown(cx))
    }
}

/// A TCP connection that acknowledges received data at once instead of
/// after the delayed-ACK timer (`TCP_QUICKACK`, re-armed after every read;
/// elsewhere than Linux it only passes the stream through).
///
/// Why: a client without `TCP_NODELAY` that sends a literal and then its
/// final CRLF in two writes (Python's imaplib, and so offlineimap) has the
/// CRLF held back by Nagle's algorithm until the literal is acknowledged,
/// while the server, with nothing to send until the command is complete,
/// delays that acknowledgement by up to 40 ms: every APPEND would take
/// 40 ms. The runtime wraps every accepted TCP socket in it.
#[derive(Debug)]
pub struct QuickAck(TcpStream);

impl QuickAck {
    /// Wraps an accepted connection.
    pub fn new(stream: TcpStream) -> QuickAck {
        QuickAck(stream)
    }

    /// The connection.
    pub fn get_ref(&self) -> &TcpStream {
        &self.0
    }

    fn ack_promptly(&self) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let _ = self.0.set_quickack(true);
        }
    }
}

impl AsyncRead for QuickAck {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.0).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.ack_promptly();
        }
        r
    }
}

impl AsyncWrite for QuickAck {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
