use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// I/O whose reads fail with [`io::ErrorKind::TimedOut`] when no input
/// arrives for the timeout. Writes do not reset that timer; a write (or
/// flush) that cannot make progress for the same time fails too, so a
/// client that stops reading its responses cannot hold a connection forever.
pub struct IdleTimeout<IO> {
    io: IO,
    timeout: Duration,
    sleep: Pin<Box<Sleep>>,
    write_sleep: Pin<Box<Sleep>>,
    write_blocked: bool,
}

impl<IO: std::fmt::Debug> std::fmt::Debug for IdleTimeout<IO> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdleTimeout")
            .field("io", &self.io)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl<IO> IdleTimeout<IO> {
    /// Wraps I/O.
    pub fn new(io: IO, timeout: Duration) -> IdleTimeout<IO> {
        IdleTimeout {
            io,
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
            write_sleep: Box::pin(tokio::time::sleep(timeout)),
            write_blocked: false,
        }
    }

    /// Turns a pending write into a timeout once it has been blocked too long.
    fn write_progress<T>(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match r {
            Poll::Ready(r) => {
                self.write_blocked = false;
                Poll::Ready(r)
            }
            Poll::Pending => {
                if !self.write_blocked {
                    self.write_blocked = true;
                    let deadline = Instant::now() + self.timeout;
                    self.write_sleep.as_mut().reset(deadline);
                }
                match self.write_sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "client stopped reading",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    /// The wrapped I/O.
    pub fn get_ref(&self) -> &IO {
        &self.io
    }

    /// The wrapped I/O, mutably.
    pub fn get_mut(&mut self) -> &mut IO {
        &mut self.io
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for IdleTimeout<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(r) => {
                let deadline = Instant::now() + this.timeout;
                this.sleep.as_mut().reset(deadline);
                Poll::Ready(r)
            }
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "client idle for too long",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        self.write_progress(cx, r)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_flush(cx);
        self.write_progress(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.write_progress(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn read_times_out_without_input_and_resets_on_input() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut a = IdleTimeout::new(a, Duration::from_millis(100));
        b.write_all(b"x").await.unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(a.read(&mut buf).await.unwrap(), 1);
        let start = std::time::Instant::now();
        let err = a.read(&mut buf).await.unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(90));
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_write_the_peer_never_reads_times_out() {
        let (a, _b) = tokio::io::duplex(16);
        let mut a = IdleTimeout::new(a, Duration::from_millis(100));
        let err = a.write_all(&[0u8; 1024]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
