//! The client side of the admin socket (blocking: admin commands are short
//! single-threaded programs).

use std::io::{self, BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::exec::Reply;
use super::wire::{ReplyLine, Request, WireError};
use super::{MAX_REPLY_BYTES, MAX_REPLY_LINE, PROTOCOL_VERSION};

/// How long the client waits for the server's greeting.
const GREETING_TIMEOUT: Duration = Duration::from_secs(10);

/// Why talking to the running server failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// Connecting, reading or writing failed.
    #[error("admin socket {path}: {source}")]
    Io {
        /// The socket.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The server speaks another protocol version (a different mailroomd build).
    #[error(
        "admin socket {path}: the running server speaks admin protocol {server:?}, \
         this mailroomd speaks {PROTOCOL_VERSION}; use the mailroomd binary the server runs"
    )]
    Version {
        /// The socket.
        path: PathBuf,
        /// What the server's greeting said.
        server: String,
    },
    /// The server sent something that does not follow the protocol.
    #[error("admin socket {path}: protocol error: {reason}")]
    Protocol {
        /// The socket.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
}

/// A connection to a running server's admin socket.
#[derive(Debug)]
pub struct Client {
    path: PathBuf,
    reader: BufReader<UnixStream>,
}

impl Client {
    /// Connects to the admin socket at `path`. `Ok(None)` means no server
    /// is running: there is no socket, or nobody listens on it (a server
    /// that was killed leaves a stale socket behind).
    pub fn connect(path: &Path) -> Result<Option<Client>, ControlError> {
        let io_err = |source| ControlError::Io {
            path: path.to_path_buf(),
            source,
        };
        let stream = match UnixStream::connect(path) {
            Ok(s) => s,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(io_err(e)),
        };
        stream
            .set_read_timeout(Some(GREETING_TIMEOUT))
            .map_err(io_err)?;
        let mut client = Client {
            path: path.to_path_buf(),
            reader: BufReader::new(stream),
        };
        let greeting = client.line()?;
        match greeting.strip_prefix("mailroomd-admin ") {
            Some(v) if v == PROTOCOL_VERSION.to_string() => {}
            Some(v) => {
                return Err(ControlError::Version {
                    path: path.to_path_buf(),
                    server: v.chars().take(16).collect(),
                });
            }
            None => return Err(client.protocol(format!("unexpected greeting {greeting:?}"))),
        }
        // A request may run for a long time (reconstruct): no read timeout.
        client
            .reader
            .get_ref()
            .set_read_timeout(None)
            .map_err(io_err)?;
        Ok(Some(client))
    }

    /// Sends one request and reads its whole reply.
    pub fn call(&mut self, request: &Request) -> Result<Reply, ControlError> {
        let line = format!("{}\n", request.encode());
        let stream = self.reader.get_mut();
        stream
            .write_all(line.as_bytes())
            .and_then(|()| stream.flush())
            .map_err(|source| ControlError::Io {
                path: self.path.clone(),
                source,
            })?;
        let mut lines = Vec::new();
        let mut total = 0usize;
        loop {
            let line = self.line()?;
            total += line.len() + 1;
            if total > MAX_REPLY_BYTES {
                return Err(self.protocol(format!("reply larger than {MAX_REPLY_BYTES} bytes")));
            }
            match ReplyLine::decode(&line).map_err(|WireError(e)| self.protocol(e))? {
                ReplyLine::Data(text) => lines.push(text),
                ReplyLine::Ok => {
                    return Ok(Reply {
                        lines,
                        outcome: Ok(()),
                    });
                }
                ReplyLine::No(why) => {
                    return Ok(Reply {
                        lines,
                        outcome: Err(why),
                    });
                }
            }
        }
    }

    fn protocol(&self, reason: String) -> ControlError {
        ControlError::Protocol {
            path: self.path.clone(),
            reason,
        }
    }

    /// One line of at most [`MAX_REPLY_LINE`] bytes, without its LF.
    fn line(&mut self) -> Result<String, ControlError> {
        let mut buf = Vec::new();
        let limit = u64::try_from(MAX_REPLY_LINE).unwrap_or(u64::MAX);
        let n = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut buf)
            .map_err(|source| ControlError::Io {
                path: self.path.clone(),
                source,
            })?;
        if n == 0 {
            return Err(self.protocol("the server closed the connection".into()));
        }
        if buf.pop() != Some(b'\n') {
            return Err(self.protocol(if buf.len() + 1 >= MAX_REPLY_LINE {
                format!("reply line longer than {MAX_REPLY_LINE} bytes")
            } else {
                "the server closed the connection in the middle of a line".into()
            }));
        }
        String::from_utf8(buf).map_err(|_| self.protocol("reply line is not UTF-8".into()))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;

    use super::*;

    /// A fake server that greets with `greeting` and answers one request
    /// with `reply`; returns the request it got.
    fn fake(
        greeting: &'static str,
        reply: &'static str,
    ) -> (tempfile::TempDir, PathBuf, std::thread::JoinHandle<String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let listener = UnixListener::bind(&path).unwrap();
        let handle = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(greeting.as_bytes()).unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut req = String::new();
            let _ = r.read_line(&mut req);
            let _ = s.write_all(reply.as_bytes());
            req
        });
        (dir, path, handle)
    }

    fn show() -> Request {
        Request::QuotaShow {
            user: "a@b.c".into(),
        }
    }

    #[test]
    fn not_running() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.sock");
        assert!(Client::connect(&path).unwrap().is_none(), "no socket");
        // a stale socket nobody listens on
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        assert!(Client::connect(&path).unwrap().is_none(), "stale socket");
    }

    #[test]
    fn reply_and_no() {
        let (_d, path, h) = fake("mailroomd-admin 1\n", "* one\n* two\nOK\n");
        let reply = Client::connect(&path)
            .unwrap()
            .unwrap()
            .call(&show())
            .unwrap();
        assert_eq!(reply.lines, ["one", "two"]);
        assert_eq!(reply.outcome, Ok(()));
        assert_eq!(h.join().unwrap(), "1 quota-show a@b.c\n");

        let (_d, path, _h) = fake("mailroomd-admin 1\n", "NO no such user\n");
        let reply = Client::connect(&path)
            .unwrap()
            .unwrap()
            .call(&show())
            .unwrap();
        assert_eq!(reply.outcome, Err("no such user".into()));
    }

    #[test]
    fn protocol_errors() {
        let (_d, path, _h) = fake("mailroomd-admin 2\n", "");
        let e = Client::connect(&path).unwrap_err();
        assert!(matches!(e, ControlError::Version { .. }), "{e}");

        let (_d, path, _h) = fake("SSH-2.0\n", "");
        assert!(Client::connect(&path).is_err());

        let (_d, path, _h) = fake("mailroomd-admin 1\n", "* half a line");
        let e = Client::connect(&path)
            .unwrap()
            .unwrap()
            .call(&show())
            .unwrap_err();
        assert!(e.to_string().contains("closed"), "{e}");

        let (_d, path, _h) = fake("mailroomd-admin 1\n", "WHAT\n");
        assert!(
            Client::connect(&path)
                .unwrap()
                .unwrap()
                .call(&show())
                .is_err()
        );
    }
}
