//! LMTP (TCP and Unix socket) and POP3 over the in-memory store: a stand-in
//! for mailroomd, so the end-to-end scripts in `tests/e2e/` can be run
//! against the protocol crates alone.
//!
//! ```text
//! MR_USERS="alice@example.com:secret" MR_LMTP_PORT=2424 MR_POP3_PORT=1110 \
//! MR_LMTP_SOCKET=/tmp/lmtp.sock MR_QUOTA_FILE=/tmp/quota \
//!     cargo run -p mailroom-lmtp --example memory_server
//! ```
//!
//! On SIGHUP it reads `MR_QUOTA_FILE` (lines `user kib`, `-` for unlimited)
//! and sets those storage quotas, which is how `tests/e2e/postfix_quota.sh`
//! raises a quota here (mailroomd has `quota set` for that).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;

use mailroom_core::delivery::Pipeline;
use mailroom_core::{Authenticator, Credentials, Error, Principal, Quota, QuotaLimits};
use mailroom_lmtp::{LmtpConfig, LmtpServer};
use mailroom_pop3::{PlaintextAuth, Pop3Config, Pop3Server, TlsMode};
use mailroom_store_memory::MemoryStore;

#[derive(Debug)]
struct Users(HashMap<String, String>);

#[async_trait::async_trait]
impl Authenticator for Users {
    async fn authenticate(&self, c: &Credentials) -> mailroom_core::Result<Principal> {
        match self.0.get(&c.authcid) {
            Some(p) if *p == c.password => Ok(Principal::user(c.authcid.clone())),
            _ => Err(Error::AuthFailed),
        }
    }

    async fn lookup(&self, user: &str) -> mailroom_core::Result<Option<Principal>> {
        Ok(self.0.contains_key(user).then(|| Principal::user(user)))
    }
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

async fn apply_quotas(store: &MemoryStore, path: &str) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        if let (Some(user), Some(kib)) = (parts.next(), parts.next()) {
            let storage_bytes = kib.parse::<u64>().ok().map(|k| k * 1024);
            store
                .set_limits(
                    user,
                    QuotaLimits {
                        storage_bytes,
                        messages: None,
                    },
                )
                .await
                .unwrap();
            eprintln!("quota {user}: {storage_bytes:?} bytes");
        }
    }
}

#[tokio::main]
async fn main() {
    let users: HashMap<String, String> = env("MR_USERS", "alice@example.com:secret")
        .split(',')
        .filter_map(|u| u.split_once(':'))
        .map(|(u, p)| (u.to_owned(), p.to_owned()))
        .collect();
    let auth: Arc<dyn Authenticator> = Arc::new(Users(users));
    let store = Arc::new(MemoryStore::new());
    let quota: Arc<dyn Quota> = store.clone();
    let quota_file = env("MR_QUOTA_FILE", "");
    apply_quotas(&store, &quota_file).await;

    let delivery = Arc::new(Pipeline::standard(store.clone(), quota));
    let mut lmtp_config = LmtpConfig::default();
    lmtp_config.hostname = "mailroom.test".into();
    let lmtp = LmtpServer::new(delivery, auth.clone(), lmtp_config);
    let mut pop3_config = Pop3Config::default();
    pop3_config.hostname = "mailroom.test".into();
    pop3_config.plaintext_auth = PlaintextAuth::Always;
    let pop3 = Pop3Server::new(store.clone(), auth, pop3_config);

    let lmtp_tcp =
        tokio::net::TcpListener::bind(("127.0.0.1", env("MR_LMTP_PORT", "2424").parse().unwrap()))
            .await
            .unwrap();
    let pop3_tcp =
        tokio::net::TcpListener::bind(("127.0.0.1", env("MR_POP3_PORT", "1110").parse().unwrap()))
            .await
            .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut tasks = tokio::task::JoinSet::new();
    {
        let (lmtp, rx) = (lmtp.clone(), stop_rx.clone());
        tasks.spawn(async move {
            lmtp.serve_tcp(lmtp_tcp, stopped(rx))
                .await
                .map_err(|e| e.to_string())
        });
    }
    let socket = env("MR_LMTP_SOCKET", "");
    if !socket.is_empty() {
        let _ = std::fs::remove_file(&socket);
        let unix = tokio::net::UnixListener::bind(&socket).unwrap();
        // Postfix's lmtp client runs as the `postfix` user.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
        let (lmtp, rx) = (lmtp.clone(), stop_rx.clone());
        tasks.spawn(async move {
            lmtp.serve_unix(unix, stopped(rx))
                .await
                .map_err(|e| e.to_string())
        });
    }
    {
        let rx = stop_rx.clone();
        tasks.spawn(async move {
            pop3.serve(pop3_tcp, TlsMode::Plain, stopped(rx))
                .await
                .map_err(|e| e.to_string())
        });
    }
    eprintln!("memory_server ready");
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).unwrap();
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
    loop {
        tokio::select! {
            _ = hup.recv() => apply_quotas(&store, &quota_file).await,
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    let _ = stop_tx.send(true);
    while let Some(r) = tasks.join_next().await {
        if let Ok(Err(e)) = r {
            eprintln!("server error: {e}");
        }
    }
}
