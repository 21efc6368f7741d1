//! NOTIFY (RFC 5465): which changes a session hears of, in which
//! mailboxes, without selecting them.
//!
//! `NOTIFY SET [(STATUS)] (filter events) ...` replaces the session's
//! notifications; `NOTIFY NONE` turns them off (back to RFC 3501 and IDLE
//! for the selected mailbox only).
//!
//! ## Filters
//!
//! `selected`, `selected-delayed`, `inboxes` (INBOX), `personal` (every
//! mailbox of the user's own namespace), `subscribed`, `subtree` (the named
//! mailboxes and everything below them) and `mailboxes` (exactly the named
//! ones). A mailbox takes the events of the first group whose filter
//! matches it. The selected mailbox is never reported with STATUS: it gets
//! the ordinary EXISTS, EXPUNGE and FETCH updates (at the points RFC 3501
//! §7.4.1 allows, which is what `selected-delayed` asks for), and with
//! `MessageNew (fetch-att ...)` in a `selected` group, a FETCH of those
//! items for each new message right after its EXISTS.
//!
//! ## Events
//!
//! - MessageNew, MessageExpunge, FlagChange in a mailbox that is not
//!   selected: `* STATUS name (MESSAGES n UIDNEXT n UIDVALIDITY n UNSEEN n)`
//!   (with HIGHESTMODSEQ once CONDSTORE is on), sent when the mailbox's
//!   status changed in a way one of the group's events names. MessageNew
//!   and MessageExpunge go together and FlagChange needs both (RFC 5465
//!   §5): otherwise BAD.
//! - MailboxName: `* LIST (attrs) "/" name` for a new mailbox,
//!   `* LIST (\NonExistent) "/" name` for a deleted one and
//!   `* LIST (attrs) "/" new ("OLDNAME" (old))` for a rename, whoever made
//!   it: a name gone and a name come with the same MAILBOXID (see
//!   [Mailbox ids](#mailbox-ids)).
//! - SubscriptionChange: `* LIST (attrs [\Subscribed]) "/" name`.
//! - AnnotationChange, MailboxMetadataChange, ServerMetadataChange (and
//!   any unknown event): refused with `NO [BADEVENT (...)]` listing what is
//!   supported, as §3 lets a server without ANNOTATE/METADATA do.
//!
//! Changes this session made itself are reported like any other.
//!
//! ## Where changes come from
//!
//! Message events reuse what IDLE uses: each watched mailbox is opened
//! (read-only; this claims no `\Recent`) and its store watch
//! ([`mailroom_core::MailboxWatch`]) is kept, so an LMTP delivery, another
//! session, another protocol or, on the PostgreSQL store, another frontend
//! wakes it exactly as it wakes an IDLE on that mailbox. After every command
//! (and at once during IDLE) the watches that moved are read with a STATUS
//! from the mailbox header. NOOP and CHECK first ask the store to poll the
//! watched mailboxes, all of them in one call
//! ([`mailroom_core::Storage::poll_changes`]: one statement on the
//! PostgreSQL store), so they report a change another frontend
//! acknowledged before them even while its notification is on its way.
//!
//! Mailbox names and subscriptions: the session keeps the list of names it
//! last saw and compares it with a fresh LIST whenever the store's
//! namespace watch on the user ([`mailroom_core::Storage::watch_namespace`])
//! fires, which it does for every CREATE, DELETE, RENAME, special-use
//! change, SUBSCRIBE and UNSUBSCRIBE of the user's mailboxes, whoever made
//! it (this or another session, another protocol, an admin command,
//! replication, or on the PostgreSQL store another frontend), so an IDLE
//! hears of it at once. It also lists again after this session's own
//! namespace commands, and on NOOP and CHECK when the session asked for
//! MailboxName or SubscriptionChange and the store does not promise that
//! its watch wakes for every change before the change is acknowledged
//! ([`mailroom_core::Storage::namespace_watch_is_complete`]: the memory
//! and CRC stores do; the PostgreSQL store does not, another frontend's
//! notification may be on its way; a store whose watch never fires, the
//! trait's default, does not), so such changes are still reported when
//! the client polls. A session that asked only for message events lists
//! again only when the watch fired (a mailbox may have come or gone under
//! its filters). Only the user's own namespace is watched: a mailbox
//! another user creates, or shares, is seen at the next own namespace
//! change (or poll, on a store whose watch is not complete).
//!
//! ## Mailbox ids
//!
//! To tell a rename, the session keeps, next to each name it lists, the
//! MAILBOXID of the mailbox, learnt once per name: from the last STATUS of
//! a mailbox watched for message events, else with one STATUS (read from
//! the mailbox header) for a name a MailboxName group matches, when NOTIFY
//! SET is given or when the name first appears in a later listing, and for
//! every name that appears in a listing where a name went away (it may be
//! that one's new name). A name kept from one listing to the next keeps
//! its id: a re-listing reads no mailbox it saw before. A name gone whose
//! id is that of a name come is a rename, told with OLDNAME when a
//! MailboxName group matches either name; a name gone without such a match
//! is a deletion, a name come without one a creation. The listing itself
//! carries no id ([`mailroom_core::MailboxInfo`]), so NOTIFY SET costs one
//! STATUS per such mailbox not already watched.
//!
//! ## Bounds
//!
//! A session watches at most [`MAX_WATCHED`] mailboxes, each holding the
//! mailbox open as a selection does (its index mapped in the CRC store). A
//! NOTIFY SET that would watch more is answered `NO [LIMIT]`; if mailboxes
//! created later push the count over it, the session gets
//! `* OK [NOTIFICATIONOVERFLOW]` and its notifications are turned off, as
//! RFC 5465 §5.8 describes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::future::BoxFuture;
use mailroom_core::access::{ListEntry, MailAccess, Selected};
use mailroom_core::mailbox::DELIMITER;
use mailroom_core::{
    Mailbox, MailboxId, MailboxStatus, MailboxWatch, ModSeq, NamespaceWatch, SeqSet, Uid,
};

use crate::command::{Command, FetchAttr, StatusItem};
use crate::response::{Code, Data, ListKind, Response, StatusKind, StatusResponse};
use crate::session::op::list::{Flavour, attributes};
use crate::session::op::status::status_data;
use crate::session::{Reply, State};

/// The capability.
pub const CAPABILITY: &str = "NOTIFY";

/// The events this server can report, as `[BADEVENT]` lists them.
pub const SUPPORTED_EVENTS: [&str; 5] = [
    "MessageNew",
    "MessageExpunge",
    "FlagChange",
    "MailboxName",
    "SubscriptionChange",
];

/// The most mailboxes one session's NOTIFY watches at once.
pub const MAX_WATCHED: usize = 200;

/// `NOTIFY SET`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySet {
    /// `(STATUS)`: send STATUS for every watched mailbox at once.
    pub status: bool,
    /// The event groups, in the client's order.
    pub groups: Vec<EventGroup>,
}

/// One `(filter events)` group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventGroup {
    /// Which mailboxes.
    pub filter: Filter,
    /// Which events; empty for `NONE`.
    pub events: Vec<Event>,
}

/// A mailbox filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `selected`
    Selected,
    /// `selected-delayed`
    SelectedDelayed,
    /// `inboxes`
    Inboxes,
    /// `personal`
    Personal,
    /// `subscribed`
    Subscribed,
    /// `subtree name...`
    Subtree(Vec<String>),
    /// `mailboxes name...`
    Mailboxes(Vec<String>),
}

/// An event name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `MessageNew [(fetch-att ...)]`
    MessageNew(Vec<FetchAttr>),
    /// `MessageExpunge`
    MessageExpunge,
    /// `FlagChange`
    FlagChange,
    /// `AnnotationChange` (not supported)
    AnnotationChange,
    /// `MailboxName`
    MailboxName,
    /// `SubscriptionChange`
    SubscriptionChange,
    /// `MailboxMetadataChange` (not supported)
    MailboxMetadataChange,
    /// `ServerMetadataChange` (not supported)
    ServerMetadataChange,
    /// Any other name (not supported).
    Other(String),
}

/// What one group asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Mask {
    new: bool,
    expunge: bool,
    flags: bool,
    name: bool,
    subscription: bool,
}

impl Mask {
    fn of(events: &[Event]) -> Mask {
        let mut m = Mask::default();
        for e in events {
            match e {
                Event::MessageNew(_) => m.new = true,
                Event::MessageExpunge => m.expunge = true,
                Event::FlagChange => m.flags = true,
                Event::MailboxName => m.name = true,
                Event::SubscriptionChange => m.subscription = true,
                _ => {}
            }
        }
        m
    }

    fn messages(self) -> bool {
        self.new || self.expunge || self.flags
    }

    fn namespace(self) -> bool {
        self.name || self.subscription
    }
}

/// One mailbox whose message events are watched.
struct Watched {
    /// Holds the mailbox open, so its watch stays alive.
    handle: Selected,
    watch: MailboxWatch,
    /// The watch's value when the status was last read.
    seen: ModSeq,
    last: MailboxStatus,
    mask: Mask,
}

impl std::fmt::Debug for Watched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched")
            .field("seen", &self.seen)
            .finish_non_exhaustive()
    }
}

/// One mailbox name as last listed, for MailboxName and SubscriptionChange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Known {
    subscribed: bool,
    /// Its MAILBOXID, when learnt (module docs, "Mailbox ids").
    id: Option<MailboxId>,
}

/// A session's NOTIFY state.
#[derive(Debug)]
pub(crate) struct NotifyState {
    groups: Vec<EventGroup>,
    /// The fetch-att of MessageNew in a `selected` group.
    selected_atts: Vec<FetchAttr>,
    watched: BTreeMap<String, Watched>,
    /// Every mailbox name last seen, with whether it is subscribed and its
    /// id; `None` when no group asks for MailboxName or SubscriptionChange.
    namespace: Option<BTreeMap<String, Known>>,
    /// The store's watch on the user's namespace.
    names: NamespaceWatch,
    /// Whether that watch wakes for every change before it is acknowledged
    /// ([`mailroom_core::Storage::namespace_watch_is_complete`]): then a
    /// poll need not list again unless it fired.
    names_complete: bool,
    /// Grows whenever `watched` changes (IDLE rebuilds its wait list).
    epoch: u64,
}

/// What IDLE waits on for NOTIFY.
pub(crate) struct IdleWatches {
    epoch: u64,
    watches: Vec<MailboxWatch>,
    names: NamespaceWatch,
}

impl NotifyState {
    /// Whether a check would find something to look at.
    pub(crate) fn has_news(&self) -> bool {
        self.names.has_changed() || self.watched.values().any(|w| w.watch.current() != w.seen)
    }

    /// The watches IDLE waits on, rebuilt when `epoch` moved.
    pub(crate) fn idle_watches(&self, have: Option<&IdleWatches>) -> Option<IdleWatches> {
        if have.is_some_and(|h| h.epoch == self.epoch) {
            return None;
        }
        Some(IdleWatches {
            epoch: self.epoch,
            watches: self.watched.values().map(|w| w.watch.clone()).collect(),
            names: self.names.clone(),
        })
    }
}

impl IdleWatches {
    /// Resolves when a watched mailbox or the user's namespace changed.
    pub(crate) async fn wait(&mut self) {
        let mut waits: Vec<BoxFuture<'_, ()>> = self
            .watches
            .iter_mut()
            .map(|w| {
                Box::pin(async move {
                    if w.changed().await.is_none() {
                        // Gone: the next check drops it.
                        futures::future::pending::<()>().await;
                    }
                }) as BoxFuture<'_, ()>
            })
            .collect();
        waits.push(Box::pin(self.names.changed()));
        futures::future::select_all(waits).await;
    }
}

fn canonical(name: &str) -> &str {
    if name.eq_ignore_ascii_case("INBOX") {
        "INBOX"
    } else {
        name
    }
}

fn matches(filter: &Filter, name: &str, subscribed: bool, personal: bool) -> bool {
    match filter {
        Filter::Selected | Filter::SelectedDelayed => false,
        Filter::Inboxes => name == "INBOX",
        Filter::Personal => personal,
        Filter::Subscribed => subscribed,
        Filter::Subtree(roots) => roots.iter().any(|r| {
            let r = canonical(r);
            name == r
                || name
                    .strip_prefix(r)
                    .is_some_and(|rest| rest.starts_with(DELIMITER))
        }),
        Filter::Mailboxes(names) => names.iter().any(|n| canonical(n) == name),
    }
}

/// The events of the first group whose filter matches `name`.
fn mask_for(groups: &[EventGroup], access: &MailAccess, name: &str, subscribed: bool) -> Mask {
    let personal = access
        .resolve(name)
        .is_ok_and(|r| r.owner == access.principal().user);
    groups
        .iter()
        .find(|g| matches(&g.filter, name, subscribed, personal))
        .map(|g| Mask::of(&g.events))
        .unwrap_or_default()
}

/// Every mailbox the user can list (existing ones only).
async fn listing(access: &MailAccess) -> mailroom_core::Result<Vec<ListEntry>> {
    let mut rows = access.list("", "*").await?;
    rows.retain(|e| !e.non_existent);
    Ok(rows)
}

/// The STATUS items a notification carries.
fn status_items(condstore: bool) -> Vec<StatusItem> {
    let mut items = vec![
        StatusItem::Messages,
        StatusItem::UidNext,
        StatusItem::UidValidity,
        StatusItem::Unseen,
    ];
    if condstore {
        items.push(StatusItem::HighestModSeq);
    }
    items
}

/// Why a NOTIFY SET is refused.
enum Refusal {
    Bad(&'static str),
    BadEvent,
}

fn validate(set: &NotifySet) -> Result<(), Refusal> {
    let mut selected_groups = 0;
    for g in &set.groups {
        if matches!(g.filter, Filter::Selected | Filter::SelectedDelayed) {
            selected_groups += 1;
        }
        if g.events.iter().any(|e| {
            matches!(
                e,
                Event::AnnotationChange
                    | Event::MailboxMetadataChange
                    | Event::ServerMetadataChange
                    | Event::Other(_)
            )
        }) {
            return Err(Refusal::BadEvent);
        }
        let m = Mask::of(&g.events);
        if m.new != m.expunge {
            return Err(Refusal::Bad(
                "MessageNew and MessageExpunge must be given together",
            ));
        }
        if m.flags && !m.new {
            return Err(Refusal::Bad(
                "FlagChange needs MessageNew and MessageExpunge",
            ));
        }
    }
    if selected_groups > 1 {
        return Err(Refusal::Bad(
            "at most one selected or selected-delayed filter",
        ));
    }
    Ok(())
}

/// NOTIFY SET / NOTIFY NONE.
pub(crate) async fn handle(state: &mut State, tag: &str, set: Option<NotifySet>) -> Reply {
    let Some(set) = set else {
        state.notify = None;
        return Reply::new(vec![StatusResponse::ok(tag, None, "NOTIFY completed")]);
    };
    match validate(&set) {
        Ok(()) => {}
        Err(Refusal::Bad(why)) => {
            return Reply::new(vec![StatusResponse::bad(Some(tag), None, why)]);
        }
        Err(Refusal::BadEvent) => {
            return Reply::new(vec![StatusResponse::no(
                tag,
                Some(Code::BadEvent(
                    SUPPORTED_EVENTS.iter().map(|s| (*s).to_owned()).collect(),
                )),
                "event not supported",
            )]);
        }
    }
    let Some(access) = state.access.clone() else {
        return Reply::new(vec![StatusResponse::bad(Some(tag), None, "log in first")]);
    };
    let selected_atts = set
        .groups
        .iter()
        .filter(|g| matches!(g.filter, Filter::Selected | Filter::SelectedDelayed))
        .flat_map(|g| g.events.iter())
        .find_map(|e| match e {
            Event::MessageNew(atts) if !atts.is_empty() => Some(atts.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let wants_namespace = set.groups.iter().any(|g| Mask::of(&g.events).namespace());
    let mut n = NotifyState {
        groups: set.groups,
        selected_atts,
        watched: BTreeMap::new(),
        namespace: None,
        names: access.storage().watch_namespace(&access.principal().user),
        names_complete: access.storage().namespace_watch_is_complete(),
        epoch: 0,
    };
    // Whatever changed before now is in the listing about to be taken.
    n.names.mark_seen();
    let rows = match listing(&access).await {
        Ok(r) => r,
        Err(e) => return crate::session::op::fail(tag, &e),
    };
    if let Err(too_many) = rewatch(&mut n, &access, &rows).await {
        return Reply::new(vec![StatusResponse::no(
            tag,
            Some(Code::Limit),
            format!("NOTIFY would watch {too_many} mailboxes, at most {MAX_WATCHED}"),
        )]);
    }
    if wants_namespace {
        let empty = BTreeMap::new();
        n.namespace = Some(known(&n, &access, &rows, &empty, false).await);
    }
    let mut out = Vec::new();
    if set.status {
        let items = status_items(state.enabled.condstore);
        let selected = state.selected.as_ref().map(|s| s.name.as_str());
        for (name, w) in &n.watched {
            if Some(name.as_str()) != selected.map(canonical) {
                out.push(status_data(name, &w.last, &items, state.append_limit));
            }
        }
    }
    state.notify = Some(n);
    out.push(StatusResponse::ok(tag, None, "NOTIFY completed"));
    Reply::new(out)
}

/// Makes `watched` the mailboxes of `rows` whose group asks for message
/// events, keeping the ones already open. `Err(n)`: that would be `n`, over
/// [`MAX_WATCHED`].
async fn rewatch(
    n: &mut NotifyState,
    access: &MailAccess,
    rows: &[ListEntry],
) -> Result<(), usize> {
    let wanted: BTreeMap<&str, Mask> = rows
        .iter()
        .map(|e| {
            (
                e.name.as_str(),
                mask_for(&n.groups, access, &e.name, e.subscribed),
            )
        })
        .filter(|(_, m)| m.messages())
        .collect();
    if wanted.len() > MAX_WATCHED {
        return Err(wanted.len());
    }
    let before = n.watched.len();
    n.watched
        .retain(|name, _| wanted.contains_key(name.as_str()));
    let mut changed = before != n.watched.len();
    for (name, mask) in wanted {
        if let Some(w) = n.watched.get_mut(name) {
            w.mask = mask;
            continue;
        }
        // A mailbox the user may list but not read is simply not watched.
        let Ok(handle) = access.select(name, true).await else {
            continue;
        };
        let watch = handle.mailbox().watch();
        let seen = watch.current();
        let Ok(last) = access.status(name).await else {
            continue;
        };
        n.watched.insert(
            name.to_owned(),
            Watched {
                handle,
                watch,
                seen,
                last,
                mask,
            },
        );
        changed = true;
    }
    if changed {
        n.epoch = n.epoch.wrapping_add(1);
    }
    Ok(())
}

/// What happened between two statuses of one mailbox, as NOTIFY names it.
fn worth_telling(old: &MailboxStatus, new: &MailboxStatus, mask: Mask) -> bool {
    let same_uids = old.uid_validity == new.uid_validity;
    let arrived = !same_uids || new.uid_next > old.uid_next;
    let added = if same_uids {
        u64::from(new.uid_next.0.saturating_sub(old.uid_next.0))
    } else {
        u64::from(new.messages)
    };
    let expunged = u64::from(new.messages) < u64::from(old.messages) + added;
    let flags = new.unseen != old.unseen || new.highest_modseq != old.highest_modseq;
    (arrived && mask.new) || (expunged && mask.expunge) || (flags && mask.flags)
}

/// What a command means for NOTIFY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum After {
    /// Nothing after it (LOGOUT, IDLE, NOTIFY itself, TLS and login).
    Nothing,
    /// Report what changed.
    Check,
    /// Report what changed, asking the store to poll every watched
    /// mailbox, and listing the namespace again if the session asked for
    /// namespace events and the store's watch may miss a change (NOOP,
    /// CHECK: the commands a client polls with).
    Recheck,
    /// Report what changed, listing the namespace again: the commands
    /// that may have changed it (CREATE, DELETE, RENAME, SUBSCRIBE,
    /// UNSUBSCRIBE; the store's namespace watch wakes every other session,
    /// and this one even on a store whose watch never fires).
    Namespace,
}

/// How a command is followed.
pub(crate) fn after(command: &Command) -> After {
    match command {
        Command::Logout
        | Command::Idle
        | Command::Notify(_)
        | Command::StartTls
        | Command::Compress(_)
        | Command::Authenticate { .. }
        | Command::Login { .. } => After::Nothing,
        Command::Noop | Command::Check => After::Recheck,
        Command::Create { .. }
        | Command::Delete { .. }
        | Command::Rename { .. }
        | Command::Subscribe { .. }
        | Command::Unsubscribe { .. } => After::Namespace,
        _ => After::Check,
    }
}

/// Runs after every command: adds this session's notifications before the
/// tagged reply.
pub(crate) async fn after_command(state: &mut State, after: After, reply: &mut Reply) {
    if after == After::Nothing || state.notify.is_none() {
        return;
    }
    let extra = updates(state, after).await;
    crate::session::op::insert_before_tagged(reply, extra);
}

/// The notifications due now: STATUS for watched mailboxes that changed
/// (not the selected one) and LIST for namespace changes. The namespace
/// is listed when its watch fired, after [`After::Namespace`], and after
/// [`After::Recheck`] when the session asked for namespace events and the
/// store's watch may miss a change; after [`After::Recheck`] the watched
/// mailboxes are polled, with one store call.
pub(crate) async fn updates(state: &mut State, after: After) -> Vec<Response> {
    let Some(access) = state.access.clone() else {
        return Vec::new();
    };
    let condstore = state.enabled.condstore;
    let append_limit = state.append_limit;
    let selected = state
        .selected
        .as_ref()
        .map(|s| canonical(&s.name).to_owned());
    let Some(n) = state.notify.as_mut() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    // Listing again is needed when the namespace watch fired (mailboxes may
    // have come or gone under a message-event filter too), after this
    // session's own namespace commands (a store's watch may never fire),
    // and on a poll when the session asked for MailboxName or
    // SubscriptionChange and the watch may have missed a change.
    let relist = n.names.has_changed()
        || after == After::Namespace
        || (after == After::Recheck && n.namespace.is_some() && !n.names_complete);
    if relist {
        // Names may have changed, and mailboxes come or gone under a
        // message-event filter.
        n.names.mark_seen();
        match listing(&access).await {
            Ok(rows) => {
                out.extend(namespace_changes(n, &access, &rows).await);
                if rewatch(n, &access, &rows).await.is_err() {
                    state.notify = None;
                    out.push(StatusResponse::untagged(
                        StatusKind::Ok,
                        Some(Code::NotificationOverflow),
                        "too many mailboxes to watch, NOTIFY turned off",
                    ));
                    return out;
                }
            }
            Err(e) => tracing::warn!(error = %e, "NOTIFY could not list mailboxes"),
        }
    }
    if after == After::Recheck && !n.watched.is_empty() {
        // A client's poll reports every change acknowledged anywhere before
        // it, even one whose notification from another frontend is still on
        // its way (as NOOP does for the selected mailbox): one call for
        // every watched mailbox.
        let mailboxes: Vec<Arc<dyn Mailbox>> = n
            .watched
            .values()
            .map(|w| w.handle.mailbox().clone())
            .collect();
        if let Err(e) = access.storage().poll_changes(&mailboxes).await {
            tracing::debug!(error = %e, "NOTIFY could not poll the watched mailboxes");
        }
    }
    let items = status_items(condstore);
    let mut gone = Vec::new();
    for (name, w) in &mut n.watched {
        let now = w.watch.current();
        if now == w.seen {
            continue;
        }
        w.seen = now;
        let status = match access.status(name).await {
            Ok(s) => s,
            Err(_) => {
                gone.push(name.clone());
                continue;
            }
        };
        let tell = worth_telling(&w.last, &status, w.mask);
        w.last = status;
        if tell && selected.as_deref() != Some(name.as_str()) {
            out.push(status_data(name, &w.last, &items, append_limit));
        }
    }
    if !gone.is_empty() {
        n.watched.retain(|name, _| !gone.contains(name));
        n.epoch = n.epoch.wrapping_add(1);
    }
    out
}

/// The names of `rows` with their ids: a name of `before` keeps the id it
/// had, a watched mailbox gives the one of its last STATUS, and another
/// name is asked with one STATUS when its group asks for MailboxName or
/// `every_new` (a name was gone: a name come may be its new one). A
/// mailbox the user may list but not read, or gone meanwhile, has none.
async fn known(
    n: &NotifyState,
    access: &MailAccess,
    rows: &[ListEntry],
    before: &BTreeMap<String, Known>,
    every_new: bool,
) -> BTreeMap<String, Known> {
    let mut out = BTreeMap::new();
    for e in rows {
        let id = match (before.get(&e.name), n.watched.get(&e.name)) {
            (Some(k), w) => k.id.or(w.map(|w| w.last.mailbox_id)),
            (None, Some(w)) => Some(w.last.mailbox_id),
            (None, None)
                if every_new || mask_for(&n.groups, access, &e.name, e.subscribed).name =>
            {
                access.status(&e.name).await.ok().map(|s| s.mailbox_id)
            }
            (None, None) => None,
        };
        out.insert(
            e.name.clone(),
            Known {
                subscribed: e.subscribed,
                id,
            },
        );
    }
    out
}

/// LIST responses for what changed in the namespace since the last look,
/// which then becomes `rows`.
async fn namespace_changes(
    n: &mut NotifyState,
    access: &MailAccess,
    rows: &[ListEntry],
) -> Vec<Response> {
    let Some(old) = n.namespace.take() else {
        return Vec::new();
    };
    let gone = old.len() > rows.iter().filter(|e| old.contains_key(&e.name)).count();
    let new = known(n, access, rows, &old, gone).await;
    let entries: HashMap<&str, &ListEntry> = rows.iter().map(|e| (e.name.as_str(), e)).collect();
    let mut removed: Vec<&String> = old.keys().filter(|k| !new.contains_key(*k)).collect();
    let mut added: Vec<&String> = new.keys().filter(|k| !old.contains_key(*k)).collect();
    let mut out = Vec::new();
    let list = |e: &ListEntry| Data::List {
        kind: ListKind::List,
        attributes: attributes(e, Flavour::Extended, true),
        delimiter: Some(DELIMITER),
        name: e.name.clone(),
        child_info: Vec::new(),
    };
    let subscribed =
        |m: &BTreeMap<String, Known>, name: &str| m.get(name).is_some_and(|k| k.subscribed);
    // Renames: a name gone and a name come with the same MAILBOXID.
    if !removed.is_empty() && !added.is_empty() {
        let ids: HashMap<MailboxId, &String> = added
            .iter()
            .filter_map(|a| Some((new.get(a.as_str())?.id?, *a)))
            .collect();
        let renamed: Vec<(String, String)> = removed
            .iter()
            .filter_map(|r| {
                let to = ids.get(&old.get(r.as_str())?.id?)?;
                Some(((*r).clone(), (*to).clone()))
            })
            .collect();
        for (from, to) in &renamed {
            removed.retain(|r| *r != from);
            added.retain(|a| *a != to);
            let told = mask_for(&n.groups, access, from, subscribed(&old, from)).name
                || mask_for(&n.groups, access, to, subscribed(&new, to)).name;
            if let (true, Some(e)) = (told, entries.get(to.as_str())) {
                out.push(Response::Data(Data::ListRenamed {
                    attributes: attributes(e, Flavour::Extended, true),
                    delimiter: Some(DELIMITER),
                    name: to.clone(),
                    old_name: from.clone(),
                }));
            }
        }
    }
    for r in removed {
        if mask_for(&n.groups, access, r, subscribed(&old, r)).name {
            out.push(Response::Data(Data::List {
                kind: ListKind::List,
                attributes: vec!["\\NonExistent".to_owned()],
                delimiter: Some(DELIMITER),
                name: r.clone(),
                child_info: Vec::new(),
            }));
        }
    }
    for a in added {
        if let Some(e) = entries.get(a.as_str())
            && mask_for(&n.groups, access, a, e.subscribed).name
        {
            out.push(Response::Data(list(e)));
        }
    }
    for (name, now) in &new {
        if let Some(was) = old.get(name)
            && was.subscribed != now.subscribed
            && let Some(e) = entries.get(name.as_str())
        {
            let m = mask_for(&n.groups, access, name, now.subscribed || was.subscribed);
            if m.subscription {
                out.push(Response::Data(list(e)));
            }
        }
    }
    n.namespace = Some(new);
    out
}

/// The selected mailbox's updates (as [`crate::session::op::sync_updates`]),
/// followed, when a `selected` group asked for `MessageNew (fetch-att)`, by
/// a FETCH of those items for each new message.
pub(crate) async fn sync_selected(
    state: &mut State,
    allow_expunge: bool,
    uid_command: bool,
) -> Vec<Response> {
    let before: Option<Uid> = state
        .selected
        .as_ref()
        .and_then(|s| s.uids().last().copied());
    let mut out = crate::session::op::sync_updates(state, allow_expunge, uid_command).await;
    let atts = match state.notify.as_ref() {
        Some(n) if !n.selected_atts.is_empty() => n.selected_atts.clone(),
        _ => return out,
    };
    let Some(sel) = state.selected.as_ref() else {
        return out;
    };
    let new: Vec<Uid> = sel
        .uids()
        .iter()
        .copied()
        .filter(|u| before.is_none_or(|b| *u > b))
        .collect();
    let (Some(first), Some(last)) = (new.first(), new.last()) else {
        return out;
    };
    let set = SeqSet::range(first.0, last.0);
    let mut reply =
        crate::session::op::fetch::handle(state, "*", true, &set, atts, None, false).await;
    reply.drain_tail().await;
    out.extend(
        reply
            .responses
            .into_iter()
            .filter(|r| !matches!(r, Response::Status(s) if s.tag.is_some())),
    );
    out
}
