//! The server side of the admin socket.

use std::io;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use mailroom_server::limit::{ConnectionLimits, Refusal};
use mailroom_server::{Connection, Protocol, Server, Timeouts};
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite,
    AsyncWriteExt as _, BufReader,
};
use tokio::net::UnixListener;

use super::wire::{ReplyLine, Request};
use super::{
    ArchiveSettings, MAX_CONNECTIONS, MAX_REQUEST_LINE, REQUEST_TIMEOUT, execute_with, greeting,
};
use crate::store::Store;

/// The admin socket of a running server. The socket file is removed when
/// this is dropped.
#[derive(Debug)]
pub struct AdminSocket {
    /// Taken by [`AdminSocket::serve`].
    listener: Option<UnixListener>,
    path: PathBuf,
    /// The uid allowed to connect besides root: the owner of the socket
    /// file, i.e. the user the server runs as.
    owner_uid: u32,
    /// The billing plugin and price note the archive commands use.
    archive: ArchiveSettings,
    /// The replication node the `replication` commands act on.
    replication: Option<crate::replication::Node>,
}

impl AdminSocket {
    /// Binds the socket at `path` with mode 0600. An existing file there is
    /// removed first: the caller must make sure no other server uses it
    /// (mailroomd holds its serve lock before calling this).
    pub fn bind(path: &Path) -> io::Result<AdminSocket> {
        match std::fs::remove_file(path) {
            Ok(()) => tracing::info!(path = %path.display(), "removed a stale admin socket"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let listener = UnixListener::bind(path)?;
        // Our own cleanup must not depend on the umask; the 0700 data
        // directory and the peer-credential check guard the moment before.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        let owner_uid = std::fs::metadata(path)?.uid();
        Ok(AdminSocket {
            listener: Some(listener),
            path: path.to_path_buf(),
            owner_uid,
            archive: ArchiveSettings::default(),
            replication: None,
        })
    }

    /// Gives the archive and billing commands the loaded billing plugin.
    pub fn with_archive(mut self, archive: ArchiveSettings) -> AdminSocket {
        self.archive = archive;
        self
    }

    /// Gives the `replication` commands the running node.
    pub fn with_replication(mut self, node: Option<crate::replication::Node>) -> AdminSocket {
        self.replication = node;
        self
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves admin connections until `stop` completes, on the
    /// `mailroom_server` runtime: at most [`MAX_CONNECTIONS`] at once (more
    /// get `NO`), [`REQUEST_TIMEOUT`] to send each request. Requests run on
    /// `store`; the quota commands check users in `users_file` (the users
    /// file or the PostgreSQL users table).
    pub async fn serve(
        mut self,
        store: Store,
        users_file: crate::users::Directory,
        stop: impl Future<Output = ()> + Send,
    ) -> io::Result<()> {
        let Some(listener) = self.listener.take() else {
            return Ok(());
        };
        let protocol = Admin {
            shared: Arc::new(Shared {
                store,
                users_file,
                archive: self.archive.clone(),
                replication: self.replication.clone(),
            }),
            owner_uid: self.owner_uid,
        };
        Server::new(protocol)
            .limits(ConnectionLimits::new(MAX_CONNECTIONS, MAX_CONNECTIONS))
            .timeouts(Timeouts {
                idle: REQUEST_TIMEOUT,
                read: REQUEST_TIMEOUT,
                write: REQUEST_TIMEOUT,
            })
            // In-flight requests get a moment, then are cut off by the
            // process exit; the store's commits are crash-safe either way.
            .shutdown_grace(std::time::Duration::from_secs(1))
            .serve(listener, stop)
            .await
        // `self` drops here: the socket file goes with it.
    }
}

/// What every admin connection works on.
#[derive(Debug)]
struct Shared {
    store: Store,
    users_file: crate::users::Directory,
    archive: ArchiveSettings,
    replication: Option<crate::replication::Node>,
}

/// The admin protocol, for the runtime.
#[derive(Debug)]
struct Admin {
    shared: Arc<Shared>,
    owner_uid: u32,
}

impl Protocol for Admin {
    fn name(&self) -> &'static str {
        "admin"
    }

    fn refusal(&self, _: Refusal) -> Bytes {
        refusal_text("too many admin connections; try again").into()
    }

    fn serve(&self, connection: Connection) -> BoxFuture<'static, ()> {
        let shared = self.shared.clone();
        let owner_uid = self.owner_uid;
        Box::pin(async move {
            let Connection {
                mut stream, info, ..
            } = connection;
            let uid = info.unix_uid;
            if uid != Some(0) && uid != Some(owner_uid) {
                tracing::warn!(?uid, "admin socket: connection from another user refused");
                let _ = stream
                    .write_all(refusal_text("permission denied").as_bytes())
                    .await;
                return;
            }
            if let Err(e) = connection_loop(stream, &shared).await {
                tracing::debug!("admin connection ended: {e}");
            }
        })
    }
}

impl Drop for AdminSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The greeting and a `NO` line: what a refused connection reads.
fn refusal_text(why: &str) -> String {
    format!("{}\n{}\n", greeting(), ReplyLine::No(why.into()).encode())
}

/// Serves one connection: greeting, then requests until EOF. The runtime's
/// idle timeout ([`REQUEST_TIMEOUT`]) ends a silent connection.
async fn connection_loop<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    shared: &Shared,
) -> io::Result<()> {
    let (read, mut write) = tokio::io::split(stream);
    let mut read = BufReader::new(read);
    write
        .write_all(format!("{}\n", greeting()).as_bytes())
        .await?;
    loop {
        let line = match read_line(&mut read).await {
            Ok(None) => return Ok(()),
            Ok(Some(line)) => line,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                let no = ReplyLine::No(e.to_string()).encode();
                write.write_all(format!("{no}\n").as_bytes()).await?;
                write.shutdown().await?;
                // Closing with unread input would reset the connection and
                // could destroy the reply before the client reads it: discard
                // what the client still sends, within bounds.
                let mut sink = tokio::io::sink();
                let mut rest = (&mut read).take(1 << 20);
                let drain = tokio::io::copy(&mut rest, &mut sink);
                let _ = tokio::time::timeout(std::time::Duration::from_secs(2), drain).await;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let request = match Request::decode(&line) {
            Ok(r) => r,
            Err(e) => {
                let no = ReplyLine::No(format!("bad request: {e}")).encode();
                write.write_all(format!("{no}\n").as_bytes()).await?;
                continue;
            }
        };
        tracing::info!(request = %line, "admin request");
        let replicated = match &shared.replication {
            Some(node) => crate::replication::execute(node, &request).await,
            None => None,
        };
        let reply = match replicated {
            Some(reply) => reply,
            None => {
                execute_with(&shared.store, &shared.users_file, &shared.archive, &request).await
            }
        };
        let mut out = String::new();
        for l in reply.lines {
            out.push_str(&ReplyLine::Data(l).encode());
            out.push('\n');
        }
        let last = match reply.outcome {
            Ok(()) => ReplyLine::Ok,
            Err(why) => ReplyLine::No(why),
        };
        out.push_str(&last.encode());
        out.push('\n');
        write.write_all(out.as_bytes()).await?;
    }
}

/// Reads one request line of at most [`MAX_REQUEST_LINE`] bytes; `None` at
/// a clean EOF. A longer line, or one that is not UTF-8, is `InvalidData`.
async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let limit = u64::try_from(MAX_REQUEST_LINE).unwrap_or(u64::MAX);
    let n = (&mut *reader)
        .take(limit)
        .read_until(b'\n', &mut buf)
        .await?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        if buf.len() >= MAX_REQUEST_LINE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("request line longer than {MAX_REQUEST_LINE} bytes"),
            ));
        }
        return Ok(None); // EOF in the middle of a line: the client gave up
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "request line is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_lines() {
        let mut r = BufReader::new(&b"1 quota-show a@b.c\r\nnext\n"[..]);
        assert_eq!(
            read_line(&mut r).await.unwrap().as_deref(),
            Some("1 quota-show a@b.c")
        );
        assert_eq!(read_line(&mut r).await.unwrap().as_deref(), Some("next"));
        assert_eq!(read_line(&mut r).await.unwrap(), None);

        let long = vec![b'x'; MAX_REQUEST_LINE + 10];
        let mut r = BufReader::new(&long[..]);
        let e = read_line(&mut r).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);

        let mut r = BufReader::new(&b"\xff\xfe\n"[..]);
        assert!(read_line(&mut r).await.is_err());
    }
}
