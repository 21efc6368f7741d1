//! The connection driver: reads bytes, runs the codec, calls the session
//! service, writes replies (streaming message bodies in bounded chunks).
//!
//! The idle, read and write timeouts are the runtime's, on the stream
//! underneath ([`mailroom_server::timeout`]); the driver says whether it
//! waits for a new command or the rest of one, and on an idle timeout says
//! goodbye. A write timeout (the client stopped reading a RETR) ends the
//! connection at once, and with it the session and its maildrop lock.

use bytes::BytesMut;
use mailroom_server::timeout::{TimeoutKind, timed_out};
use mailroom_server::{Shutdown, TimeoutControl};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tower::{Service, ServiceExt};

use crate::codec::{Action, Command, Pop3Codec, Reply, Status};
use crate::error::Pop3Error;

/// Output is written to the socket in pieces of about this size.
const CHUNK: usize = 64 * 1024;

/// How a connection's command loop ended.
pub(crate) enum Ended<IO> {
    /// The connection is finished.
    Closed,
    /// The client asked for STLS: hand the stream to the TLS acceptor.
    StartTls(IO),
}

/// Runs commands until the connection closes, the client asks for STLS, or
/// shutdown is signalled.
pub(crate) async fn run<IO, S>(
    mut io: IO,
    svc: &mut S,
    codec: &mut Pop3Codec,
    greeting: Option<Reply>,
    stop: &mut Shutdown,
    timeouts: &TimeoutControl,
) -> Result<Ended<IO>, Pop3Error>
where
    IO: AsyncRead + AsyncWrite + Unpin,
    S: Service<Command, Response = Reply>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut input = BytesMut::with_capacity(1024);
    let mut out = BytesMut::with_capacity(4096);
    if let Some(g) = greeting {
        g.encode(&mut out);
    }
    loop {
        while let Some(command) = codec.decode(&mut input) {
            let reply = match svc.ready().await {
                Ok(ready) => ready.call(command).await,
                Err(e) => Err(e),
            };
            let reply = match reply {
                Ok(r) => r,
                Err(e) => {
                    let e: Box<dyn std::error::Error + Send + Sync> = e.into();
                    tracing::warn!(error = %e, "pop3 session failed");
                    out.extend_from_slice(b"-ERR [SYS/TEMP] internal server error\r\n");
                    let _ = io.write_all(&out).await;
                    let _ = io.shutdown().await;
                    return Err(Pop3Error::Service(e));
                }
            };
            codec.set_expect_sasl_response(reply.status == Status::Continue);
            let action = reply.action;
            if let Some(mut writer) = reply.encode(&mut out) {
                loop {
                    let done = writer.fill(&mut out, CHUNK);
                    if out.len() >= CHUNK || done {
                        io.write_all(&out).await?;
                        out.clear();
                    }
                    if done {
                        break;
                    }
                }
            }
            match action {
                Action::StartTls => {
                    io.write_all(&out).await?;
                    io.flush().await?;
                    // `input` is dropped: commands pipelined in the clear
                    // after STLS must not be run over TLS (RFC 2595 §3.1).
                    return Ok(Ended::StartTls(io));
                }
                Action::Close => {
                    io.write_all(&out).await?;
                    let _ = io.shutdown().await;
                    return Ok(Ended::Closed);
                }
                _ => {}
            }
            if out.len() >= CHUNK {
                io.write_all(&out).await?;
                out.clear();
            }
        }
        if !out.is_empty() {
            io.write_all(&out).await?;
            out.clear();
        }
        io.flush().await?;
        if stop.is_requested() {
            return shut_down(io).await;
        }
        input.reserve(4096);
        // Half a command buffered: the read timeout applies, else idle.
        timeouts.set_in_command(!input.is_empty());
        tokio::select! {
            read = io.read_buf(&mut input) => match read {
                Ok(0) => return Ok(Ended::Closed),
                Ok(_) => {}
                Err(e) => match timed_out(&e) {
                    Some(TimeoutKind::Idle | TimeoutKind::Read) => {
                        let _ = io.write_all(b"-ERR autologout: idle for too long\r\n").await;
                        let _ = io.shutdown().await;
                        return Ok(Ended::Closed);
                    }
                    _ => return Err(e.into()),
                },
            },
            () = stop.requested() => return shut_down(io).await,
        }
    }
}

async fn shut_down<IO: AsyncWrite + Unpin>(mut io: IO) -> Result<Ended<IO>, Pop3Error> {
    let _ = io
        .write_all(b"-ERR [SYS/TEMP] server shutting down\r\n")
        .await;
    let _ = io.shutdown().await;
    Ok(Ended::Closed)
}
