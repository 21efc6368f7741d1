//! The per-connection LMTP state machine, as a `tower::Service<Command>`.
//!
//! RFC 2033: after `LHLO`, each transaction is `MAIL`, one or more `RCPT`,
//! `DATA`; after the message the server answers once per accepted recipient,
//! in `RCPT` order, each reply sent only when that recipient's copy is durable
//! (or has definitely failed).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use mailroom_core::{Authenticator, Delivery, DeliveryOutcome, DeliveryRequest, Error, Recipient};

use crate::codec::{BodyType, Command, MessageData, Reply};
use crate::config::LmtpConfig;
use crate::error::LmtpError;
use crate::received::{TraceInfo, delivery_id, trace_headers};

/// Where a connection comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Peer {
    /// A TCP peer.
    Tcp(SocketAddr),
    /// A Unix-domain socket peer (Postfix's `lmtp:unix:`).
    Unix,
    /// Unknown (a custom transport).
    Unknown,
}

impl Peer {
    fn describe(&self) -> String {
        match self {
            Peer::Tcp(a) => format!("[{}]", a.ip()),
            Peer::Unix => "unix socket".into(),
            Peer::Unknown => "unknown".into(),
        }
    }
}

/// What the driver does after sending a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Action {
    /// Read the next command.
    #[default]
    None,
    /// Read a message (the session answered `354`).
    ReceiveData,
    /// Close the connection.
    Close,
}

/// The session's answer to one command: one reply, or one per recipient after DATA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The replies, in order.
    pub replies: Vec<Reply>,
    /// What the driver does next.
    pub action: Action,
}

impl From<Reply> for Response {
    fn from(reply: Reply) -> Response {
        Response {
            replies: vec![reply],
            action: Action::None,
        }
    }
}

impl Response {
    fn then(mut self, action: Action) -> Response {
        self.action = action;
        self
    }

    /// Writes every reply.
    pub fn encode(&self, out: &mut BytesMut) {
        for r in &self.replies {
            r.encode(out);
        }
    }
}

/// What every session of one server shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) delivery: Arc<dyn Delivery>,
    pub(crate) auth: Arc<dyn Authenticator>,
    pub(crate) config: LmtpConfig,
}

/// One LMTP connection's state machine. Cheap to clone (clones share the
/// state); the driver calls it one command at a time.
#[derive(Debug, Clone)]
pub struct Session {
    inner: Arc<tokio::sync::Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    peer: Peer,
    lhlo: Option<String>,
    transaction: Option<Transaction>,
    bad_commands: u32,
    closed: bool,
}

#[derive(Debug)]
struct Transaction {
    from: Option<String>,
    body: BodyType,
    /// Accepted recipients: the address as given and whom it resolved to.
    recipients: Vec<(String, Recipient)>,
    awaiting_data: bool,
}

impl Session {
    pub(crate) fn new(shared: Arc<Shared>, peer: Peer) -> Session {
        Session {
            inner: Arc::new(tokio::sync::Mutex::new(Inner {
                shared,
                peer,
                lhlo: None,
                transaction: None,
                bad_commands: 0,
                closed: false,
            })),
        }
    }

    /// The greeting sent when the connection opens.
    pub fn greeting(config: &LmtpConfig) -> Reply {
        Reply::plain(
            220,
            vec![format!("{} LMTP Mailroom ready", config.hostname)],
        )
    }
}

impl tower::Service<Command> for Session {
    type Response = Response;
    type Error = LmtpError;
    type Future = Pin<Box<dyn Future<Output = Result<Response, LmtpError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), LmtpError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, command: Command) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            let mut inner = inner.lock().await;
            if inner.closed {
                return Err(LmtpError::SessionClosed);
            }
            tracing::debug!(command = command.name(), "lmtp command");
            Ok(inner.handle(command).await)
        })
    }
}

fn bad_sequence(text: &str) -> Response {
    Reply::new(503, [5, 5, 1], text).into()
}

/// The reply for one recipient's delivery outcome.
pub(crate) fn outcome_reply(address: &str, outcome: &DeliveryOutcome) -> Reply {
    match outcome {
        DeliveryOutcome::Delivered { .. } => {
            Reply::new(250, [2, 0, 0], format!("<{address}> delivered"))
        }
        DeliveryOutcome::TemporaryFailure(e) | DeliveryOutcome::PermanentFailure(e) => {
            error_reply(address, e)
        }
    }
}

fn error_reply(address: &str, e: &Error) -> Reply {
    match e {
        Error::OverQuota => Reply::new(452, [4, 2, 2], format!("<{address}> mailbox is full")),
        Error::NoSuchUser => Reply::new(550, [5, 1, 1], format!("<{address}> user unknown")),
        Error::TooBig { .. } => Reply::new(552, [5, 3, 4], format!("<{address}> message too big")),
        Error::PermissionDenied(_) => Reply::new(
            550,
            [5, 7, 1],
            format!("<{address}> delivery not authorised"),
        ),
        Error::NoSuchMailbox(_) | Error::InvalidMailboxName(_) => {
            Reply::new(550, [5, 2, 0], format!("<{address}> mailbox unavailable"))
        }
        Error::InvalidInput(_) => Reply::new(
            554,
            [5, 6, 0],
            format!("<{address}> message content rejected"),
        ),
        e if e.is_temporary() => Reply::new(
            451,
            [4, 3, 0],
            format!("<{address}> temporary failure, try again later"),
        ),
        _ => Reply::new(554, [5, 3, 0], format!("<{address}> delivery failed")),
    }
}

impl Inner {
    fn bad_command(&mut self, reply: Reply) -> Response {
        self.bad_commands += 1;
        if self.bad_commands >= self.shared.config.max_bad_commands {
            self.closed = true;
            return Response::from(Reply::new(
                421,
                [4, 7, 0],
                "too many errors; closing connection",
            ))
            .then(Action::Close);
        }
        reply.into()
    }

    async fn handle(&mut self, command: Command) -> Response {
        let config = &self.shared.config;
        match command {
            Command::Lhlo { host } => {
                self.lhlo = Some(host);
                self.transaction = None;
                Reply::plain(
                    250,
                    vec![
                        config.hostname.clone(),
                        "PIPELINING".into(),
                        "ENHANCEDSTATUSCODES".into(),
                        "8BITMIME".into(),
                        format!("SIZE {}", config.max_message_size),
                    ],
                )
                .into()
            }
            Command::SmtpGreeting => {
                self.bad_command(Reply::new(500, [5, 5, 1], "this is LMTP: use LHLO"))
            }
            Command::Mail { from, size, body } => {
                if self.lhlo.is_none() {
                    return bad_sequence("send LHLO first");
                }
                if self.transaction.is_some() {
                    return bad_sequence("nested MAIL command");
                }
                if size.is_some_and(|s| s > config.max_message_size as u64) {
                    return Reply::new(552, [5, 3, 4], "message size exceeds fixed maximum").into();
                }
                self.transaction = Some(Transaction {
                    from,
                    body,
                    recipients: Vec::new(),
                    awaiting_data: false,
                });
                Reply::new(250, [2, 1, 0], "sender OK").into()
            }
            Command::Rcpt { to } => self.rcpt(to).await,
            Command::Data => {
                let Some(t) = self.transaction.as_mut() else {
                    return bad_sequence("need MAIL command");
                };
                if t.recipients.is_empty() {
                    return bad_sequence("no valid recipients");
                }
                t.awaiting_data = true;
                Response::from(Reply::plain(
                    354,
                    vec!["start mail input; end with <CRLF>.<CRLF>".into()],
                ))
                .then(Action::ReceiveData)
            }
            Command::Message(data) => self.message(data).await,
            Command::Rset => {
                self.transaction = None;
                Reply::new(250, [2, 0, 0], "OK").into()
            }
            Command::Noop => Reply::new(250, [2, 0, 0], "OK").into(),
            Command::Quit => {
                self.closed = true;
                Response::from(Reply::new(
                    221,
                    [2, 0, 0],
                    format!("{} closing connection", config.hostname),
                ))
                .then(Action::Close)
            }
            Command::NotImplemented { name } => self.bad_command(Reply::new(
                502,
                [5, 5, 1],
                format!("{name} not implemented"),
            )),
            Command::Unknown => {
                self.bad_command(Reply::new(500, [5, 5, 1], "command unrecognized"))
            }
            Command::Malformed {
                code,
                status,
                reason,
            } => self.bad_command(Reply::new(code, status, reason)),
        }
    }

    async fn rcpt(&mut self, to: String) -> Response {
        let shared = self.shared.clone();
        let config = &shared.config;
        let Some(t) = self.transaction.as_mut() else {
            return bad_sequence("need MAIL command");
        };
        if t.recipients.len() >= config.max_recipients {
            return Reply::new(452, [4, 5, 3], "too many recipients").into();
        }
        let (local, domain) = match to.rsplit_once('@') {
            Some((l, d)) => (l, Some(d)),
            None => (to.as_str(), None),
        };
        let (base, detail) = match config.recipient_delimiter.and_then(|c| local.split_once(c)) {
            Some((b, d)) if !b.is_empty() => (b, (!d.is_empty()).then(|| d.to_owned())),
            _ => (local, None),
        };
        let mut candidates = Vec::with_capacity(2);
        match domain {
            Some(d) => {
                candidates.push(format!("{base}@{d}"));
                if config.lookup_local_part {
                    candidates.push(base.to_owned());
                }
            }
            None => candidates.push(base.to_owned()),
        }
        for candidate in &candidates {
            match shared.auth.lookup(candidate).await {
                Ok(Some(principal)) => {
                    t.recipients.push((
                        to.clone(),
                        Recipient {
                            user: principal.user,
                            detail,
                        },
                    ));
                    return Reply::new(250, [2, 1, 5], format!("<{to}> recipient OK")).into();
                }
                Ok(None) => {}
                Err(e) if e.is_temporary() || e.is_server_fault() => {
                    tracing::warn!(error = %e, "lmtp: recipient lookup failed");
                    return Reply::new(451, [4, 3, 0], "recipient lookup failed; try again later")
                        .into();
                }
                Err(_) => break,
            }
        }
        Reply::new(550, [5, 1, 1], format!("<{to}> user unknown")).into()
    }

    async fn message(&mut self, data: MessageData) -> Response {
        let Some(t) = self.transaction.take().filter(|t| t.awaiting_data) else {
            // Not reachable through the codec: data only follows a 354.
            return bad_sequence("no DATA command in progress");
        };
        let shared = self.shared.clone();
        let config = &shared.config;
        let content = match data {
            MessageData::TooBig => {
                let replies = t
                    .recipients
                    .iter()
                    .map(|(addr, _)| {
                        Reply::new(
                            552,
                            [5, 3, 4],
                            format!("<{addr}> message size exceeds fixed maximum"),
                        )
                    })
                    .collect();
                return Response {
                    replies,
                    action: Action::None,
                };
            }
            MessageData::Complete(c) => c,
        };
        let id = delivery_id();
        let single = (t.recipients.len() == 1).then(|| t.recipients[0].0.as_str());
        let headers = trace_headers(
            t.from.as_deref(),
            &TraceInfo {
                lhlo: self.lhlo.as_deref().unwrap_or("unknown"),
                peer: &self.peer.describe(),
                hostname: &config.hostname,
                id: &id,
                single_recipient: single,
                body_8bit: t.body == BodyType::EightBitMime,
            },
        );
        let mut message = BytesMut::with_capacity(headers.len() + content.len());
        message.extend_from_slice(headers.as_bytes());
        message.extend_from_slice(&content);
        let request = DeliveryRequest {
            return_path: t.from.clone(),
            recipients: t.recipients.iter().map(|(_, r)| r.clone()).collect(),
            message: Bytes::from(message),
        };
        let outcomes = shared.delivery.deliver(&request).await;
        let replies: Vec<Reply> = t
            .recipients
            .iter()
            .enumerate()
            .map(|(i, (addr, _))| match outcomes.get(i) {
                Some(o) => outcome_reply(addr, o),
                // A pipeline that answered for fewer recipients: never claim success.
                None => Reply::new(
                    451,
                    [4, 3, 0],
                    format!("<{addr}> no delivery result; try again later"),
                ),
            })
            .collect();
        for ((addr, r), reply) in t.recipients.iter().zip(&replies) {
            tracing::info!(id = %id, rcpt = %addr, user = %r.user, code = reply.code, "lmtp delivery");
        }
        Response {
            replies,
            action: Action::None,
        }
    }
}
