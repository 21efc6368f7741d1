//! The per-connection IMAP session: a [`tower::Service`] from
//! [`Request`] to [`Reply`].
//!
//! A [`Session`] holds everything RFC 3501 calls connection state: whether
//! the client has authenticated, the selected mailbox with its
//! sequence-number-to-UID map and the per-session `\Recent` set, the
//! extensions enabled with ENABLE (CONDSTORE, QRESYNC) and what
//! the client said about itself with ID. It never touches a socket: the
//! [driver](crate::server) decodes commands, calls the session (through
//! whatever tower layers the integrator stacks around it) and writes the
//! [`Reply`].
//!
//! Every command lives in its own file under [`op`], named after the
//! command (`op/fetch.rs` answers FETCH and UID FETCH), so a reader finds any
//! command in one hop.
//!
//! ## Unsolicited updates
//!
//! Changes made by other sessions or deliveries reach the session through
//! the store's change feed ([`Mailbox::changes_since`](mailroom_core::Mailbox::changes_since)).
//! After every command the session reports what changed, following
//! RFC 3501 §7.4.1: `EXISTS` and flag `FETCH`es may follow any command, but
//! `EXPUNGE` (and `VANISHED`) never follows FETCH, STORE or SEARCH (the UID
//! forms are fine): those expunges wait, and the messages keep their
//! sequence numbers until the next command that may report them. During
//! IDLE ([`IdleHandle`]) updates are pushed as soon as the store's watch
//! fires. With NOTIFY (RFC 5465, [`crate::extension::notify`]) the session
//! also reports other mailboxes (STATUS) and mailbox names and
//! subscriptions (LIST), after every command and during IDLE.

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use futures::future::BoxFuture;
use futures::stream::Stream;
use mailroom_core::sasl::ExporterSlot;
use mailroom_core::{Authenticator, Quota, Storage};
use tokio::sync::Mutex;

use crate::command::{Command, Request};
use crate::response::{Response, StatusResponse};
use crate::server::ImapConfig;

pub(crate) mod body;
mod error;
pub mod op;
mod selected;
mod state;

pub(crate) use error::error_response;
pub(crate) use selected::SelectedMailbox;
pub(crate) use state::State;

/// What the driver knows about a connection when it makes a session.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The peer's address, if the transport has one.
    pub peer: Option<SocketAddr>,
    /// Whether the connection is already encrypted (implicit TLS).
    pub tls: bool,
    /// A number unique within the process, for logs.
    pub id: u64,
    /// The connection's `tls-exporter` value once TLS is up (set by the
    /// driver, read by AUTHENTICATE SCRAM-SHA-256-PLUS).
    pub exporter: ExporterSlot,
}

impl ConnectionInfo {
    /// Information about a new connection.
    pub fn new(peer: Option<SocketAddr>, tls: bool, id: u64) -> ConnectionInfo {
        ConnectionInfo {
            peer,
            tls,
            id,
            exporter: ExporterSlot::new(),
        }
    }
}

/// A stream of responses the driver writes after [`Reply::responses`]; FETCH
/// uses it so that message bodies are loaded one at a time as they are
/// written, not all before the first byte goes out.
pub type ResponseStream = Pin<Box<dyn Stream<Item = Response> + Send>>;

/// What a session answers to one command.
#[non_exhaustive]
pub struct Reply {
    /// Responses to write, in order.
    pub responses: Vec<Response>,
    /// More responses to write after `responses` (the last one is then the
    /// tagged completion).
    pub tail: Option<ResponseStream>,
    /// What the driver must do after writing the responses.
    pub action: Action,
    /// Set for a LOGIN or AUTHENTICATE that reached the authenticator, so a
    /// throttle layer can count failures.
    pub login: Option<LoginAttempt>,
    /// The session's state after the command.
    pub state: SessionState,
}

/// The RFC 3501 §3 state of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SessionState {
    /// Before LOGIN/AUTHENTICATE.
    #[default]
    NotAuthenticated,
    /// Logged in, no mailbox selected.
    Authenticated,
    /// A mailbox is selected.
    Selected,
    /// After LOGOUT.
    Logout,
}

impl SessionState {
    /// The state's name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::NotAuthenticated => "not-authenticated",
            SessionState::Authenticated => "authenticated",
            SessionState::Selected => "selected",
            SessionState::Logout => "logout",
        }
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reply")
            .field("responses", &self.responses.len())
            .field("tail", &self.tail.is_some())
            .field("action", &self.action)
            .field("login", &self.login)
            .field("state", &self.state)
            .finish()
    }
}

impl Reply {
    /// A reply of these responses, with nothing more to do.
    pub fn new(responses: Vec<Response>) -> Reply {
        Reply {
            responses,
            tail: None,
            action: Action::Continue,
            login: None,
            state: SessionState::NotAuthenticated,
        }
    }

    /// Moves the streamed tail, if any, into `responses` (for tests and
    /// integrators that call a session directly instead of through the
    /// driver; the driver writes the tail as it is produced instead).
    pub async fn drain_tail(&mut self) {
        use futures::StreamExt as _;
        if let Some(mut tail) = self.tail.take() {
            while let Some(r) = tail.next().await {
                self.responses.push(r);
            }
        }
    }

    /// The same reply with an action.
    pub fn with_action(mut self, action: Action) -> Reply {
        self.action = action;
        self
    }

    /// The kind of the tagged completion, if it is among `responses`.
    pub fn completion(&self) -> Option<&StatusResponse> {
        self.responses.iter().rev().find_map(|r| match r {
            Response::Status(s) if s.tag.is_some() => Some(s),
            _ => None,
        })
    }
}

/// What the driver does after writing a [`Reply`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Action {
    /// Read the next command.
    Continue,
    /// Close the connection (after LOGOUT's `BYE` and `OK`).
    Close,
    /// Start TLS now (after STARTTLS's `OK`): drop any bytes the client sent
    /// after the command, then handshake.
    StartTls,
    /// Enter IDLE: the `+ idling` continuation was sent; push updates from
    /// the handle until the client sends `DONE`.
    Idle(IdleHandle),
    /// AUTHENTICATE sent a `+` continuation: read one line and call the
    /// session again with it as the initial response.
    SaslContinuation,
    /// ENABLE UTF8=ACCEPT succeeded (RFC 6855): from the next command on,
    /// mailbox names are UTF-8 in both directions and strings may carry
    /// UTF-8 unquoted as literals.
    EnableUtf8,
    /// COMPRESS DEFLATE was accepted (RFC 4978): after this reply (sent
    /// uncompressed) both directions are compressed.
    Compress,
}

/// The outcome of a LOGIN or AUTHENTICATE, for throttles and logs: the
/// one type every protocol reports (`mailroom_core::throttle`).
pub use mailroom_core::throttle::LoginAttempt;

/// Everything sessions of one server share.
pub(crate) struct Context {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) quota: Option<Arc<dyn Quota>>,
    pub(crate) auth: Arc<dyn Authenticator>,
    pub(crate) config: ImapConfig,
    pub(crate) tls_available: bool,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("storage", &self.storage)
            .field("quota", &self.quota.is_some())
            .field("tls_available", &self.tls_available)
            .finish_non_exhaustive()
    }
}

/// One client's IMAP session, as a [`tower::Service`].
///
/// Calls are meant to be made one at a time (the driver waits for each
/// reply before decoding the next command); the state sits behind an async
/// mutex so that the returned futures are `'static` and layers such as
/// timeouts can wrap them.
#[derive(Clone)]
pub struct Session {
    state: Arc<Mutex<State>>,
    ctx: Arc<Context>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(ctx: Arc<Context>, conn: ConnectionInfo) -> Session {
        Session {
            state: Arc::new(Mutex::new(State::new(
                conn,
                crate::extension::appendlimit::status_value(&ctx.config.limits),
            ))),
            ctx,
        }
    }

    /// The greeting to send when the connection opens (`* OK [CAPABILITY ...]`).
    pub async fn greeting(&self) -> Response {
        let state = self.state.lock().await;
        op::capability::greeting(&state, &self.ctx)
    }

    /// The user logged in, if any (for logs).
    pub async fn user(&self) -> Option<String> {
        let state = self.state.lock().await;
        state.access.as_ref().map(|a| a.principal().user.clone())
    }
}

impl tower::Service<Request> for Session {
    type Response = Reply;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Reply, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let state = self.state.clone();
        let ctx = self.ctx.clone();
        Box::pin(async move {
            let mut guard = state.lock().await;
            let reply = op::dispatch(&mut guard, &ctx, &state, request).await;
            Ok(reply)
        })
    }
}

/// The IDLE in progress: the driver polls [`IdleHandle::changed`] while it
/// waits for `DONE`, then [`IdleHandle::updates`], and at the end calls
/// [`IdleHandle::done`]. With NOTIFY (RFC 5465) in force it also wakes for
/// the mailboxes NOTIFY watches and for namespace changes.
pub struct IdleHandle {
    tag: String,
    state: Arc<Mutex<State>>,
    watch: Option<mailroom_core::MailboxWatch>,
    notify: Option<crate::extension::notify::IdleWatches>,
}

impl fmt::Debug for IdleHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdleHandle")
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

impl IdleHandle {
    pub(crate) fn new(tag: String, state: Arc<Mutex<State>>) -> IdleHandle {
        IdleHandle {
            tag,
            state,
            watch: None,
            notify: None,
        }
    }

    /// Resolves when the selected mailbox (or, with NOTIFY, a watched one)
    /// has changes to report; never when nothing is watched. Cancel-safe:
    /// call [`IdleHandle::updates`] after it to get them.
    pub async fn changed(&mut self) {
        loop {
            {
                let state = self.state.lock().await;
                if let Some(n) = state.notify.as_ref() {
                    if n.has_news() {
                        return;
                    }
                    if let Some(w) = n.idle_watches(self.notify.as_ref()) {
                        self.notify = Some(w);
                    }
                } else {
                    self.notify = None;
                }
                match state.selected.as_ref() {
                    Some(sel) => {
                        if sel.has_news() {
                            return;
                        }
                        if self.watch.is_none() {
                            self.watch = Some(sel.watch());
                        }
                    }
                    None => self.watch = None,
                }
            }
            let selected = async {
                match self.watch.as_mut() {
                    Some(w) => {
                        if w.changed().await.is_none() {
                            // The mailbox went away; nothing will change any more.
                            futures::future::pending::<()>().await;
                        }
                    }
                    None => futures::future::pending::<()>().await,
                }
            };
            let notify = async {
                match self.notify.as_mut() {
                    Some(n) => n.wait().await,
                    None => futures::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = selected => {}
                () = notify => {}
            }
        }
    }

    /// The updates to push now (EXISTS, EXPUNGE or VANISHED, FETCH, and
    /// NOTIFY's STATUS and LIST).
    pub async fn updates(&mut self) -> Vec<Response> {
        let mut state = self.state.lock().await;
        let mut out = crate::extension::notify::sync_selected(&mut state, true, false).await;
        if state.notify.is_some() {
            out.extend(
                crate::extension::notify::updates(
                    &mut state,
                    crate::extension::notify::After::Check,
                )
                .await,
            );
        }
        if state.enabled.uidonly {
            out = crate::extension::uidonly::rewrite_all(out);
        }
        out
    }

    /// Ends the IDLE: `ok` says whether the client sent `DONE` (otherwise
    /// the command ends with `BAD`). Returns the last updates and the tagged
    /// completion.
    pub async fn done(mut self, ok: bool) -> Vec<Response> {
        let mut out = self.updates().await;
        if ok {
            out.push(StatusResponse::ok(&self.tag, None, "IDLE terminated"));
        } else {
            out.push(StatusResponse::bad(
                Some(&self.tag),
                None,
                "expected DONE to end IDLE",
            ));
        }
        out
    }
}

/// Whether a command may run in the state the session is in; `Err` holds
/// the reason for the `BAD`.
pub(crate) fn check_state(state: &State, command: &Command) -> Result<(), &'static str> {
    use Command as C;
    let authed = state.access.is_some();
    let selected = state.selected.is_some();
    match command {
        C::InvalidMailboxName { command, .. } | C::SavedResult { command } => {
            check_state(state, command)
        }
        C::Capability | C::Noop | C::Logout | C::Id(_) => Ok(()),
        C::StartTls | C::Authenticate { .. } | C::Login { .. } => {
            if authed {
                Err("already authenticated")
            } else {
                Ok(())
            }
        }
        C::Check
        | C::Close
        | C::Unselect
        | C::Expunge { .. }
        | C::Search { .. }
        | C::Sort { .. }
        | C::Thread { .. }
        | C::CancelUpdate(_)
        | C::Fetch { .. }
        | C::Store { .. }
        | C::Copy { .. }
        | C::Move { .. }
        | C::Replace { .. } => {
            if !authed {
                Err("log in first")
            } else if !selected {
                Err("no mailbox selected")
            } else {
                Ok(())
            }
        }
        _ => {
            if authed {
                Ok(())
            } else {
                Err("log in first")
            }
        }
    }
}
