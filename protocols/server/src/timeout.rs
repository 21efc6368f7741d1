//! Read, idle and write timeouts, applied to a connection's bytes.
//!
//! [`TimedIo`] wraps the socket under TLS, so every protocol gets the same
//! three bounds whatever its driver looks like:
//!
//! - **idle**: how long the server waits for the *next command* (IMAP's
//!   autologout, 30 minutes by RFC 3501 §5.4; POP3 10 minutes; LMTP 5);
//! - **read**: how long a read may wait *in the middle of a command* (a
//!   literal or a message trickling in); a driver says which of the two
//!   applies with [`TimeoutControl::set_in_command`];
//! - **write**: how long a write (or flush) may make no progress. A client
//!   that stops reading a large FETCH or RETR fills the socket's buffers;
//!   once a write has been blocked this long the connection is dropped, so
//!   it releases everything it held (a POP3 maildrop lock).
//!
//! The timers measure silence, not totals: a read timer starts when a read
//! first finds nothing to read and stops when bytes arrive; a write timer
//! starts when a write first finds the socket full and stops when the
//! socket takes bytes again. After a write timeout every further read,
//! write or flush fails at once (nothing is left to say to a peer that does
//! not read), so a driver that tries to say goodbye does not wait again.
//!
//! The errors are [`io::ErrorKind::TimedOut`] carrying a [`TimedOut`]; use
//! [`timed_out`] to tell which timer fired.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The three timeouts of a connection (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Waiting for the next command. Default 30 minutes (IMAP's minimum).
    pub idle: Duration,
    /// Waiting for more of a command already started. Default 5 minutes.
    pub read: Duration,
    /// A write making no progress. Default 60 seconds.
    pub write: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            idle: Duration::from_secs(30 * 60),
            read: Duration::from_secs(5 * 60),
            write: Duration::from_secs(60),
        }
    }
}

/// Which timer fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// No command came for [`Timeouts::idle`].
    Idle,
    /// A command stopped arriving for [`Timeouts::read`].
    Read,
    /// The peer stopped reading for [`Timeouts::write`].
    Write,
}

/// The error inside an [`io::ErrorKind::TimedOut`] from [`TimedIo`]. The
/// peer's fault (it went silent or stopped reading); the connection is
/// over, retrying on it cannot help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", match .0 {
    TimeoutKind::Idle => "client idle for too long",
    TimeoutKind::Read => "client stopped sending in the middle of a command",
    TimeoutKind::Write => "client stopped reading",
})]
pub struct TimedOut(pub TimeoutKind);

impl TimedOut {
    fn io(kind: TimeoutKind) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, TimedOut(kind))
    }
}

/// Which timer an I/O error comes from, if it is a [`TimedIo`] timeout
/// (looked for through wrappers such as TLS, which keep the inner error).
pub fn timed_out(error: &io::Error) -> Option<TimeoutKind> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = error.get_ref().map(|e| e as _);
    while let Some(e) = source {
        if let Some(t) = e.downcast_ref::<TimedOut>() {
            return Some(t.0);
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            source = io.get_ref().map(|e| e as _);
        } else {
            source = e.source();
        }
    }
    None
}

/// Tells a connection's [`TimedIo`] whether the driver waits for a new
/// command (the idle timeout applies) or for the rest of one (the read
/// timeout). Cheap to clone; clones control the same connection.
#[derive(Debug, Clone, Default)]
pub struct TimeoutControl {
    in_command: Arc<AtomicBool>,
}

impl TimeoutControl {
    /// `true` while the driver waits for the rest of a command (a literal,
    /// a message body), `false` (the start) while it waits for the next one.
    pub fn set_in_command(&self, in_command: bool) {
        self.in_command.store(in_command, Ordering::Relaxed);
    }

    fn in_command(&self) -> bool {
        self.in_command.load(Ordering::Relaxed)
    }
}

/// I/O with [`Timeouts`] (see the module docs).
pub struct TimedIo<IO> {
    io: IO,
    timeouts: Timeouts,
    control: TimeoutControl,
    read_sleep: Pin<Box<Sleep>>,
    /// The read timer runs, for a read in command (`true`) or idle.
    read_armed: Option<bool>,
    write_sleep: Pin<Box<Sleep>>,
    write_armed: bool,
    /// A write timed out: the connection is dead.
    write_failed: bool,
}

impl<IO: fmt::Debug> fmt::Debug for TimedIo<IO> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimedIo")
            .field("io", &self.io)
            .field("timeouts", &self.timeouts)
            .field("write_failed", &self.write_failed)
            .finish_non_exhaustive()
    }
}

impl<IO> TimedIo<IO> {
    /// Wraps `io`; `control` says which read timeout applies.
    pub fn new(io: IO, timeouts: Timeouts, control: TimeoutControl) -> TimedIo<IO> {
        TimedIo {
            io,
            timeouts,
            control,
            read_sleep: Box::pin(tokio::time::sleep(timeouts.idle)),
            read_armed: None,
            write_sleep: Box::pin(tokio::time::sleep(timeouts.write)),
            write_armed: false,
            write_failed: false,
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

    /// Turns a write blocked for too long into a timeout.
    fn write_progress<T>(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match r {
            Poll::Ready(r) => {
                self.write_armed = false;
                Poll::Ready(r)
            }
            Poll::Pending => {
                if !self.write_armed {
                    self.write_armed = true;
                    self.write_sleep
                        .as_mut()
                        .reset(Instant::now() + self.timeouts.write);
                }
                match self.write_sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        self.write_failed = true;
                        Poll::Ready(Err(TimedOut::io(TimeoutKind::Write)))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for TimedIo<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.write_failed {
            return Poll::Ready(Err(TimedOut::io(TimeoutKind::Write)));
        }
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.read_armed = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let in_command = this.control.in_command();
                if this.read_armed != Some(in_command) {
                    this.read_armed = Some(in_command);
                    let timeout = if in_command {
                        this.timeouts.read
                    } else {
                        this.timeouts.idle
                    };
                    this.read_sleep.as_mut().reset(Instant::now() + timeout);
                }
                match this.read_sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.read_armed = None;
                        let kind = if in_command {
                            TimeoutKind::Read
                        } else {
                            TimeoutKind::Idle
                        };
                        Poll::Ready(Err(TimedOut::io(kind)))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for TimedIo<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.write_failed {
            return Poll::Ready(Err(TimedOut::io(TimeoutKind::Write)));
        }
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        self.write_progress(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.write_failed {
            return Poll::Ready(Err(TimedOut::io(TimeoutKind::Write)));
        }
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.write_progress(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.write_failed {
            return Poll::Ready(Err(TimedOut::io(TimeoutKind::Write)));
        }
        let r = Pin::new(&mut self.io).poll_flush(cx);
        self.write_progress(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.write_failed {
            return Poll::Ready(Err(TimedOut::io(TimeoutKind::Write)));
        }
        let r = Pin::new(&mut self.io).poll_shutdown(cx);
        self.write_progress(cx, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn short() -> Timeouts {
        Timeouts {
            idle: Duration::from_millis(300),
            read: Duration::from_millis(100),
            write: Duration::from_millis(100),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn idle_and_read_timeouts_follow_the_control() {
        let (a, mut b) = tokio::io::duplex(64);
        let control = TimeoutControl::default();
        let mut a = TimedIo::new(a, short(), control.clone());
        b.write_all(b"x").await.unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(a.read(&mut buf).await.unwrap(), 1);
        let start = Instant::now();
        let err = a.read(&mut buf).await.unwrap_err();
        assert_eq!(timed_out(&err), Some(TimeoutKind::Idle));
        assert!(start.elapsed() >= Duration::from_millis(300));
        control.set_in_command(true);
        let start = Instant::now();
        let err = a.read(&mut buf).await.unwrap_err();
        assert_eq!(timed_out(&err), Some(TimeoutKind::Read));
        assert!(start.elapsed() < Duration::from_millis(300));
        // input keeps the connection alive however long it takes in total
        control.set_in_command(false);
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            b.write_all(b"y").await.unwrap();
            assert_eq!(a.read(&mut buf).await.unwrap(), 1);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_the_peer_never_reads_times_out_and_poisons() {
        let (a, _b) = tokio::io::duplex(16);
        let mut a = TimedIo::new(a, short(), TimeoutControl::default());
        let err = a.write_all(&[0u8; 1024]).await.unwrap_err();
        assert_eq!(timed_out(&err), Some(TimeoutKind::Write));
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        let start = Instant::now();
        assert!(a.write_all(b"* BYE\r\n").await.is_err());
        assert!(a.flush().await.is_err());
        assert!(a.read(&mut [0u8; 1]).await.is_err());
        assert_eq!(start.elapsed(), Duration::ZERO, "no second wait");
    }

    #[test]
    fn timed_out_looks_through_wrappers() {
        let inner = TimedOut::io(TimeoutKind::Write);
        let wrapped = io::Error::other(inner);
        assert_eq!(timed_out(&wrapped), Some(TimeoutKind::Write));
        assert_eq!(timed_out(&io::Error::other("x")), None);
    }
}
