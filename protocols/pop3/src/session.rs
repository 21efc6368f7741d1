//! The per-connection POP3 state machine, as a `tower::Service<Command>`.
//!
//! States follow RFC 1939 §3: AUTHORIZATION (USER/PASS, AUTH, STLS, CAPA),
//! TRANSACTION (the maildrop is locked and numbered), UPDATE (entered by QUIT:
//! deletions are committed, then the connection closes). A connection that
//! ends any other way commits nothing.
//!
//! APOP (RFC 1939 §7) is offered when the authenticator
//! [supports it](mailroom_core::Authenticator::supports_apop): the greeting
//! then ends with a timestamp `<pid.counter.nanos@hostname>` unique to the
//! connection, and `APOP name digest` is checked against it. It is accepted
//! with or without TLS (see [`crate::Pop3Config::plaintext_auth`]), and
//! alongside USER/PASS: RFC 1939 says a user should have one or the other
//! because PASS would reveal the secret APOP protects, but PASS is only
//! accepted where the policy allows plaintext passwords (by default: TLS or
//! loopback).

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use mailroom_core::access::{MailAccess, Selected};
use mailroom_core::sasl::{self, Exchange, ExporterSlot, Security, Step};
use mailroom_core::{
    Authenticator, Credentials, Error, Flag, Flags, Mechanism, MessageGuid, Principal, Storage,
    StoreOp, Uid, UidValidity,
};

use crate::codec::{
    Action, Command, MessageNumber, MessageWriter, Reply, ResponseCode, base64_decode, octets,
};
use crate::config::{PlaintextAuth, Pop3Config};
use crate::error::Pop3Error;
use mailroom_core::maildrop::MaildropLock;

/// The most entries the shared octet-count cache keeps before it is cleared.
const SIZE_CACHE_LIMIT: usize = 200_000;

/// What a session knows about its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The peer's address, if the transport has one.
    pub peer: Option<SocketAddr>,
    /// Whether the connection is already encrypted (implicit TLS).
    pub tls: bool,
    /// Whether `STLS` can be offered (the driver has a TLS configuration).
    pub stls_available: bool,
}

/// Normalised octet counts by message content (GUID and stored size), shared
/// by every session of a server: a message's count never changes, so the
/// cache never goes stale, and a second login does not read every message again.
#[derive(Debug, Default)]
pub(crate) struct SizeCache {
    map: Mutex<HashMap<(MessageGuid, u64), u64>>,
}

impl SizeCache {
    fn get(&self, key: &(MessageGuid, u64)) -> Option<u64> {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .copied()
    }

    fn insert(&self, key: (MessageGuid, u64), octets: u64) {
        if key.0 == MessageGuid::default() {
            return; // a backend that leaves GUIDs empty gets no caching
        }
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= SIZE_CACHE_LIMIT {
            map.clear();
        }
        map.insert(key, octets);
    }
}

/// What every session of one server shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) auth: Arc<dyn Authenticator>,
    pub(crate) config: Pop3Config,
    pub(crate) sizes: SizeCache,
}

/// One POP3 connection's state machine. Cheap to clone (the clones share
/// the state); the driver calls it one command at a time.
///
/// ```
/// # use std::sync::Arc;
/// use mailroom_pop3::codec::Command;
/// use mailroom_pop3::{ConnectionInfo, Pop3Server};
/// use tower::{Service, ServiceExt};
///
/// # async fn demo(server: Pop3Server) {
/// let info = ConnectionInfo { peer: None, tls: false, stls_available: false };
/// let mut session = server.session(info);
/// let reply = session.ready().await.unwrap().call(Command::Capa).await.unwrap();
/// assert!(reply.is_ok());
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Session {
    inner: Arc<tokio::sync::Mutex<Inner>>,
    /// The APOP timestamp of the greeting, when APOP is offered.
    apop_timestamp: Option<Arc<str>>,
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    info: ConnectionInfo,
    apop_timestamp: Option<Arc<str>>,
    tls_active: bool,
    /// The connection's `tls-exporter` value, once TLS is up.
    exporter: ExporterSlot,
    state: State,
    auth_failures: u32,
    bad_commands: u32,
}

#[derive(Debug)]
enum State {
    Authorization {
        user: Option<String>,
        sasl: Option<Exchange>,
    },
    Transaction(Box<Maildrop>),
    Closed,
}

#[derive(Debug)]
struct Maildrop {
    selected: Selected,
    uid_validity: UidValidity,
    messages: Vec<Msg>,
    _lock: MaildropLock,
}

#[derive(Debug, Clone, Copy)]
struct Msg {
    uid: Uid,
    octets: u64,
    deleted: bool,
    retrieved: bool,
}

impl Maildrop {
    fn live(&self) -> impl Iterator<Item = (usize, &Msg)> {
        self.messages
            .iter()
            .enumerate()
            .filter(|(_, m)| !m.deleted)
            .map(|(i, m)| (i + 1, m))
    }

    fn totals(&self) -> (usize, u64) {
        self.live()
            .fold((0, 0), |(n, o), (_, m)| (n + 1, o + m.octets))
    }

    fn get(&self, n: MessageNumber) -> Result<&Msg, Reply> {
        let msg = (n as usize)
            .checked_sub(1)
            .and_then(|i| self.messages.get(i))
            .ok_or_else(|| Reply::err("no such message"))?;
        if msg.deleted {
            return Err(Reply::err(format!("message {n} already deleted")));
        }
        Ok(msg)
    }

    fn uidl(&self, msg: &Msg) -> String {
        format!("{}.{}", self.uid_validity, msg.uid)
    }
}

impl Session {
    pub(crate) fn new(
        shared: Arc<Shared>,
        info: ConnectionInfo,
        exporter: ExporterSlot,
    ) -> Session {
        let apop_timestamp = shared
            .auth
            .supports_apop()
            .then(|| Arc::from(apop_timestamp(&shared.config.hostname)));
        Session {
            apop_timestamp: apop_timestamp.clone(),
            inner: Arc::new(tokio::sync::Mutex::new(Inner {
                shared,
                info,
                apop_timestamp,
                tls_active: info.tls,
                exporter,
                state: State::Authorization {
                    user: None,
                    sasl: None,
                },
                auth_failures: 0,
                bad_commands: 0,
            })),
        }
    }

    /// The greeting sent when the connection opens; it ends with the APOP
    /// timestamp when APOP is offered.
    pub fn greeting(&self, config: &Pop3Config) -> Reply {
        let mut text = format!("{} Mailroom POP3 server ready", config.hostname);
        if let Some(timestamp) = &self.apop_timestamp {
            text.push(' ');
            text.push_str(timestamp);
        }
        Reply::ok(text)
    }
}

/// Greetings handed out by this process, for unique APOP timestamps.
static GREETINGS: AtomicU64 = AtomicU64::new(0);

/// An APOP timestamp, `<pid.counter.nanos@host>` (RFC 1939 §7 asks for the
/// syntax of an RFC 822 msg-id, different on every greeting). The counter
/// keeps two connections of one process apart even within a clock tick; the
/// process ID and the time keep processes and restarts apart. A `host` that
/// is not a plain domain name (letters, digits, `-` and `.`) becomes
/// `localhost`, so the timestamp always parses.
fn apop_timestamp(host: &str) -> String {
    let counter = GREETINGS.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let plain = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    let host = if plain { host } else { "localhost" };
    format!("<{}.{counter}.{nanos}@{host}>", std::process::id())
}

impl tower::Service<Command> for Session {
    type Response = Reply;
    type Error = Pop3Error;
    type Future = Pin<Box<dyn Future<Output = Result<Reply, Pop3Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Pop3Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, command: Command) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            let mut inner = inner.lock().await;
            if matches!(inner.state, State::Closed) {
                return Err(Pop3Error::SessionClosed);
            }
            tracing::debug!(command = command.name(), "pop3 command");
            Ok(inner.handle(command).await)
        })
    }
}

fn server_error(context: &str, e: &Error) -> Reply {
    tracing::warn!(error = %e, "pop3: {context}");
    if e.is_temporary() || e.is_server_fault() {
        Reply::err_code(ResponseCode::SysTemp, format!("{context}; try again later"))
    } else {
        Reply::err_code(ResponseCode::SysPerm, context.to_owned())
    }
}

fn not_in_state() -> Reply {
    Reply::err("command not valid in this state")
}

impl Inner {
    fn plaintext_allowed(&self) -> bool {
        self.tls_active
            || match self.shared.config.plaintext_auth {
                PlaintextAuth::Always => true,
                PlaintextAuth::TlsOrLoopback => {
                    self.info.peer.is_some_and(|p| p.ip().is_loopback())
                }
                PlaintextAuth::TlsOnly => false,
            }
    }

    fn security(&self) -> Security {
        Security {
            plaintext_allowed: self.plaintext_allowed(),
            exporter: self.exporter.get(),
        }
    }

    /// The mechanisms this connection offers.
    fn mechanisms(&self) -> Vec<&'static str> {
        sasl::offered(self.shared.auth.as_ref(), self.security())
            .into_iter()
            .map(Mechanism::name)
            .collect()
    }

    fn bad_command(&mut self, reply: Reply) -> Reply {
        self.bad_commands += 1;
        if self.bad_commands >= self.shared.config.max_bad_commands {
            self.state = State::Closed;
            return Reply::err("too many bad commands; closing connection").then(Action::Close);
        }
        reply
    }

    async fn handle(&mut self, command: Command) -> Reply {
        // An exchange in progress swallows the next line.
        if let State::Authorization { sasl, .. } = &mut self.state
            && let Some(exchange) = sasl.take()
        {
            return match command {
                Command::SaslResponse(line) => self.sasl_step(exchange, &line).await,
                // Not reachable through the codec; treat as a cancelled exchange.
                _ => Reply::err("AUTH exchange cancelled"),
            };
        }
        match command {
            Command::Capa => self.capa(),
            Command::Quit => self.quit().await,
            Command::Malformed { reason } => self.bad_command(Reply::err(reason)),
            Command::Unknown(_) => self.bad_command(Reply::err("unknown command")),
            Command::SaslResponse(_) => {
                self.bad_command(Reply::err("no AUTH exchange in progress"))
            }
            Command::Stls => self.stls(),
            Command::User(name) => self.user(name),
            Command::Pass(password) => self.pass(password).await,
            Command::Apop { user, digest } => self.apop(user, digest).await,
            Command::Auth {
                mechanism,
                initial_response,
            } => self.auth(mechanism, initial_response).await,
            other => match &mut self.state {
                State::Transaction(maildrop) => transaction(maildrop, other).await,
                _ => not_in_state(),
            },
        }
    }

    fn capa(&self) -> Reply {
        let config = &self.shared.config;
        let authorizing = matches!(self.state, State::Authorization { .. });
        let mut caps = vec!["TOP".to_owned(), "UIDL".to_owned()];
        if authorizing && self.plaintext_allowed() {
            caps.push("USER".into());
        }
        if authorizing {
            let mechs = self.mechanisms();
            if !mechs.is_empty() {
                caps.push(format!("SASL {}", mechs.join(" ")));
            }
        }
        caps.push("RESP-CODES".into());
        caps.push("AUTH-RESP-CODE".into());
        caps.push("PIPELINING".into());
        caps.push(match config.expire_days {
            None => "EXPIRE NEVER".into(),
            Some(d) => format!("EXPIRE {d}"),
        });
        caps.push(format!("LOGIN-DELAY {}", config.login_delay_secs));
        if authorizing && self.info.stls_available && !self.tls_active {
            caps.push("STLS".into());
        }
        caps.push("IMPLEMENTATION Mailroom".into());
        Reply::ok("Capability list follows").with_lines(caps)
    }

    fn stls(&mut self) -> Reply {
        let State::Authorization { user, .. } = &mut self.state else {
            return not_in_state();
        };
        if self.tls_active {
            return Reply::err("already using TLS");
        }
        if !self.info.stls_available {
            return Reply::err("STLS not available");
        }
        // Anything said in the clear is forgotten (RFC 2595 §3.1).
        *user = None;
        self.tls_active = true;
        Reply::ok("Begin TLS negotiation now").then(Action::StartTls)
    }

    fn plaintext_refused() -> Reply {
        Reply::err_code(
            ResponseCode::Auth,
            "Plaintext authentication disallowed on non-secure connections; use STLS",
        )
    }

    fn user(&mut self, name: String) -> Reply {
        let allowed = self.plaintext_allowed();
        let State::Authorization { user, .. } = &mut self.state else {
            return not_in_state();
        };
        if !allowed {
            return Self::plaintext_refused();
        }
        *user = Some(name);
        Reply::ok("send PASS")
    }

    async fn pass(&mut self, password: String) -> Reply {
        let allowed = self.plaintext_allowed();
        let State::Authorization { user, .. } = &mut self.state else {
            return not_in_state();
        };
        if !allowed {
            return Self::plaintext_refused();
        }
        let Some(authcid) = user.take() else {
            return Reply::err("USER first");
        };
        self.login(Credentials {
            authzid: None,
            authcid,
            password,
        })
        .await
    }

    async fn apop(&mut self, name: String, digest: [u8; 16]) -> Reply {
        let Some(timestamp) = self.apop_timestamp.clone() else {
            return self.bad_command(Reply::err("APOP is not available on this server"));
        };
        let State::Authorization { user, .. } = &mut self.state else {
            return not_in_state();
        };
        *user = None;
        // No plaintext check: APOP never sends the password (see the module docs).
        let shared = self.shared.clone();
        let result = shared
            .auth
            .authenticate_apop(&name, &timestamp, &digest)
            .await;
        self.finish_login(name, result).await
    }

    async fn auth(&mut self, mechanism: Option<String>, initial: Option<String>) -> Reply {
        if !matches!(self.state, State::Authorization { .. }) {
            return not_in_state();
        }
        let Some(mechanism) = mechanism else {
            // The pre-RFC 5034 form some clients (Outlook) probe with.
            let lines = self.mechanisms().iter().map(|m| (*m).to_owned()).collect();
            return Reply::ok("").with_lines(lines);
        };
        let auth = self.shared.auth.clone();
        let Some(m) = Mechanism::from_name(&mechanism).filter(|m| auth.mechanisms().contains(m))
        else {
            return Reply::err("Unsupported authentication mechanism");
        };
        let Some(exchange) = Exchange::start(auth.as_ref(), m, self.security()) else {
            return match m {
                Mechanism::ScramSha256Plus => {
                    Reply::err("SCRAM-SHA-256-PLUS needs a TLS 1.3 connection")
                }
                _ if !self.plaintext_allowed() => Self::plaintext_refused(),
                _ => Reply::err("Unsupported authentication mechanism"),
            };
        };
        match initial {
            Some(ir) => self.sasl_step(exchange, &ir).await,
            None => {
                let first = exchange.first_challenge();
                self.challenge(exchange, &first)
            }
        }
    }

    /// `+ base64(data)`, keeping the exchange for the next line.
    fn challenge(&mut self, exchange: Exchange, data: &[u8]) -> Reply {
        if let State::Authorization { sasl, .. } = &mut self.state {
            *sasl = Some(exchange);
        }
        Reply::challenge(mailroom_core::base64::encode(data))
    }

    async fn sasl_step(&mut self, mut exchange: Exchange, line: &str) -> Reply {
        if line == "*" {
            return Reply::err("AUTH exchange cancelled");
        }
        let data = if line == "=" || line.is_empty() {
            Vec::new()
        } else {
            match base64_decode(line) {
                Some(d) => d,
                None => return Reply::err("invalid base64 in AUTH exchange"),
            }
        };
        let auth = self.shared.auth.clone();
        match exchange.step(auth.as_ref(), &data).await {
            Step::Challenge(c) => self.challenge(exchange, &c),
            Step::Success { principal, user } => self.finish_login(user, Ok(principal)).await,
            Step::Refused { user, reason } => {
                tracing::info!(mechanism = exchange.mechanism().name(), reason = %reason, "pop3 AUTH refused");
                self.finish_login(user.unwrap_or_default(), Err(Error::AuthFailed))
                    .await
            }
            Step::Malformed(why) => self.bad_command(Reply::err(why)),
            Step::Unavailable(e) => self.finish_login(String::new(), Err(e)).await,
            _ => Reply::err("unexpected AUTH step"),
        }
    }

    async fn login(&mut self, credentials: Credentials) -> Reply {
        let shared = self.shared.clone();
        let result = shared.auth.authenticate(&credentials).await;
        self.finish_login(credentials.authcid, result).await
    }

    /// Answers a login attempt by `user` (as the client named it) that the
    /// authenticator has judged, and reports it in [`Reply::login`] for the
    /// throttle layer (not when the authenticator itself failed: that says
    /// nothing about the credentials).
    async fn finish_login(
        &mut self,
        user: String,
        result: mailroom_core::Result<Principal>,
    ) -> Reply {
        let shared = self.shared.clone();
        match result {
            Ok(principal) => {
                tracing::info!(user = %principal.user, "pop3 login");
                self.open_maildrop(principal).await.with_login(user, true)
            }
            Err(e @ (Error::AuthFailed | Error::NoSuchUser | Error::InvalidInput(_))) => {
                tracing::info!(user = %user, error = %e, "pop3 login failed");
                self.auth_failures += 1;
                if !shared.config.auth_failure_delay.is_zero() {
                    tokio::time::sleep(shared.config.auth_failure_delay).await;
                }
                let reply = if self.auth_failures >= shared.config.max_auth_failures {
                    self.state = State::Closed;
                    Reply::err_code(
                        ResponseCode::Auth,
                        "Authentication failed; too many attempts",
                    )
                    .then(Action::Close)
                } else {
                    Reply::err_code(ResponseCode::Auth, "Authentication failed")
                };
                reply.with_login(user, false)
            }
            Err(e) => server_error("authentication service unavailable", &e),
        }
    }

    async fn open_maildrop(&mut self, principal: Principal) -> Reply {
        let shared = self.shared.clone();
        let user = principal.user.clone();
        if let Err(e) = shared.storage.ensure_account(&user).await {
            return server_error("cannot open the maildrop", &e);
        }
        let lock = match shared.storage.lock_maildrop(&user).await {
            Ok(lock) => lock,
            Err(Error::Busy(_)) => {
                return Reply::err_code(
                    ResponseCode::InUse,
                    "maildrop already locked by another POP3 session",
                );
            }
            Err(e) => return server_error("cannot lock the maildrop", &e),
        };
        let access = MailAccess::new(shared.storage.clone(), None, principal);
        let selected = match access.select("INBOX", false).await {
            Ok(s) => s,
            Err(e) => return server_error("cannot open the maildrop", &e),
        };
        // Always a fresh snapshot: nothing about an earlier session (or an
        // "empty mailbox" shortcut) is trusted.
        let snapshot = match selected.mailbox().snapshot().await {
            Ok(s) => s,
            Err(e) => return server_error("cannot read the maildrop", &e),
        };
        let mut messages = Vec::with_capacity(snapshot.messages.len());
        for meta in &snapshot.messages {
            let key = (meta.guid, meta.size);
            let count = match shared.sizes.get(&key) {
                Some(c) => c,
                None => match selected.mailbox().content(meta.uid).await {
                    Ok(content) => {
                        let c = octets(&content);
                        shared.sizes.insert(key, c);
                        c
                    }
                    // Expunged by someone else meanwhile: not in this session's list.
                    Err(Error::NoSuchMessage(_)) => continue,
                    Err(e) => return server_error("cannot read the maildrop", &e),
                },
            };
            messages.push(Msg {
                uid: meta.uid,
                octets: count,
                deleted: false,
                retrieved: false,
            });
        }
        let maildrop = Maildrop {
            selected,
            uid_validity: snapshot.uid_validity,
            messages,
            _lock: lock,
        };
        let (n, size) = maildrop.totals();
        self.state = State::Transaction(Box::new(maildrop));
        Reply::ok(format!(
            "{user}'s maildrop has {n} messages ({size} octets)"
        ))
    }

    async fn quit(&mut self) -> Reply {
        let state = std::mem::replace(&mut self.state, State::Closed);
        let hostname = &self.shared.config.hostname;
        let State::Transaction(maildrop) = state else {
            return Reply::ok(format!("{hostname} Mailroom POP3 server signing off"))
                .then(Action::Close);
        };
        // UPDATE state (RFC 1939 §6).
        let deleted: Vec<Uid> = maildrop
            .messages
            .iter()
            .filter(|m| m.deleted)
            .map(|m| m.uid)
            .collect();
        let retrieved: Vec<Uid> = maildrop
            .messages
            .iter()
            .filter(|m| m.retrieved && !m.deleted)
            .map(|m| m.uid)
            .collect();
        if !retrieved.is_empty() {
            let seen: Flags = [Flag::Seen].into_iter().collect();
            if let Err(e) = maildrop
                .selected
                .store(&retrieved, &StoreOp::Add(seen), None)
                .await
            {
                tracing::warn!(error = %e, "pop3: could not mark retrieved messages seen");
            }
        }
        if !deleted.is_empty() {
            let flags: Flags = [Flag::Deleted].into_iter().collect();
            let result = match maildrop
                .selected
                .store(&deleted, &StoreOp::Add(flags), None)
                .await
            {
                Ok(_) => maildrop.selected.expunge(Some(&deleted)).await,
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "pop3: UPDATE failed");
                return Reply::err_code(ResponseCode::SysTemp, "some deleted messages not removed")
                    .then(Action::Close);
            }
        }
        let left = maildrop.messages.len() - deleted.len();
        Reply::ok(format!(
            "{hostname} Mailroom POP3 server signing off ({left} messages left)"
        ))
        .then(Action::Close)
    }
}

async fn transaction(maildrop: &mut Maildrop, command: Command) -> Reply {
    match command {
        Command::Stat => {
            let (n, size) = maildrop.totals();
            Reply::ok(format!("{n} {size}"))
        }
        Command::List(None) => {
            let (n, size) = maildrop.totals();
            let lines = maildrop
                .live()
                .map(|(i, m)| format!("{i} {}", m.octets))
                .collect();
            Reply::ok(format!("{n} messages ({size} octets)")).with_lines(lines)
        }
        Command::List(Some(n)) => match maildrop.get(n) {
            Ok(m) => Reply::ok(format!("{n} {}", m.octets)),
            Err(r) => r,
        },
        Command::Uidl(None) => {
            let lines = maildrop
                .live()
                .map(|(i, m)| format!("{i} {}", maildrop.uidl(m)))
                .collect();
            Reply::ok("").with_lines(lines)
        }
        Command::Uidl(Some(n)) => match maildrop.get(n) {
            Ok(m) => Reply::ok(format!("{n} {}", maildrop.uidl(m))),
            Err(r) => r,
        },
        Command::Retr(n) => retrieve(maildrop, n, None).await,
        Command::Top { msg, lines } => retrieve(maildrop, msg, Some(lines)).await,
        Command::Dele(n) => match maildrop.get(n) {
            Ok(_) => {
                maildrop.messages[n as usize - 1].deleted = true;
                Reply::ok(format!("message {n} deleted"))
            }
            Err(r) => r,
        },
        Command::Rset => {
            for m in &mut maildrop.messages {
                m.deleted = false;
            }
            let (n, size) = maildrop.totals();
            Reply::ok(format!("maildrop has {n} messages ({size} octets)"))
        }
        Command::Noop => Reply::ok(""),
        _ => not_in_state(),
    }
}

async fn retrieve(maildrop: &mut Maildrop, n: MessageNumber, top: Option<u32>) -> Reply {
    let msg = match maildrop.get(n) {
        Ok(m) => *m,
        Err(r) => return r,
    };
    let content = match maildrop.selected.mailbox().content(msg.uid).await {
        Ok(c) => c,
        Err(Error::NoSuchMessage(_)) => {
            return Reply::err(format!("message {n} was removed by another session"));
        }
        Err(e) => return server_error("cannot read the message", &e),
    };
    let head = match top {
        None => {
            maildrop.messages[n as usize - 1].retrieved = true;
            format!("{} octets", msg.octets)
        }
        Some(_) => "top of message follows".to_owned(),
    };
    Reply::ok(head).with_message(MessageWriter::new(content, top))
}
