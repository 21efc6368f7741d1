//! Archive journaling: a per-domain archive account that receives a copy of
//! every message an archived user receives or sends.
//!
//! # Names
//!
//! - The archive of domain `D` is the account **`archive@D`**
//!   ([`archive_account`]); the local part `archive` is reserved in every
//!   domain: nobody logs in as it, and even a principal of that name gets
//!   only the rights below.
//! - The journal address of user `u@D` is **`journal+u@D`** ([`JOURNAL_LOCALPART`]),
//!   for Postfix's `sender_bcc_maps` (`/^(.*)@(.*)$/ journal+${1}@${2}`): a
//!   message delivered to it is archived as sent by `u@D` and filed nowhere else.
//! - What is archived: deliveries to the user (`in`); APPEND, COPY and MOVE
//!   into the user's mailboxes by anyone else (`in`); the user's own APPEND,
//!   COPY and MOVE into their `\\Sent` mailbox, and the journal address (`out`).
//! - Archived messages go to `u/YYYY-MM/in` and `u/YYYY-MM/out` of the
//!   archive account (`u` the local part, the month in UTC of the moment of
//!   archiving).
//!
//! # Settings, stored through the store
//!
//! The per-user flag, the domain's billing flag and the billing notices
//! sent are ACL entries on the archive account's `INBOX` whose identifiers
//! start with `$` (`$archived:u@D`, `$billing`, `$noticed:u@D`): identifiers
//! that are never a principal, so they grant nothing
//! ([`crate::Acl::rights_of`]) and are never shared-mailbox candidates. Kept
//! there, they are durable and replicated with the store by every backend,
//! without a second file to keep consistent with it. A retention override
//! on an archive mailbox is the entry `$override` on that mailbox.
//!
//! # Rights
//!
//! On a mailbox of `archive@D` ([`archive_rights`]): the admins of `D`
//! (and server admins) hold `l` and `r`; nobody, domain admins included,
//! holds `w`, `s`, `t`, `e`, `x`, `i`, `k` or `a`. While a server admin's
//! override is in force on a named archive mailbox, the same admins also
//! hold `t`, `e` and `x` (and `w`) on it, for retention deletion; every
//! expunge under an override is logged with who did it.
//!
//! # Ordering rule (delivery, APPEND, COPY and MOVE)
//!
//! 1. The archive copy is written first (no quota; skipped when the same
//!    message is there already, by GUID or Message-ID, so a retry never
//!    doubles it). If that write fails, nothing is filed for the user and
//!    the delivery fails temporarily (LMTP `451`), so the MTA retries.
//! 2. Then the user's copy is filed under the user's quota.
//! 3. If the user's copy is refused (over quota `452`, or any error), the
//!    archive copy made in step 1 is expunged again: nothing is archived
//!    for a message the user did not get. Only once the user's copy is
//!    durable is the billing event sent.
//!
//! A message to several archived users is archived once per user (each
//! user's folder holds its own copy): copies keep each user's folder
//! self-contained, and a per-user retention deletion can never remove
//! another user's archived mail.
//!
//! ```
//! use mailroom_core::archive::{archive_account, journal_user, month_folder, Direction};
//! assert_eq!(archive_account("x.org"), "archive@x.org");
//! assert_eq!(journal_user("journal@x.org", Some("alice")).as_deref(), Some("alice@x.org"));
//! assert_eq!(month_folder("alice@x.org", 1_796_083_200, Direction::Out).unwrap().as_str(), "alice/2026-12/out");
//! ```

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::acl::{Principal, Right, Rights, domain_of};
use crate::delivery::{DeliveryContext, DeliveryOutcome, DeliveryStep, StepOutcome};
use crate::error::{Error, Result};
use crate::flags::{Flag, StoreOp};
use crate::mailbox::{MailboxName, MailboxRef};
use crate::message::{InternalDate, NewMessage};
use crate::mime::MessageSummary;
use crate::storage::Storage;
use crate::types::Uid;

/// The reserved local part of every domain's archive account.
pub const ARCHIVE_LOCALPART: &str = "archive";

/// The local part of the journal address (`journal+USER@DOMAIN`).
pub const JOURNAL_LOCALPART: &str = "journal";

/// The ACL identifier that marks a retention override on an archive mailbox.
pub const OVERRIDE_IDENTIFIER: &str = "$override";

/// How many of a folder's newest messages an archive write compares
/// Message-IDs with (GUIDs are compared with all of them). A duplicate
/// arrives soon after its twin (the MTA's retry, the journal copy of a
/// message also saved to `\\Sent`), so the newest are where it is found.
pub const MAX_MESSAGE_ID_SCAN: usize = 2000;

const ENABLED_PREFIX: &str = "$archived:";
/// The override's reason rides along as the ACL identifier `$why:REASON`,
/// REASON with every byte outside `!`..`~` (and `%`) written `%XX`.
const WHY_PREFIX: &str = "$why:";

fn encode_reason(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    for &b in reason.as_bytes() {
        if b.is_ascii_graphic() && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode_reason(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
const NOTICED_PREFIX: &str = "$noticed:";
const BILLING_IDENTIFIER: &str = "$billing";

/// The archive account of `domain`.
pub fn archive_account(domain: &str) -> String {
    format!("{ARCHIVE_LOCALPART}@{}", domain.to_ascii_lowercase())
}

/// The domain whose archive account `owner` is, if it is one.
pub fn archive_domain(owner: &str) -> Option<&str> {
    let (local, domain) = owner.rsplit_once('@')?;
    (local.eq_ignore_ascii_case(ARCHIVE_LOCALPART) && !domain.is_empty()).then_some(domain)
}

/// The archived user a delivery to `journal+detail@D` stands for (`user`
/// is the recipient as LMTP resolved it: `journal@D`, with the detail).
pub fn journal_user(user: &str, detail: Option<&str>) -> Option<String> {
    let (local, domain) = user.rsplit_once('@')?;
    let detail = detail.filter(|d| !d.is_empty() && !d.contains(['@', '/']))?;
    (local.eq_ignore_ascii_case(JOURNAL_LOCALPART) && !domain.is_empty())
        .then(|| format!("{detail}@{domain}"))
}

/// Which way a message went, from the archived user's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Received (delivered, or APPENDed by someone else).
    In,
    /// Sent (APPEND to `\Sent`, or the journal address).
    Out,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// The civil date (year, month 1 to 12) of a Unix timestamp, UTC.
pub fn year_month(timestamp: i64) -> (i64, u32) {
    // Howard Hinnant's days-to-civil algorithm.
    let z = timestamp.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, u32::try_from(month).unwrap_or(1))
}

/// The archive folder of `user` for the month of `timestamp` (UTC).
pub fn month_folder(user: &str, timestamp: i64, direction: Direction) -> Result<MailboxName> {
    let (local, _) = user
        .rsplit_once('@')
        .ok_or(Error::InvalidInput("archived user needs a domain"))?;
    if local.is_empty() || local.contains('/') {
        return Err(Error::InvalidInput(
            "archived user has an unusable local part",
        ));
    }
    let (y, m) = year_month(timestamp);
    MailboxName::new(&format!("{local}/{y:04}-{m:02}/{}", direction.as_str()))
}

/// The rights `principal` holds on a mailbox of the archive of `domain`
/// (see the module docs); `override_in_force` says whether the mailbox
/// carries a server admin's override.
pub fn archive_rights(principal: &Principal, domain: &str, override_in_force: bool) -> Rights {
    if !principal.administers_domain(domain) {
        return Rights::none();
    }
    let mut rights = Rights::none();
    rights.insert(Right::Lookup);
    rights.insert(Right::Read);
    if override_in_force {
        for r in [
            Right::Write,
            Right::DeleteMessage,
            Right::Expunge,
            Right::DeleteMailbox,
        ] {
            rights.insert(r);
        }
    }
    rights
}

/// One archive event, for billing ([`ArchiveEventSink`]). The id is the
/// same whenever the same event is sent again, so a sink records it once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveEvent {
    /// Idempotency key, printable ASCII.
    pub id: String,
    /// Seconds since the epoch, UTC.
    pub at_unix: i64,
    /// The business (domain), lower case.
    pub domain: String,
    /// The archived user.
    pub user: String,
    /// What happened.
    pub kind: ArchiveEventKind,
}

/// What an [`ArchiveEvent`] records.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArchiveEventKind {
    /// Archiving was switched on for the user.
    Enabled,
    /// Archiving was switched off for the user.
    Disabled,
    /// A message of `size` bytes was archived for the user.
    MessageArchived {
        /// Bytes.
        size: u64,
    },
    /// Messages were expunged from an archive mailbox under an override.
    OverrideUsed {
        /// The archive mailbox (name inside the archive account).
        mailbox: String,
        /// The reason the override was granted with.
        reason: String,
        /// Bytes removed.
        removed_bytes: u64,
    },
}

/// Receives archive events (mailroomd hands them to the billing plugin).
/// Recording must be idempotent by [`ArchiveEvent::id`].
#[async_trait]
pub trait ArchiveEventSink: Send + Sync + Debug {
    /// Records one event durably.
    async fn record(&self, event: &ArchiveEvent) -> Result<()>;
}

/// A message written to the archive, as [`ArchiveJournal::journal`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedCopy {
    /// The archived user.
    pub user: String,
    /// The archive mailbox it is in.
    pub mailbox: MailboxRef,
    /// Its UID there.
    pub uid: Uid,
    /// Bytes.
    pub size: u64,
    /// Whether this call wrote it (`false`: it was there already).
    pub created: bool,
}

/// The archive journal over a store: settings, copies, overrides, events.
#[derive(Debug)]
pub struct ArchiveJournal {
    storage: Arc<dyn Storage>,
    events: Option<Arc<dyn ArchiveEventSink>>,
    // Serializes the check-then-append of archive writes, so two
    // deliveries of one message cannot both miss the other's copy.
    write_lock: tokio::sync::Mutex<()>,
}

impl ArchiveJournal {
    /// A journal writing into `storage` (the store without any journaling
    /// wrapper), sending no events.
    pub fn new(storage: Arc<dyn Storage>) -> ArchiveJournal {
        ArchiveJournal {
            storage,
            events: None,
            write_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Sends events to `sink` too.
    pub fn with_events(mut self, sink: Arc<dyn ArchiveEventSink>) -> ArchiveJournal {
        self.events = Some(sink);
        self
    }

    fn settings_mailbox(domain: &str) -> MailboxRef {
        MailboxRef::new(archive_account(domain), MailboxName::inbox())
    }

    fn user_domain(user: &str) -> Result<String> {
        domain_of(user)
            .map(str::to_ascii_lowercase)
            .ok_or(Error::InvalidInput("archived user needs a domain"))
    }

    async fn settings(&self, domain: &str) -> Result<Vec<(String, Rights)>> {
        match self.storage.acl(&Self::settings_mailbox(domain)).await {
            Ok(acl) => Ok(acl.entries),
            Err(Error::NoSuchMailbox(_)) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    async fn set_setting(&self, domain: &str, identifier: &str, on: bool) -> Result<()> {
        let account = archive_account(domain);
        self.storage.ensure_account(&account).await?;
        self.storage
            .set_acl(
                &Self::settings_mailbox(domain),
                identifier,
                on.then(|| Rights::parse("l").unwrap_or_default()),
            )
            .await
    }

    async fn has_setting(&self, domain: &str, identifier: &str) -> Result<bool> {
        Ok(self
            .settings(domain)
            .await?
            .iter()
            .any(|(id, _)| id == identifier))
    }

    /// Whether archiving is on for `user`.
    pub async fn is_enabled(&self, user: &str) -> Result<bool> {
        let Ok(domain) = Self::user_domain(user) else {
            return Ok(false);
        };
        if archive_domain(user).is_some() {
            return Ok(false);
        }
        self.has_setting(&domain, &format!("{ENABLED_PREFIX}{user}"))
            .await
    }

    /// The users of `domain` with archiving on.
    pub async fn enabled_users(&self, domain: &str) -> Result<Vec<String>> {
        let mut users: Vec<String> = self
            .settings(domain)
            .await?
            .into_iter()
            .filter_map(|(id, _)| id.strip_prefix(ENABLED_PREFIX).map(str::to_owned))
            .collect();
        users.sort();
        Ok(users)
    }

    /// Switches archiving on or off for `user`, as `actor` (who must
    /// administer the user's domain). Returns whether anything changed.
    /// The billing event is sent on a change, with an id made of the user
    /// and the time, so a repeated command sends nothing twice.
    pub async fn set_enabled(&self, actor: &Principal, user: &str, on: bool) -> Result<bool> {
        let domain = Self::user_domain(user)?;
        if !actor.administers_user(user) {
            return Err(Error::PermissionDenied(Right::Administer));
        }
        if archive_domain(user).is_some() || journal_user(user, Some("x")).is_some() {
            return Err(Error::Cannot(
                "the archive and journal accounts are not archived",
            ));
        }
        if self.is_enabled(user).await? == on {
            return Ok(false);
        }
        // The event first, then the flag: if the event cannot be recorded
        // the flag stays as it was and the command fails (the admin runs it
        // again); if the process dies between the two, the command failed
        // and its re-run records the event again (a repeated enable or
        // disable counts once in the ledger) and sets the flag.
        let at = InternalDate::now().timestamp;
        let (kind, tag) = if on {
            (ArchiveEventKind::Enabled, "enabled")
        } else {
            (ArchiveEventKind::Disabled, "disabled")
        };
        if let Some(sink) = &self.events {
            sink.record(&ArchiveEvent {
                id: format!("{tag}:{user}:{at}"),
                at_unix: at,
                domain: domain.clone(),
                user: user.to_owned(),
                kind,
            })
            .await?;
        }
        self.set_setting(&domain, &format!("{ENABLED_PREFIX}{user}"), on)
            .await?;
        tracing::info!(actor = %actor.user, user = %user, enabled = on, "archive setting changed");
        Ok(true)
    }

    /// Whether billing is switched on for `domain`.
    pub async fn billing_enabled(&self, domain: &str) -> Result<bool> {
        self.has_setting(&domain.to_ascii_lowercase(), BILLING_IDENTIFIER)
            .await
    }

    /// Switches billing on or off for `domain` (server admins only).
    /// Returns whether anything changed.
    pub async fn set_billing(&self, actor: &Principal, domain: &str, on: bool) -> Result<bool> {
        if !actor.roles.server_admin {
            return Err(Error::PermissionDenied(Right::Administer));
        }
        let domain = domain.to_ascii_lowercase();
        if self.billing_enabled(&domain).await? == on {
            return Ok(false);
        }
        self.set_setting(&domain, BILLING_IDENTIFIER, on).await?;
        tracing::info!(actor = %actor.user, domain = %domain, enabled = on, "billing setting changed");
        Ok(true)
    }

    /// Whether the billing notice was recorded as sent to `user`.
    pub async fn notice_sent(&self, user: &str) -> Result<bool> {
        let domain = Self::user_domain(user)?;
        self.has_setting(&domain, &format!("{NOTICED_PREFIX}{user}"))
            .await
    }

    /// Records that the billing notice was sent to `user`.
    pub async fn mark_notice_sent(&self, user: &str) -> Result<()> {
        let domain = Self::user_domain(user)?;
        self.set_setting(&domain, &format!("{NOTICED_PREFIX}{user}"), true)
            .await
    }

    async fn emit(&self, event: ArchiveEvent) {
        if let Some(sink) = &self.events
            && let Err(e) = sink.record(&event).await
        {
            // The ledger is idempotent by id; the event is logged so an
            // operator can replay it.
            tracing::error!(id = %event.id, error = %e, "archive event not recorded");
        }
    }

    async fn ensure_folder(&self, mailbox: &MailboxRef) -> Result<()> {
        let existing = self.storage.list(&mailbox.owner).await?;
        let mut wanted = mailbox.name.ancestors();
        wanted.push(mailbox.name.clone());
        for name in wanted {
            if !existing.iter().any(|m| m.name == name) {
                match self
                    .storage
                    .create(&MailboxRef::new(mailbox.owner.clone(), name), None)
                    .await
                {
                    Ok(()) | Err(Error::MailboxExists(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Copies `content` into the archive of `user` (if archiving is on for
    /// them) in `direction`, unless the folder holds the same message
    /// already (same GUID, or same Message-ID among its newest
    /// [`MAX_MESSAGE_ID_SCAN`] messages). `None` when archiving is
    /// off. The caller files the user's copy next and then calls
    /// [`ArchiveJournal::confirm`] or [`ArchiveJournal::abandon`].
    pub async fn journal(
        &self,
        user: &str,
        direction: Direction,
        content: &Bytes,
    ) -> Result<Option<ArchivedCopy>> {
        if !self.is_enabled(user).await? {
            return Ok(None);
        }
        let domain = Self::user_domain(user)?;
        let account = archive_account(&domain);
        let now = InternalDate::now();
        let mailbox = MailboxRef::new(
            account.clone(),
            month_folder(user, now.timestamp, direction)?,
        );
        let _guard = self.write_lock.lock().await;
        self.storage.ensure_account(&account).await?;
        self.ensure_folder(&mailbox).await?;
        let size = content.len() as u64;
        if let Some(uid) = self.find_same(&mailbox, content).await? {
            return Ok(Some(ArchivedCopy {
                user: user.to_owned(),
                mailbox,
                uid,
                size,
                created: false,
            }));
        }
        let appended = self
            .storage
            .append(
                &mailbox,
                NewMessage {
                    flags: Default::default(),
                    internal_date: Some(now),
                    content: content.clone(),
                },
            )
            .await?;
        Ok(Some(ArchivedCopy {
            user: user.to_owned(),
            mailbox,
            uid: appended.uid,
            size,
            created: true,
        }))
    }

    /// The UID of a message in `mailbox` with the same GUID or Message-ID.
    async fn find_same(&self, mailbox: &MailboxRef, content: &Bytes) -> Result<Option<Uid>> {
        let guid = crate::guid::MessageGuid::of(content);
        let message_id = MessageSummary::parse(content).envelope.message_id;
        let open = self.storage.open(mailbox, &mailbox.owner).await?;
        let snapshot = open.snapshot().await?;
        if let Some(m) = snapshot.messages.iter().find(|m| m.guid == guid) {
            return Ok(Some(m.uid));
        }
        let Some(message_id) = message_id.filter(|id| !id.is_empty()) else {
            return Ok(None);
        };
        // Message-IDs are compared among the newest messages only, so the
        // cost of an archive write stays bounded however full the month is.
        let uids: Vec<Uid> = snapshot
            .messages
            .iter()
            .rev()
            .take(MAX_MESSAGE_ID_SCAN)
            .map(|m| m.uid)
            .collect();
        for chunk in uids.chunks(256) {
            for (uid, summary) in open.summaries(chunk).await? {
                if summary.envelope.message_id.as_deref() == Some(message_id.as_slice()) {
                    return Ok(Some(uid));
                }
            }
        }
        Ok(None)
    }

    /// The user's copy was filed: the archive copy stays; the billing
    /// event goes out (its id names the archive mailbox and UID, so a
    /// retried delivery that found the copy there sends the same id).
    pub async fn confirm(&self, copy: &ArchivedCopy) {
        let Ok(domain) = Self::user_domain(&copy.user) else {
            return;
        };
        let uid_validity = match self
            .storage
            .status(&copy.mailbox, &copy.mailbox.owner)
            .await
        {
            Ok(s) => s.uid_validity.0,
            Err(_) => 0,
        };
        self.emit(ArchiveEvent {
            id: format!(
                "archived:{}:{}:{}:{}",
                copy.mailbox.owner, copy.mailbox.name, uid_validity, copy.uid.0
            ),
            at_unix: InternalDate::now().timestamp,
            domain,
            user: copy.user.clone(),
            kind: ArchiveEventKind::MessageArchived { size: copy.size },
        })
        .await;
    }

    /// The user's copy was not filed: the archive copy this write made is
    /// expunged again (one it found already there stays).
    pub async fn abandon(&self, copy: &ArchivedCopy) -> Result<()> {
        if !copy.created {
            return Ok(());
        }
        let open = self
            .storage
            .open(&copy.mailbox, &copy.mailbox.owner)
            .await?;
        open.store(
            &[copy.uid],
            &StoreOp::Add([Flag::Deleted].into_iter().collect()),
            None,
        )
        .await?;
        open.expunge(Some(&[copy.uid])).await?;
        Ok(())
    }

    /// Grants (or with `reason: None` revokes) the retention override on
    /// an archive mailbox. Server admins only; logged with who and why.
    pub async fn set_override(
        &self,
        actor: &Principal,
        mailbox: &MailboxRef,
        reason: Option<&str>,
    ) -> Result<()> {
        if !actor.roles.server_admin {
            return Err(Error::PermissionDenied(Right::Administer));
        }
        if archive_domain(&mailbox.owner).is_none() {
            return Err(Error::Cannot("not an archive mailbox"));
        }
        if let Some(r) = reason
            && (r.trim().is_empty() || r.len() > 1024 || r.chars().any(char::is_control))
        {
            return Err(Error::InvalidInput(
                "a reason of 1 to 1024 printable bytes is required",
            ));
        }
        let rights = reason.map(|_| Rights::parse("wtex").unwrap_or_default());
        self.storage
            .set_acl(mailbox, OVERRIDE_IDENTIFIER, rights)
            .await?;
        match reason {
            Some(reason) => tracing::warn!(
                target: "mailroom::archive::audit",
                actor = %actor.user, owner = %mailbox.owner, mailbox = %mailbox.name,
                reason = %reason, "archive override granted"
            ),
            None => tracing::warn!(
                target: "mailroom::archive::audit",
                actor = %actor.user, owner = %mailbox.owner, mailbox = %mailbox.name,
                "archive override revoked"
            ),
        }
        if let Some(reason) = reason {
            self.storage
                .set_acl(
                    mailbox,
                    &format!("{WHY_PREFIX}{}", encode_reason(reason)),
                    Some(Rights::parse("l").unwrap_or_default()),
                )
                .await?;
        } else {
            let acl = self.storage.acl(mailbox).await?;
            for (id, _) in acl
                .entries
                .iter()
                .filter(|(id, _)| id.starts_with(WHY_PREFIX))
            {
                self.storage.set_acl(mailbox, id, None).await?;
            }
        }
        Ok(())
    }

    /// Logs and bills a retention deletion done under an override.
    pub async fn record_override_use(
        &self,
        actor: &Principal,
        mailbox: &MailboxRef,
        expunged: usize,
        removed_bytes: u64,
    ) {
        let reason = match self.storage.acl(mailbox).await {
            Ok(acl) => acl
                .entries
                .iter()
                .find_map(|(id, _)| id.strip_prefix(WHY_PREFIX).map(decode_reason))
                .unwrap_or_default(),
            Err(_) => String::new(),
        };
        tracing::warn!(
            target: "mailroom::archive::audit",
            actor = %actor.user, owner = %mailbox.owner, mailbox = %mailbox.name,
            expunged, removed_bytes, reason = %reason, "archive retention deletion under override"
        );
        let Some(domain) = archive_domain(&mailbox.owner) else {
            return;
        };
        let local = mailbox.name.as_str().split('/').next().unwrap_or_default();
        let at = InternalDate::now().timestamp;
        self.emit(ArchiveEvent {
            id: format!(
                "override:{}:{}:{at}:{expunged}",
                mailbox.owner, mailbox.name
            ),
            at_unix: at,
            domain: domain.to_ascii_lowercase(),
            user: format!("{local}@{}", domain.to_ascii_lowercase()),
            kind: ArchiveEventKind::OverrideUsed {
                mailbox: mailbox.name.to_string(),
                reason,
                removed_bytes,
            },
        })
        .await;
    }
}

/// The journal's delivery step: put it after [`crate::delivery::QuotaCheck`]
/// and before [`crate::delivery::FileInto`] (see the ordering rule in the
/// module docs). A recipient `journal+u@D` is archived as sent by `u@D`
/// and ends here; any other archived recipient gets an `in` copy first.
#[derive(Debug, Clone)]
pub struct ArchiveStep {
    journal: Arc<ArchiveJournal>,
}

impl ArchiveStep {
    /// The step over `journal`.
    pub fn new(journal: Arc<ArchiveJournal>) -> ArchiveStep {
        ArchiveStep { journal }
    }
}

#[async_trait]
impl DeliveryStep for ArchiveStep {
    async fn run(&self, ctx: &mut DeliveryContext) -> Result<StepOutcome> {
        if let Some(user) = journal_user(&ctx.recipient.user, ctx.recipient.detail.as_deref()) {
            return match self
                .journal
                .journal(&user, Direction::Out, &ctx.message)
                .await?
            {
                Some(copy) => {
                    self.journal.confirm(&copy).await;
                    Ok(StepOutcome::Done(DeliveryOutcome::Delivered {
                        mailbox: copy.mailbox.name,
                        uid: copy.uid,
                    }))
                }
                None => {
                    tracing::info!(user = %user, "journal copy for a user without archiving: dropped");
                    Ok(StepOutcome::Done(DeliveryOutcome::Delivered {
                        mailbox: MailboxName::inbox(),
                        uid: Uid(0),
                    }))
                }
            };
        }
        if archive_domain(&ctx.recipient.user).is_some() {
            return Ok(StepOutcome::Done(DeliveryOutcome::PermanentFailure(
                Error::Cannot("the archive account takes no mail"),
            )));
        }
        ctx.archived = self
            .journal
            .journal(&ctx.recipient.user, Direction::In, &ctx.message)
            .await?;
        Ok(StepOutcome::Continue)
    }

    async fn finish(&self, ctx: &DeliveryContext, delivered: bool) {
        let Some(copy) = &ctx.archived else {
            return;
        };
        if delivered {
            self.journal.confirm(copy).await;
        } else if let Err(e) = self.journal.abandon(copy).await {
            tracing::error!(user = %copy.user, mailbox = %copy.mailbox.name, uid = copy.uid.0, error = %e,
                "archive copy of a refused delivery could not be removed");
        }
    }
}

/// A store with an archive journal: every call goes to the wrapped store
/// unchanged; [`Storage::archive_journal`] hands out the journal, so every
/// [`crate::access::MailAccess`] made over this store (by any protocol)
/// journals APPENDs and applies the archive's rights.
#[derive(Debug, Clone)]
pub struct JournaledStorage {
    inner: Arc<dyn Storage>,
    journal: Arc<ArchiveJournal>,
}

impl JournaledStorage {
    /// `inner` with `journal` (which writes into `inner` itself).
    pub fn new(inner: Arc<dyn Storage>, journal: Arc<ArchiveJournal>) -> JournaledStorage {
        JournaledStorage { inner, journal }
    }
}

#[async_trait]
impl crate::storage::Delegate for JournaledStorage {
    fn inner(&self) -> &dyn Storage {
        &*self.inner
    }
    fn archive_journal(&self) -> Option<Arc<ArchiveJournal>> {
        Some(self.journal.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_months() {
        assert_eq!(year_month(0), (1970, 1));
        assert_eq!(year_month(1_796_083_200), (2026, 12));
        assert_eq!(year_month(1_798_761_599), (2026, 12));
        assert_eq!(year_month(1_798_761_600), (2027, 1));
        assert_eq!(year_month(951_782_400), (2000, 2)); // 2000-02-29
        assert_eq!(year_month(-1), (1969, 12));
    }

    #[test]
    fn reasons_round_trip() {
        for r in ["retention 7y", "a_b c%d", "légal hold", "%zz"] {
            let e = encode_reason(r);
            assert!(e.bytes().all(|b| b.is_ascii_graphic()), "{e}");
            assert_eq!(decode_reason(&e), r);
        }
    }

    #[test]
    fn names() {
        assert_eq!(archive_domain("archive@x.org"), Some("x.org"));
        assert_eq!(archive_domain("Archive@x.org"), Some("x.org"));
        assert_eq!(archive_domain("alice@x.org"), None);
        assert_eq!(archive_domain("archive"), None);
        assert_eq!(journal_user("journal@x.org", None), None);
        assert_eq!(journal_user("journal@x.org", Some("a/b")), None);
        assert_eq!(journal_user("alice@x.org", Some("bob")), None);
        assert!(month_folder("x", 0, Direction::In).is_err());
        assert!(month_folder("a/b@x", 0, Direction::In).is_err());
    }

    #[test]
    fn rights_of_the_archive() {
        let mut admin = Principal::user("boss@x.org");
        admin.roles.domain_admin = true;
        assert_eq!(archive_rights(&admin, "x.org", false).to_string(), "lr");
        assert_eq!(archive_rights(&admin, "x.org", true).to_string(), "lrwxte");
        assert!(archive_rights(&admin, "y.org", true).is_empty());
        assert!(archive_rights(&Principal::user("alice@x.org"), "x.org", true).is_empty());
        assert!(archive_rights(&Principal::user("archive@x.org"), "x.org", false).is_empty());
    }
}
