//! COMPRESS=DEFLATE (RFC 4978): after `tag COMPRESS DEFLATE` and its
//! `OK`, both directions of the connection are raw DEFLATE streams
//! (RFC 1951, no zlib or gzip framing), compressed with `flate2`.
//!
//! The driver answers the command uncompressed, flushes, and then wraps
//! its connection (plain or TLS) in a [`DeflateStream`]; bytes the client
//! already sent after the command are the start of its compressed stream
//! and are fed to the inflater first. Every time the driver flushes (after
//! each batch of responses, each continuation, each IDLE update) the
//! deflater does a sync flush, so the client can decode everything sent
//! so far without waiting for more.
//!
//! Memory: a connection without COMPRESS holds nothing of this; with it,
//! the deflate state (about 300 KiB with `flate2`'s Rust backend at the
//! default level), the inflate state (about 45 KiB), an 8 KiB input buffer
//! and an output buffer that is drained before more is compressed (at
//! most [`MAX_PENDING_OUTPUT`] waits for a slow reader). A second COMPRESS
//! is `NO [COMPRESSIONACTIVE]`; a mechanism other than DEFLATE is `BAD`.
//! Compressed input that is not valid DEFLATE ends the connection (an
//! I/O error of kind `InvalidData`): there is no way to resynchronise.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::BytesMut;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The capability.
pub(crate) const CAPABILITY: &str = "COMPRESS=DEFLATE";

/// The mechanism name.
pub(crate) const DEFLATE: &str = "DEFLATE";

/// How much compressed input is read from the socket at a time.
const INPUT_BUFFER: usize = 8 * 1024;

/// How much compressed output may wait for the socket before writes wait.
pub const MAX_PENDING_OUTPUT: usize = 64 * 1024;

/// A connection whose both directions are raw DEFLATE streams.
#[derive(Debug)]
pub struct DeflateStream<S> {
    inner: S,
    inflate: Decompress,
    /// Compressed input not yet inflated: `input[in_pos..]`.
    input: BytesMut,
    in_pos: usize,
    /// The peer's stream ended (or the socket did).
    in_done: bool,
    deflate: Compress,
    /// Compressed output not yet written: `output[out_pos..]`.
    output: Vec<u8>,
    out_pos: usize,
    /// Data was compressed since the last sync flush.
    unflushed: bool,
}

impl<S> DeflateStream<S> {
    /// Wraps `inner`; `already_read` holds bytes read from it that belong
    /// to the compressed stream (what the client pipelined after COMPRESS).
    pub fn new(inner: S, already_read: BytesMut) -> DeflateStream<S> {
        DeflateStream {
            inner,
            inflate: Decompress::new(false),
            input: already_read,
            in_pos: 0,
            in_done: false,
            deflate: Compress::new(Compression::default(), false),
            output: Vec::new(),
            out_pos: 0,
            unflushed: false,
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Compresses `data` (all of it) into `output`, with `flush`.
    fn compress(&mut self, mut data: &[u8], flush: FlushCompress) -> io::Result<()> {
        loop {
            if self.output.capacity() - self.output.len() < 1024 {
                self.output
                    .reserve(data.len().clamp(4096, MAX_PENDING_OUTPUT));
            }
            let before_in = self.deflate.total_in();
            let room = self.output.capacity() - self.output.len();
            let before_len = self.output.len();
            self.deflate
                .compress_vec(data, &mut self.output, flush)
                .map_err(|e| io::Error::other(e.to_string()))?;
            let used = usize::try_from(self.deflate.total_in() - before_in).unwrap_or(data.len());
            data = &data[used.min(data.len())..];
            let produced = self.output.len() - before_len;
            // done when the input is taken and the output did not fill up
            // (a full buffer may mean the flush has more to give)
            if data.is_empty() && produced < room {
                return Ok(());
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> DeflateStream<S> {
    /// Writes out pending compressed output; `Ready` once all is written.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_pos < self.output.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.output[self.out_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_pos += n;
        }
        self.output.clear();
        self.out_pos = 0;
        if self.output.capacity() > MAX_PENDING_OUTPUT {
            self.output.shrink_to(MAX_PENDING_OUTPUT);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for DeflateStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            // inflate what is buffered (also drains output the inflater holds)
            let before_in = this.inflate.total_in();
            let before_out = this.inflate.total_out();
            let status = this
                .inflate
                .decompress(
                    &this.input[this.in_pos..],
                    buf.initialize_unfilled(),
                    FlushDecompress::None,
                )
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let used = usize::try_from(this.inflate.total_in() - before_in).unwrap_or(0);
            let produced = usize::try_from(this.inflate.total_out() - before_out).unwrap_or(0);
            this.in_pos += used;
            buf.advance(produced);
            if produced > 0 {
                return Poll::Ready(Ok(()));
            }
            if status == Status::StreamEnd || this.in_done {
                // the peer ended its stream: end of input
                return Poll::Ready(Ok(()));
            }
            if this.in_pos < this.input.len() && used > 0 {
                continue;
            }
            // need more compressed input
            if this.in_pos >= this.input.len() {
                this.input.clear();
                this.in_pos = 0;
            }
            if this.input.capacity() - this.input.len() < INPUT_BUFFER / 2 {
                this.input.reserve(INPUT_BUFFER);
            }
            let mut chunk = [0u8; INPUT_BUFFER];
            let mut rb = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            if rb.filled().is_empty() {
                this.in_done = true;
                return Poll::Ready(Ok(()));
            }
            this.input.extend_from_slice(rb.filled());
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for DeflateStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.output.len() - this.out_pos >= MAX_PENDING_OUTPUT {
            ready!(this.poll_drain(cx))?;
        } else if this.out_pos < this.output.len() {
            // make progress without waiting
            if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
                return Poll::Ready(Err(e));
            }
        }
        this.compress(data, FlushCompress::None)?;
        this.unflushed = true;
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.unflushed {
            this.compress(&[], FlushCompress::Sync)?;
            this.unflushed = false;
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.unflushed {
            this.compress(&[], FlushCompress::Finish)?;
            this.unflushed = false;
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn both_directions_round_trip_with_sync_flushes() {
        let (a, b) = tokio::io::duplex(1024);
        let mut a = DeflateStream::new(a, BytesMut::new());
        let mut b = DeflateStream::new(b, BytesMut::new());
        let text: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let sent = text.clone();
        let writer = tokio::spawn(async move {
            a.write_all(&sent).await.unwrap();
            a.flush().await.unwrap();
            a.write_all(b"* OK after a flush\r\n").await.unwrap();
            a.flush().await.unwrap();
            let mut reply = [0u8; 5];
            a.read_exact(&mut reply).await.unwrap();
            assert_eq!(&reply, b"done!");
        });
        let mut got = vec![0u8; text.len() + 20];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[..text.len()], &text[..]);
        assert_eq!(&got[text.len()..], b"* OK after a flush\r\n");
        b.write_all(b"done!").await.unwrap();
        b.flush().await.unwrap();
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn bytes_read_before_the_switch_are_inflated_first() {
        let mut c = Compress::new(Compression::default(), false);
        let mut z = Vec::with_capacity(256);
        c.compress_vec(b"a1 NOOP\r\n", &mut z, FlushCompress::Sync)
            .unwrap();
        let (head, tail) = z.split_at(3);
        let (mut client, server) = tokio::io::duplex(1024);
        let mut s = DeflateStream::new(server, BytesMut::from(head));
        client.write_all(tail).await.unwrap();
        let mut line = [0u8; 9];
        s.read_exact(&mut line).await.unwrap();
        assert_eq!(&line, b"a1 NOOP\r\n");
    }

    #[tokio::test]
    async fn garbage_input_is_an_error_not_a_panic() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut s = DeflateStream::new(server, BytesMut::new());
        client.write_all(&[0xff; 64]).await.unwrap();
        let mut buf = [0u8; 16];
        let e = s.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }
}
