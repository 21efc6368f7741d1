//! Embedding the IMAP server in your own tokio program, over the in-memory
//! store, with one static user (`demo@example.com`, password `demo`).
//!
//! `cargo run -p mailroom-imap --example embed` serves until Ctrl-C;
//! with `-- --self-test` it logs in once, logs out and exits (CI runs that).

use std::sync::Arc;

use mailroom_core::{Authenticator, Credentials, Error, Principal, Result};
use mailroom_imap::{ImapConfig, ImapServer, TlsMode};
use mailroom_store_memory::MemoryStore;

/// One user with a fixed password.
#[derive(Debug)]
struct StaticAuth;

#[async_trait::async_trait]
impl Authenticator for StaticAuth {
    async fn authenticate(&self, c: &Credentials) -> Result<Principal> {
        match (c.authcid.as_str(), c.password.as_str()) {
            ("demo@example.com", "demo") => Ok(Principal::user("demo@example.com")),
            _ => Err(Error::AuthFailed),
        }
    }

    async fn lookup(&self, user: &str) -> Result<Option<Principal>> {
        Ok((user == "demo@example.com").then(|| Principal::user(user)))
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let store = Arc::new(MemoryStore::new());
    let config = ImapConfig {
        allow_plaintext_auth: true,
        ..ImapConfig::default()
    };
    let server = ImapServer::new(store.clone(), Some(store), Arc::new(StaticAuth), config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    println!("IMAP listening on {addr} (user demo@example.com, password demo)");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(listener, TlsMode::Plain, async {
        let _ = stopped.await;
    }));
    if std::env::args().any(|a| a == "--self-test") {
        self_test(addr).await?;
    } else {
        tokio::signal::ctrl_c().await?;
    }
    let _ = stop.send(());
    serving.await.map_err(std::io::Error::other)?
}

/// Connects once, logs in and out, and fails unless the server said OK.
async fn self_test(addr: std::net::SocketAddr) -> std::io::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut conn = BufReader::new(tokio::net::TcpStream::connect(addr).await?);
    for (tag, command) in [
        ("", ""),
        ("a", "LOGIN demo@example.com demo"),
        ("b", "LOGOUT"),
    ] {
        if !tag.is_empty() {
            conn.get_mut()
                .write_all(format!("{tag} {command}\r\n").as_bytes())
                .await?;
        }
        let expect = if tag.is_empty() {
            "* OK".to_owned()
        } else {
            format!("{tag} OK")
        };
        loop {
            let mut line = String::new();
            if conn.read_line(&mut line).await? == 0 {
                return Err(std::io::Error::other("connection closed early"));
            }
            print!("S: {line}");
            if line.starts_with(&expect) {
                break;
            }
            if !line.starts_with('*') {
                return Err(std::io::Error::other(format!("unexpected: {line}")));
            }
        }
    }
    println!("self-test passed");
    Ok(())
}
