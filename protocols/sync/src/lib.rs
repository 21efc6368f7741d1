//! # mailroom-sync
//!
//! Replication for Mailroom: a primary streams every change of its store to
//! a replica, which applies it with the primary's UIDVALIDITY, UIDs and
//! modseqs, so clients can move between them keeping their caches. Any
//! store that implements [`mailroom_core::Replication`] can be either end.
//!
//! The protocol crate has the same parts as the others:
//!
//! 1. [`wire`]: the frame codec. Length-prefixed frames with a CRC-32 each,
//!    made of self-describing typed fields (tag, type, length), so a newer
//!    node can add fields and frame kinds an older one skips or answers
//!    UNSUPPORTED. Incremental (partial input is "need more"), every bound
//!    explicit ([`wire::Limits`]), bad input a typed [`SyncError`], never a
//!    panic. `PROTOCOL.md` describes it byte by byte.
//! 2. [`msgs`] and [`handshake`]: the typed frames, the version range
//!    negotiated in HELLO (a peer outside it is refused with an error naming
//!    both ranges) and the mutual challenge-response proof
//!    (HMAC-SHA-256 over both nonces and the role; the secret never travels).
//! 3. [`ReplicaSession`]: a `tower::Service<Frame>` holding one
//!    connection's state; [`Replica`] builds one per connection and drives it
//!    with [`Replica::serve_connection`], which any accept loop can run.
//!    [`Replica`] implements `mailroom_server::Protocol`, so
//!    `mailroom_server::Server::new(replica)` runs it on the shared server
//!    runtime with the limits, timeouts and shutdown of every other
//!    listener (a refusal is an ERROR frame).
//! 4. [`Primary`]: the client. [`Primary::run`] replicates continuously and
//!    reconnects (noticing a replica that went away while idle at once);
//!    [`Primary::status`] reports whether it is connected, how many
//!    accounts changed since the last completed round and the lag, with
//!    the counters (bytes, records, repairs, merges), also as Prometheus
//!    lines ([`ReplicationStatus::render_prometheus`]);
//!    [`Primary::wait_replicated`] waits (bounded) until the replica holds
//!    a given change, the building block of synchronous replication;
//!    [`PrimaryConnection::sync_account`] and
//!    [`PrimaryConnection::sync_all`] compare and repair on demand, one
//!    [`Verdict`] per mailbox, and [`PrimaryConnection::verify_account`]
//!    also has the replica read every message back against its GUID and
//!    resends the damaged ones.
//!
//! Where replication resumes is the replica's own HIGHESTMODSEQ of each
//! mailbox: after either end restarts only what the replica lacks is sent.
//! After every batch both ends' heads (UIDNEXT, HIGHESTMODSEQ, count and the
//! per-mailbox state CRC) must agree; if not, that mailbox is resynced from
//! record digests, sending only the records that differ. Every message
//! received is checked against its SHA-1 GUID before anything is applied.
//!
//! Both ends record a sync point per mailbox (the last head they were
//! verified to share). A replica that changed on its own after it (it was
//! promoted while the primary was away: a split brain) is merged rather
//! than overwritten: messages delivered to either end are kept on both,
//! a UID taken on both ends by different messages is given up for new UIDs
//! above both UIDNEXTs, flags are merged per message by modseq, and an
//! expunge wins only over a message the other end did not change
//! (`PROTOCOL.md`, "Split brain").
//!
//! **TLS.** The protocol runs over any byte stream. For TLS, run the
//! replica on a `mailroom_server::Server` with `implicit_tls(config)` and
//! give [`Primary::run`] a `connect` closure that wraps the TCP stream in a
//! `tokio_rustls::TlsConnector` whose roots are the replica's certificate
//! (pinned) or a CA file (`tests/tls.rs` does both ends); the shared-secret
//! handshake still runs inside TLS.
//!
//! ## Example
//!
//! A replica on a loopback port and one replication pass from a primary,
//! both over the memory store:
//!
//! ```
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use mailroom_core::{MailboxName, MailboxRef, NewMessage, Storage};
//! use mailroom_store_memory::MemoryStore;
//! use mailroom_sync::{Primary, PrimaryConfig, Replica, ReplicaConfig, Secret};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let secret = Secret::new(*b"32 random bytes, shared by both!")?;
//!
//! // The replica: serve every connection of a listener.
//! let replica_store = Arc::new(MemoryStore::new());
//! let replica = Replica::new(replica_store.clone(), ReplicaConfig::new(secret.clone()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! tokio::spawn(async move {
//!     while let Ok((socket, _)) = listener.accept().await {
//!         let replica = replica.clone();
//!         tokio::spawn(async move { replica.serve_connection(socket).await });
//!     }
//! });
//!
//! // The primary: a message, then one pass (`Primary::run` keeps following).
//! let store = Arc::new(MemoryStore::new());
//! store.ensure_account("alice").await?;
//! let inbox = MailboxRef::new("alice", MailboxName::inbox());
//! let message = NewMessage {
//!     flags: Default::default(),
//!     internal_date: None,
//!     content: Bytes::from_static(b"Subject: hi\r\n\r\nHello\r\n"),
//! };
//! let appended = store.append(&inbox, message).await?;
//! let primary = Primary::new(store, PrimaryConfig::new(secret));
//! let mut connection = primary.connect(tokio::net::TcpStream::connect(addr).await?).await?;
//! connection.sync_all().await?;
//!
//! let status = replica_store.status(&inbox, "alice").await?;
//! assert_eq!((status.messages, status.uid_validity), (1, appended.uid_validity));
//! # Ok(())
//! # }
//! ```
//!
//! ## Dependencies and why
//!
//! - `mailroom-core`: the [`mailroom_core::Replication`] trait and the vocabulary.
//! - `mailroom-server`: the shared server runtime the replica listens on.
//! - `tokio`, `tokio-util` (codec), `futures`: sockets, framing, timeouts.
//! - `tower`: the replica session is a `tower::Service`, like every protocol.
//! - `bytes`: message bytes travel from store to socket without copies.
//! - `crc32fast`: the frame CRC and the state CRC (the CRC the CRC store uses).
//! - `hmac` + `sha2` (RustCrypto): HMAC-SHA-256 for the challenge-response
//!   proof, with constant-time verification; well-kept and audited, rather
//!   than hand-written crypto.
//! - `rand`: the handshake nonces, from the operating system's CSPRNG.
//! - `thiserror`, `tracing`: the error type and logs (never message bytes
//!   or the secret).

pub mod error;
pub mod files;
pub mod handshake;
mod io;
pub mod msgs;
pub mod primary;
pub mod replica;
pub mod wire;

pub use error::{Result, SyncError};
pub use files::AppFiles;
pub use handshake::Secret;
pub use primary::{
    Primary, PrimaryConfig, PrimaryConnection, PrimaryStats, ReplicationStatus, Verdict,
};
pub use replica::{Replica, ReplicaConfig, ReplicaSession, ReplicaStats};
