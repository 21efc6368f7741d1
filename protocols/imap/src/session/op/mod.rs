//! One module per IMAP command, named after it. The UID forms live with
//! their base command (`UID FETCH` in [`fetch`]), EXAMINE with [`select`],
//! UNSUBSCRIBE in [`unsubscribe`], LSUB and XLIST in their own files over
//! the shared LIST code, the ACL commands of RFC 4314 in [`acl`] and the
//! QUOTA commands of RFC 9208 in [`quota`]; a command naming a mailbox that
//! is not modified UTF-7 is answered in [`mailbox_name`].

use std::sync::Arc;

use tokio::sync::Mutex;

use super::{Context, Reply, SessionState, State, check_state};
use crate::command::{Command, Request};
use crate::response::{Code, Response, StatusResponse};

pub mod acl;
pub mod append;
pub mod authenticate;
pub mod capability;
pub mod check;
pub mod close;
pub mod compress;
pub mod copy;
pub mod create;
pub mod delete;
pub mod enable;
pub mod examine;
pub mod expunge;
pub mod fetch;
pub mod id;
pub mod idle;
pub mod list;
pub mod login;
pub mod logout;
pub mod lsub;
pub mod mailbox_name;
#[path = "move.rs"]
pub mod move_;
pub mod namespace;
pub mod noop;
pub mod quota;
pub mod rename;
pub mod replace;
pub mod search;
pub mod select;
pub mod sort;
pub mod starttls;
pub mod status;
pub mod store;
pub mod subscribe;
pub mod thread;
pub mod unselect;
pub mod unsubscribe;
pub mod xlist;

/// Runs one command and appends the unsolicited updates RFC 3501 allows
/// after it.
pub(crate) async fn dispatch(
    state: &mut State,
    ctx: &Arc<Context>,
    shared: &Arc<Mutex<State>>,
    request: Request,
) -> Reply {
    let Request { tag, command } = request;
    if let Err(reason) = check_state(state, &command) {
        let mut reply = Reply::new(vec![StatusResponse::bad(
            Some(&tag),
            Some(Code::ClientBug),
            format!("{} not allowed now: {reason}", command.name()),
        )]);
        reply.state = if state.selected.is_some() {
            SessionState::Selected
        } else if state.access.is_some() {
            SessionState::Authenticated
        } else {
            SessionState::NotAuthenticated
        };
        return reply;
    }
    if state.enabled.uidonly
        && let Some(reason) = crate::extension::uidonly::refusal(&command)
    {
        let mut reply = Reply::new(vec![crate::extension::uidonly::refuse(&tag, reason)]);
        reply.state = if state.selected.is_some() {
            SessionState::Selected
        } else {
            SessionState::Authenticated
        };
        return reply;
    }
    let updates = UpdatePolicy::for_command(&command);
    let notify_after = crate::extension::notify::after(&command);
    let uid_command = command.is_uid();
    // `$` (RFC 5182): the saved messages take its place now, after the
    // policy for updates was taken from the command as the client sent it.
    let command = match (command, state.selected.as_ref()) {
        (Command::SavedResult { command }, Some(sel)) => {
            crate::extension::searchres::resolve(sel, *command)
        }
        (command, _) => command,
    };
    let mut reply = run(state, ctx, shared, &tag, command).await;
    reply.state = if matches!(reply.action, super::Action::Close) {
        SessionState::Logout
    } else if state.selected.is_some() {
        SessionState::Selected
    } else if state.access.is_some() {
        SessionState::Authenticated
    } else {
        SessionState::NotAuthenticated
    };
    if updates != UpdatePolicy::None && state.selected.is_some() {
        let extra = crate::extension::notify::sync_selected(
            state,
            updates == UpdatePolicy::Full,
            uid_command,
        )
        .await;
        insert_before_tagged(&mut reply, extra);
    }
    crate::extension::notify::after_command(state, notify_after, &mut reply).await;
    if state.enabled.uidonly {
        use crate::extension::uidonly;
        reply.responses = uidonly::rewrite_all(std::mem::take(&mut reply.responses));
        reply.tail = reply.tail.take().map(uidonly::rewrite_stream);
    }
    reply
}

/// Before a client's poll (NOOP, CHECK, the start of IDLE): the selected mailbox's store looks
/// for changes made where its watch cannot see them (another frontend on a
/// shared database). A failure is left to the updates that follow, which
/// read the store themselves.
async fn poll_selected(state: &State) {
    if let Some(sel) = state.selected.as_ref()
        && let Err(e) = sel.handle.mailbox().poll_changes().await
    {
        tracing::debug!(error = %e, "polling the selected mailbox for changes failed");
    }
}

/// Adds unsolicited responses right before the tagged completion: after
/// every response of the command, whose sequence numbers were computed
/// before the updates (an EXPUNGE sent first would shift them).
pub(crate) fn insert_before_tagged(reply: &mut Reply, extra: Vec<Response>) {
    if extra.is_empty() {
        return;
    }
    match reply.tail.take() {
        Some(tail) => reply.tail = Some(before_tagged(tail, extra)),
        None => {
            let at = reply
                .responses
                .iter()
                .rposition(|r| matches!(r, Response::Status(s) if s.tag.is_some()))
                .unwrap_or(reply.responses.len());
            reply.responses.splice(at..at, extra);
        }
    }
}

/// The streamed tail with `extra` written just before its tagged completion.
fn before_tagged(tail: super::ResponseStream, extra: Vec<Response>) -> super::ResponseStream {
    use futures::StreamExt as _;
    let mut extra = Some(extra);
    Box::pin(tail.flat_map(move |r| {
        let mut out = Vec::new();
        if matches!(&r, Response::Status(s) if s.tag.is_some()) {
            out.extend(extra.take().unwrap_or_default());
        }
        out.push(r);
        futures::stream::iter(out)
    }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UpdatePolicy {
    /// No updates (LOGOUT, commands that change or leave the selection, IDLE).
    None,
    /// EXISTS and FETCH, but no EXPUNGE (FETCH, STORE, SEARCH, RFC 3501 §7.4.1).
    NoExpunge,
    /// Everything.
    Full,
}

impl UpdatePolicy {
    fn for_command(command: &Command) -> UpdatePolicy {
        match command {
            Command::InvalidMailboxName { command, .. } | Command::SavedResult { command } => {
                UpdatePolicy::for_command(command)
            }
            Command::Logout
            | Command::Select { .. }
            | Command::Examine { .. }
            | Command::Close
            | Command::Unselect
            | Command::Idle
            | Command::StartTls
            | Command::Authenticate { .. }
            | Command::Login { .. } => UpdatePolicy::None,
            Command::Fetch { uid: false, .. }
            | Command::Store { uid: false, .. }
            | Command::Search { uid: false, .. }
            | Command::Sort { uid: false, .. }
            | Command::Thread { uid: false, .. } => UpdatePolicy::NoExpunge,
            _ => UpdatePolicy::Full,
        }
    }
}

async fn run(
    state: &mut State,
    ctx: &Arc<Context>,
    shared: &Arc<Mutex<State>>,
    tag: &str,
    command: Command,
) -> Reply {
    match command {
        Command::Capability => capability::handle(state, ctx, tag),
        Command::Noop => noop::handle(state, tag).await,
        Command::Logout => logout::handle(tag),
        Command::Id(params) => id::handle(state, tag, params),
        Command::StartTls => starttls::handle(state, ctx, tag),
        Command::Authenticate {
            mechanism,
            initial_response,
        } => authenticate::handle(state, ctx, tag, &mechanism, initial_response.as_deref()).await,
        Command::Login { username, password } => {
            login::handle(state, ctx, tag, username, password).await
        }
        Command::Select { mailbox, params } => {
            select::handle(state, tag, &mailbox, &params, false).await
        }
        Command::Examine { mailbox, params } => {
            examine::handle(state, tag, &mailbox, &params).await
        }
        Command::Create {
            mailbox,
            special_use,
        } => create::handle(state, tag, &mailbox, &special_use).await,
        Command::Delete { mailbox } => delete::handle(state, tag, &mailbox).await,
        Command::Rename { from, to } => rename::handle(state, tag, &from, &to).await,
        Command::Subscribe { mailbox } => subscribe::handle(state, tag, &mailbox).await,
        Command::Unsubscribe { mailbox } => unsubscribe::handle(state, tag, &mailbox).await,
        Command::List(args) => list::handle(state, tag, &args).await,
        Command::Lsub { reference, pattern } => {
            lsub::handle(state, tag, &reference, &pattern).await
        }
        Command::Xlist { reference, pattern } => {
            xlist::handle(state, tag, &reference, &pattern).await
        }
        Command::Namespace => namespace::handle(tag),
        Command::Status { mailbox, items } => status::handle(state, tag, &mailbox, &items).await,
        Command::Append {
            mailbox,
            flags,
            date,
            message,
        } => {
            let one = crate::command::AppendMessage {
                flags,
                date,
                content: crate::command::AppendContent::Literal(message),
            };
            append::handle(state, ctx, tag, &mailbox, vec![one]).await
        }
        Command::AppendMany { mailbox, messages } => {
            append::handle(state, ctx, tag, &mailbox, messages).await
        }
        Command::Replace {
            uid,
            target,
            mailbox,
            message,
        } => replace::handle(state, ctx, tag, uid, target, &mailbox, message).await,
        Command::Compress(mechanism) => compress::handle(state, tag, &mechanism),
        Command::Enable(caps) => enable::handle(state, tag, &caps),
        Command::Notify(set) => crate::extension::notify::handle(state, tag, set).await,
        Command::Idle => idle::handle(state, shared, tag).await,
        Command::GetAcl { mailbox } => acl::get_acl(state, tag, &mailbox).await,
        Command::SetAcl {
            mailbox,
            identifier,
            rights,
        } => acl::set_acl(state, tag, &mailbox, &identifier, &rights).await,
        Command::DeleteAcl {
            mailbox,
            identifier,
        } => acl::delete_acl(state, tag, &mailbox, &identifier).await,
        Command::ListRights {
            mailbox,
            identifier,
        } => acl::list_rights(state, tag, &mailbox, &identifier).await,
        Command::MyRights { mailbox } => acl::my_rights(state, tag, &mailbox).await,
        Command::GetQuota { root } => quota::get_quota(state, tag, &root).await,
        Command::GetQuotaRoot { mailbox } => quota::get_quota_root(state, tag, &mailbox).await,
        Command::SetQuota { root, limits } => quota::set_quota(state, tag, &root, &limits).await,
        Command::Check => check::handle(state, tag).await,
        Command::Close => close::handle(state, tag).await,
        Command::Unselect => unselect::handle(state, tag),
        Command::Expunge { uids } => expunge::handle(state, tag, uids.as_ref()).await,
        Command::Search {
            uid,
            charset,
            return_options,
            criteria,
        } => {
            search::handle(
                state,
                tag,
                uid,
                charset.as_deref(),
                return_options.as_deref(),
                &criteria,
            )
            .await
        }
        Command::Sort {
            uid,
            return_options,
            criteria,
            charset,
            search,
        } => {
            sort::handle(
                state,
                tag,
                uid,
                return_options.as_deref(),
                &criteria,
                &charset,
                &search,
            )
            .await
        }
        Command::CancelUpdate(tags) => crate::extension::context::cancel(state, tag, &tags),
        Command::Thread {
            uid,
            algorithm,
            charset,
            search,
        } => thread::handle(state, tag, uid, algorithm, &charset, &search).await,
        Command::Fetch {
            uid,
            set,
            items,
            changed_since,
            vanished,
        } => fetch::handle(state, tag, uid, &set, items, changed_since, vanished).await,
        Command::Store {
            uid,
            set,
            kind,
            silent,
            flags,
            unchanged_since,
        } => store::handle(state, tag, uid, &set, kind, silent, flags, unchanged_since).await,
        Command::Copy { uid, set, mailbox } => copy::handle(state, tag, uid, &set, &mailbox).await,
        Command::Move { uid, set, mailbox } => move_::handle(state, tag, uid, &set, &mailbox).await,
        Command::InvalidMailboxName { command, name } => {
            mailbox_name::handle(state, tag, &command, &name)
        }
        // Resolved in `dispatch`; only reachable without a selection,
        // which `check_state` refuses first.
        Command::SavedResult { .. } => bad(tag, "no mailbox selected"),
    }
}

/// Catches the selected mailbox up with the store; errors are logged and
/// swallowed (the command itself already has its answer).
/// The unsolicited updates for the session's mailbox; `uid_command`: they
/// follow a UID command, so FETCH updates carry the UID (a client keying
/// the command's FETCH responses by UID, as imapclient does, would file a
/// UID-less one under its sequence number and mistake it for another
/// message).
pub(crate) async fn sync_updates(
    state: &mut State,
    allow_expunge: bool,
    uid_command: bool,
) -> Vec<Response> {
    let enabled = state.enabled;
    let Some(sel) = state.selected.as_mut() else {
        return Vec::new();
    };
    let changed = sel.has_news();
    let mut out = match sel.sync(allow_expunge, enabled, uid_command).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "could not read mailbox changes");
            Vec::new()
        }
    };
    // CONTEXT=SEARCH/SORT: updated results after the EXISTS/EXPUNGE.
    out.extend(crate::extension::context::updates(state, changed).await);
    out
}

/// Shorthand for a one-response reply.
pub(crate) fn reply(r: Response) -> Reply {
    Reply::new(vec![r])
}

/// A tagged OK reply.
pub(crate) fn ok(tag: &str, text: &str) -> Reply {
    reply(StatusResponse::ok(tag, None, text))
}

/// A tagged BAD reply.
pub(crate) fn bad(tag: &str, text: impl Into<String>) -> Reply {
    reply(StatusResponse::bad(Some(tag), None, text))
}

/// A tagged NO reply for a core error.
pub(crate) fn fail(tag: &str, e: &mailroom_core::Error) -> Reply {
    reply(super::error_response(tag, e))
}
