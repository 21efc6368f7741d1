//! `MailAccess`: the one layer every protocol goes through to reach a store.
//!
//! It resolves client-visible names to [`MailboxRef`]s, enforces RFC 4314
//! rights and quotas, and keeps hierarchy rules (parents created on demand,
//! subtrees renamed together), so IMAP, POP3 and LMTP cannot disagree on
//! who may do what.
//!
//! ```
//! # use std::sync::Arc;
//! # use mailroom_core::{access::MailAccess, Principal};
//! # fn demo(storage: Arc<dyn mailroom_core::Storage>) {
//! let access = MailAccess::new(storage, None, Principal::user("alice@example.com"));
//! # let _ = access;
//! # }
//! ```

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use crate::acl::{ANYONE, Acl, Principal, Right, Rights};
use crate::archive::{
    ArchiveJournal, ArchivedCopy, Direction, OVERRIDE_IDENTIFIER, archive_account, archive_domain,
    archive_rights,
};
use crate::error::{Error, Result};
use crate::flags::{Flag, StoreOp};
use crate::mailbox::{DELIMITER, MailboxName, MailboxRef, MailboxStatus, SpecialUse, list_matches};
use crate::message::{Appended, CopyResult, NewMessage, StoreResult};
use crate::quota::{Quota, QuotaLimits, QuotaUsage};
use crate::storage::{Mailbox, Storage};
use crate::types::{ModSeq, Uid};

/// The prefix of the other-users namespace (`Other Users/bob@x.org/INBOX`).
pub const OTHER_USERS_PREFIX: &str = "Other Users";

/// The longest LIST pattern accepted, in bytes.
pub const MAX_PATTERN_LEN: usize = 1024;

/// The most mailboxes of other users one LIST considers (each costs an ACL
/// read); candidates beyond it are left out, with a warning in the log.
pub const MAX_SHARED_MAILBOXES: usize = 1000;

/// Whether an ACL entry's identifier may grant rights to `user`, as
/// [`Acl::rights_of`] evaluates them: the user's own name or `anyone`.
/// (Identifiers core does not interpret, such as negative `-user` entries,
/// grant nothing.) Backends use it to pick
/// [`Storage::shared_mailboxes`] candidates.
///
/// ```
/// use mailroom_core::access::identifier_applies;
/// assert!(identifier_applies("bob@x.org", "bob@x.org"));
/// assert!(identifier_applies("anyone", "bob@x.org"));
/// assert!(!identifier_applies("-bob@x.org", "bob@x.org"));
/// assert!(!identifier_applies("carol@x.org", "bob@x.org"));
/// ```
pub fn identifier_applies(identifier: &str, user: &str) -> bool {
    identifier == user || identifier == ANYONE
}

/// Whether a LIST pattern can match `Other Users` or a name below it
/// (so that shared mailboxes need to be looked up at all).
fn may_reach_other_users(pattern: &str) -> bool {
    let mut p = pattern.bytes();
    let prefix = OTHER_USERS_PREFIX.bytes().chain([DELIMITER as u8]);
    for (i, c) in prefix.enumerate() {
        match p.next() {
            None => return i == OTHER_USERS_PREFIX.len(),
            Some(b'*' | b'%') => return true,
            Some(b) if b == c => {}
            Some(_) => return false,
        }
    }
    true
}

/// One row of a LIST answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// The name as the client sees it.
    pub name: String,
    /// The special use, if any.
    pub special_use: Option<SpecialUse>,
    /// The mailbox does not exist but has children (`\Noselect`/`\NonExistent`).
    pub non_existent: bool,
    /// Whether it has children (`\HasChildren` / `\HasNoChildren`).
    pub has_children: bool,
    /// Whether the user subscribes to it.
    pub subscribed: bool,
}

/// A principal's view of a store.
#[derive(Debug, Clone)]
pub struct MailAccess {
    storage: Arc<dyn Storage>,
    quota: Option<Arc<dyn Quota>>,
    principal: Principal,
    journal: Option<Arc<ArchiveJournal>>,
}

impl MailAccess {
    /// Access to `storage` as `principal`, with quotas enforced if `quota` is given.
    pub fn new(
        storage: Arc<dyn Storage>,
        quota: Option<Arc<dyn Quota>>,
        principal: Principal,
    ) -> MailAccess {
        let journal = storage.archive_journal();
        MailAccess {
            storage,
            quota,
            principal,
            journal,
        }
    }

    /// Who this is.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The store underneath (for operations that need no access check).
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// The quota policy, if any.
    pub fn quota(&self) -> Option<&Arc<dyn Quota>> {
        self.quota.as_ref()
    }

    /// Resolves a client-visible name to a mailbox reference.
    pub fn resolve(&self, name: &str) -> Result<MailboxRef> {
        if let Some(rest) = name
            .strip_prefix(OTHER_USERS_PREFIX)
            .and_then(|r| r.strip_prefix(DELIMITER))
        {
            let (owner, mbox) = rest
                .split_once(DELIMITER)
                .ok_or(Error::InvalidMailboxName("missing mailbox after user name"))?;
            if owner.is_empty() {
                return Err(Error::InvalidMailboxName("empty user name"));
            }
            return Ok(MailboxRef::new(owner, MailboxName::new(mbox)?));
        }
        Ok(MailboxRef::new(
            self.principal.user.clone(),
            MailboxName::new(name)?,
        ))
    }

    fn display_name(&self, mailbox: &MailboxRef) -> String {
        if mailbox.owner == self.principal.user {
            mailbox.name.as_str().to_owned()
        } else {
            format!(
                "{OTHER_USERS_PREFIX}{DELIMITER}{}{DELIMITER}{}",
                mailbox.owner, mailbox.name
            )
        }
    }

    /// The rights the principal holds on a mailbox.
    pub async fn rights(&self, mailbox: &MailboxRef) -> Result<Rights> {
        if mailbox.owner == self.principal.user && archive_domain(&mailbox.owner).is_none() {
            return Ok(Rights::all());
        }
        let acl = self.storage.acl(mailbox).await?;
        Ok(self.rights_given(mailbox, &acl))
    }

    /// The rights on `mailbox` whose ACL is `acl`: the ACL's for ordinary
    /// mailboxes, the fixed archive rights ([`archive_rights`]) for the
    /// mailboxes of an archive account, whatever their ACL says.
    fn rights_given(&self, mailbox: &MailboxRef, acl: &Acl) -> Rights {
        match archive_domain(&mailbox.owner) {
            Some(domain) => {
                let override_in_force = acl.entries.iter().any(|(id, _)| id == OVERRIDE_IDENTIFIER);
                archive_rights(&self.principal, domain, override_in_force)
            }
            None => self.principal.rights_on(&mailbox.owner, acl),
        }
    }

    async fn require(&self, mailbox: &MailboxRef, right: Right) -> Result<Rights> {
        let rights = self.rights(mailbox).await?;
        if rights.contains(right) {
            return Ok(rights);
        }
        // Without `l` the mailbox must look nonexistent (RFC 4314 §4).
        if !rights.contains(Right::Lookup) {
            return Err(Error::NoSuchMailbox(self.display_name(mailbox)));
        }
        Err(Error::PermissionDenied(right))
    }

    async fn exists(&self, mailbox: &MailboxRef) -> Result<bool> {
        Ok(self
            .storage
            .list(&mailbox.owner)
            .await?
            .iter()
            .any(|m| m.name == mailbox.name))
    }

    /// LIST `reference` `pattern` over the principal's personal namespace.
    pub async fn list(&self, reference: &str, pattern: &str) -> Result<Vec<ListEntry>> {
        self.list_filtered(reference, pattern, false).await
    }

    /// LSUB: subscribed mailboxes matching the pattern.
    pub async fn lsub(&self, reference: &str, pattern: &str) -> Result<Vec<ListEntry>> {
        self.list_filtered(reference, pattern, true).await
    }

    /// The client-visible names of the other users' mailboxes the
    /// principal may see: the store's candidates whose ACL gives `l`.
    async fn visible_shared(&self) -> Result<Vec<MailboxName>> {
        let user = &self.principal.user;
        let mut candidates = self.storage.shared_mailboxes(user).await?;
        // A domain admin sees its domain's archive (and only that one).
        if self.principal.roles.domain_admin
            && let Some(domain) = self.principal.domain.as_deref()
        {
            let account = archive_account(domain);
            for m in self.storage.list(&account).await? {
                candidates.push(MailboxRef::new(account.clone(), m.name));
            }
        }
        // An owner with the delimiter in its name could not be resolved back
        // from the listed name; such names are never offered.
        candidates
            .retain(|m| m.owner != *user && !m.owner.is_empty() && !m.owner.contains(DELIMITER));
        candidates.sort();
        candidates.dedup();
        if candidates.len() > MAX_SHARED_MAILBOXES {
            tracing::warn!(
                user = %user,
                candidates = candidates.len(),
                limit = MAX_SHARED_MAILBOXES,
                "too many shared mailboxes; LIST shows only the first"
            );
            candidates.truncate(MAX_SHARED_MAILBOXES);
        }
        let mut out = Vec::new();
        for m in candidates {
            let acl = match self.storage.acl(&m).await {
                Ok(acl) => acl,
                // gone since the store proposed it
                Err(Error::NoSuchMailbox(_)) => continue,
                Err(e) => return Err(e),
            };
            if !self.rights_given(&m, &acl).contains(Right::Lookup) {
                continue;
            }
            if let Ok(name) = MailboxName::new(&self.display_name(&m)) {
                out.push(name);
            }
        }
        Ok(out)
    }

    async fn list_filtered(
        &self,
        reference: &str,
        pattern: &str,
        subscribed_only: bool,
    ) -> Result<Vec<ListEntry>> {
        if pattern.len() + reference.len() > MAX_PATTERN_LEN {
            return Err(Error::InvalidInput("pattern too long"));
        }
        let full = format!("{reference}{pattern}");
        let user = &self.principal.user;
        let boxes = self.storage.list(user).await?;
        let subs: HashSet<MailboxName> = self
            .storage
            .subscriptions(user)
            .await?
            .into_iter()
            .collect();
        // Every existing mailbox (the principal's own, and other users'
        // shared with them under `Other Users/<owner>/`) plus every
        // ancestor that does not exist (`Other Users` and
        // `Other Users/<owner>` among them).
        let mut all: BTreeMap<MailboxName, Option<SpecialUse>> = BTreeMap::new();
        let mut existing: HashSet<MailboxName> = HashSet::new();
        for b in &boxes {
            existing.insert(b.name.clone());
            all.insert(b.name.clone(), b.special_use);
        }
        if may_reach_other_users(&full) {
            for name in self.visible_shared().await? {
                // another user's special use is not the principal's
                all.entry(name.clone()).or_insert(None);
                existing.insert(name);
            }
        }
        for name in &existing {
            for a in name.ancestors() {
                all.entry(a).or_insert(None);
            }
        }
        if subscribed_only {
            for s in &subs {
                all.entry(s.clone()).or_insert(None);
            }
        }
        let parents: HashSet<MailboxName> = all.keys().flat_map(MailboxName::ancestors).collect();
        let mut out = Vec::new();
        for (name, special_use) in &all {
            if !list_matches(&full, name.as_str()) {
                continue;
            }
            let subscribed = subs.contains(name);
            if subscribed_only && !subscribed {
                continue;
            }
            out.push(ListEntry {
                name: name.as_str().to_owned(),
                special_use: *special_use,
                non_existent: !existing.contains(name),
                has_children: parents.contains(name),
                subscribed,
            });
        }
        // `%` hides children: LIST "" % must still show a parent whose only
        // existence is through children (handled above by adding ancestors).
        Ok(out)
    }

    /// CREATE, with missing parents created too.
    pub async fn create(&self, name: &str, special_use: Option<SpecialUse>) -> Result<()> {
        let trimmed = name.strip_suffix(DELIMITER).unwrap_or(name);
        let mailbox = self.resolve(trimmed)?;
        if mailbox.name.is_inbox() && mailbox.owner == self.principal.user {
            return Err(Error::MailboxExists(mailbox.name.to_string()));
        }
        if mailbox.owner != self.principal.user {
            let parent = mailbox
                .name
                .parent()
                .ok_or(Error::PermissionDenied(Right::CreateChild))?;
            self.require(
                &MailboxRef::new(mailbox.owner.clone(), parent),
                Right::CreateChild,
            )
            .await?;
        }
        let existing: HashSet<MailboxName> = self
            .storage
            .list(&mailbox.owner)
            .await?
            .into_iter()
            .map(|m| m.name)
            .collect();
        if existing.contains(&mailbox.name) {
            return Err(Error::MailboxExists(self.display_name(&mailbox)));
        }
        for a in mailbox.name.ancestors() {
            if !existing.contains(&a) {
                self.storage
                    .create(&MailboxRef::new(mailbox.owner.clone(), a), None)
                    .await?;
            }
        }
        self.storage.create(&mailbox, special_use).await
    }

    /// DELETE. INBOX cannot be deleted; neither can a mailbox with children
    /// ([`Error::HasChildren`]: delete those first). RFC 9051 §6.3.5 also
    /// allows deleting the messages and keeping the name as `\Noselect`,
    /// which Dovecot does; refusing keeps a DELETE from emptying a mailbox
    /// the client still sees listed.
    pub async fn delete(&self, name: &str) -> Result<()> {
        let mailbox = self.resolve(name)?;
        if mailbox.name.is_inbox() {
            return Err(Error::Cannot("INBOX cannot be deleted"));
        }
        self.require(&mailbox, Right::DeleteMailbox).await?;
        let boxes = self.storage.list(&mailbox.owner).await?;
        if !boxes.iter().any(|m| m.name == mailbox.name) {
            return Err(Error::NoSuchMailbox(self.display_name(&mailbox)));
        }
        if boxes.iter().any(|m| m.name.is_descendant_of(&mailbox.name)) {
            return Err(Error::HasChildren(self.display_name(&mailbox)));
        }
        if archive_domain(&mailbox.owner).is_some() {
            // reachable only under a server admin's override
            tracing::warn!(target: "mailroom::archive::audit", actor = %self.principal.user,
                owner = %mailbox.owner, mailbox = %mailbox.name,
                "archive mailbox deleted under override");
        }
        self.storage.delete(&mailbox).await
    }

    /// RENAME, with the whole subtree. Renaming INBOX moves its messages.
    pub async fn rename(&self, from: &str, to: &str) -> Result<()> {
        let src = self.resolve(from)?;
        let dst = self.resolve(to)?;
        if src.owner != dst.owner {
            return Err(Error::Cannot("cannot rename across users"));
        }
        if dst.name.is_inbox() {
            return Err(Error::MailboxExists("INBOX".into()));
        }
        if dst.name.is_descendant_of(&src.name) {
            return Err(Error::Cannot("cannot rename a mailbox into itself"));
        }
        self.require(&src, Right::DeleteMailbox).await?;
        let boxes = self.storage.list(&src.owner).await?;
        if !boxes.iter().any(|m| m.name == src.name) {
            return Err(Error::NoSuchMailbox(self.display_name(&src)));
        }
        if boxes.iter().any(|m| m.name == dst.name) {
            return Err(Error::MailboxExists(self.display_name(&dst)));
        }
        let existing: HashSet<&MailboxName> = boxes.iter().map(|m| &m.name).collect();
        for a in dst.name.ancestors() {
            if !existing.contains(&a) {
                self.storage
                    .create(&MailboxRef::new(dst.owner.clone(), a), None)
                    .await?;
            }
        }
        self.storage.rename(&src, &dst.name).await?;
        if !src.name.is_inbox() {
            let mut children: Vec<&MailboxName> = boxes
                .iter()
                .map(|m| &m.name)
                .filter(|n| n.is_descendant_of(&src.name))
                .collect();
            children.sort();
            for child in children {
                if let Some(new) = child.rebase(&src.name, &dst.name) {
                    self.storage
                        .rename(&MailboxRef::new(src.owner.clone(), child.clone()), &new)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// SUBSCRIBE / UNSUBSCRIBE. Subscribing to a nonexistent mailbox, or
    /// to another user's mailbox without `l` on it, fails. Subscriptions
    /// are kept under the client-visible name (`Other Users/bob@x.org/INBOX`
    /// for another user's mailbox), as LSUB reports them.
    pub async fn set_subscribed(&self, name: &str, subscribed: bool) -> Result<()> {
        let mailbox = self.resolve(name)?;
        let visible = MailboxName::new(&self.display_name(&mailbox))?;
        if subscribed {
            let missing = || Error::NoSuchMailbox(self.display_name(&mailbox));
            if mailbox.owner != self.principal.user {
                match self.rights(&mailbox).await {
                    Ok(r) if r.contains(Right::Lookup) => {}
                    Ok(_) | Err(Error::NoSuchMailbox(_)) => return Err(missing()),
                    Err(e) => return Err(e),
                }
            }
            if !self.exists(&mailbox).await? {
                return Err(missing());
            }
        }
        self.storage
            .set_subscribed(&self.principal.user, &visible, subscribed)
            .await
    }

    /// STATUS.
    pub async fn status(&self, name: &str) -> Result<MailboxStatus> {
        let mailbox = self.resolve(name)?;
        self.require(&mailbox, Right::Read).await?;
        self.storage.status(&mailbox, &self.principal.user).await
    }

    /// SELECT (`read_only` false) or EXAMINE (true).
    pub async fn select(&self, name: &str, read_only: bool) -> Result<Selected> {
        let mailbox = self.resolve(name)?;
        let rights = self.require(&mailbox, Right::Read).await?;
        let handle = self.storage.open(&mailbox, &self.principal.user).await?;
        Ok(Selected {
            mailbox: handle,
            rights,
            read_only,
            access: self.clone(),
        })
    }

    /// APPEND, with quota and the `i` right checked.
    pub async fn append(&self, name: &str, message: NewMessage) -> Result<Appended> {
        let mailbox = self.resolve(name)?;
        self.require(&mailbox, Right::Insert).await?;
        let mut message = message;
        self.filter_flags(&mailbox, &mut message).await?;
        // The ordering rule of `crate::archive`: archive copy first, then
        // the owner's copy, and the archive copy undone if that fails.
        let archived = match &self.journal {
            Some(journal) => match self.journal_direction(&mailbox).await? {
                Some(direction) => {
                    journal
                        .journal(&mailbox.owner, direction, &message.content)
                        .await?
                }
                None => None,
            },
            None => None,
        };
        let result = match &self.quota {
            Some(q) => {
                let limits = q.limits(&q.root_of(&mailbox.owner)).await?;
                self.storage
                    .append_within_quota(&mailbox, message, limits)
                    .await
            }
            None => self.storage.append(&mailbox, message).await,
        };
        if let (Some(journal), Some(copy)) = (&self.journal, &archived) {
            match &result {
                Ok(_) => journal.confirm(copy).await,
                Err(_) => {
                    if let Err(e) = journal.abandon(copy).await {
                        tracing::error!(user = %copy.user, error = %e,
                            "archive copy of a refused APPEND could not be removed");
                    }
                }
            }
        }
        result
    }

    /// MULTIAPPEND (RFC 3502): [`MailAccess::append`] for several messages
    /// as one atomic step ([`Storage::append_all`]): all are stored, with
    /// ascending UIDs, or none (a refused quota, a missing right, a store
    /// error). Archived like single APPENDs, each message its own archive
    /// copy, all undone if the append fails.
    pub async fn append_all(&self, name: &str, messages: Vec<NewMessage>) -> Result<Vec<Appended>> {
        let mailbox = self.resolve(name)?;
        self.require(&mailbox, Right::Insert).await?;
        let mut messages = messages;
        for message in &mut messages {
            self.filter_flags(&mailbox, message).await?;
        }
        let mut archived = Vec::new();
        if let Some(journal) = &self.journal
            && let Some(direction) = self.journal_direction(&mailbox).await?
        {
            for message in &messages {
                match journal
                    .journal(&mailbox.owner, direction, &message.content)
                    .await
                {
                    Ok(Some(copy)) => archived.push(copy),
                    Ok(None) => {}
                    Err(e) => {
                        for copy in &archived {
                            if let Err(e) = journal.abandon(copy).await {
                                tracing::error!(user = %copy.user, error = %e,
                                    "archive copy of a refused APPEND could not be removed");
                            }
                        }
                        return Err(e);
                    }
                }
            }
        }
        let limits = match &self.quota {
            Some(q) => Some(q.limits(&q.root_of(&mailbox.owner)).await?),
            None => None,
        };
        let result = self.storage.append_all(&mailbox, messages, limits).await;
        if let Some(journal) = &self.journal {
            for copy in &archived {
                match &result {
                    Ok(_) => journal.confirm(copy).await,
                    Err(_) => {
                        if let Err(e) = journal.abandon(copy).await {
                            tracing::error!(user = %copy.user, error = %e,
                                "archive copy of a refused APPEND could not be removed");
                        }
                    }
                }
            }
        }
        result
    }

    /// Whether an APPEND into `mailbox` is archived, and which way: into
    /// an archived user's mailbox by someone else is `in`; by the user into
    /// their own `\Sent` mailbox is `out`.
    async fn journal_direction(&self, mailbox: &MailboxRef) -> Result<Option<Direction>> {
        if archive_domain(&mailbox.owner).is_some() {
            return Ok(None);
        }
        if mailbox.owner != self.principal.user {
            return Ok(Some(Direction::In));
        }
        let sent = self
            .storage
            .list(&mailbox.owner)
            .await?
            .iter()
            .any(|m| m.name == mailbox.name && m.special_use == Some(SpecialUse::Sent));
        Ok(sent.then_some(Direction::Out))
    }

    async fn filter_flags(&self, mailbox: &MailboxRef, message: &mut NewMessage) -> Result<()> {
        let rights = self.rights(mailbox).await?;
        let flags: Vec<Flag> = message.flags.iter().collect();
        for f in flags {
            if !may_set(rights, &f) {
                message.flags.remove(&f);
            }
        }
        Ok(())
    }

    /// GETACL (needs `a`).
    pub async fn get_acl(&self, name: &str) -> Result<(MailboxRef, Acl)> {
        let mailbox = self.resolve(name)?;
        self.require(&mailbox, Right::Administer).await?;
        let mut acl = self.storage.acl(&mailbox).await?;
        acl.entries
            .insert(0, (mailbox.owner.clone(), Rights::all()));
        Ok((mailbox, acl))
    }

    /// SETACL / DELETEACL (needs `a`). The owner's own rights cannot be changed.
    pub async fn set_acl(
        &self,
        name: &str,
        identifier: &str,
        rights: Option<Rights>,
    ) -> Result<()> {
        let mailbox = self.resolve(name)?;
        self.require(&mailbox, Right::Administer).await?;
        if identifier == mailbox.owner {
            return Err(Error::Cannot("the owner's rights cannot be changed"));
        }
        self.storage.set_acl(&mailbox, identifier, rights).await
    }

    /// MYRIGHTS.
    pub async fn my_rights(&self, name: &str) -> Result<Rights> {
        let mailbox = self.resolve(name)?;
        let rights = self.rights(&mailbox).await?;
        if rights.is_empty() || !self.exists(&mailbox).await? {
            return Err(Error::NoSuchMailbox(self.display_name(&mailbox)));
        }
        Ok(rights)
    }

    /// GETQUOTAROOT: the roots of a mailbox and their usage.
    pub async fn quota_root(&self, name: &str) -> Result<Vec<QuotaUsage>> {
        let mailbox = self.resolve(name)?;
        self.require(&mailbox, Right::Read).await?;
        match &self.quota {
            Some(q) => Ok(vec![q.usage(&q.root_of(&mailbox.owner)).await?]),
            None => Ok(Vec::new()),
        }
    }

    /// GETQUOTA: usage of a root the principal may see (their own).
    pub async fn quota_usage(&self, root: &str) -> Result<QuotaUsage> {
        let q = self.quota.as_ref().ok_or(Error::Unsupported("quota"))?;
        let own = q.root_of(&self.principal.user);
        if root != own && !self.principal.administers_user(root) {
            return Err(Error::PermissionDenied(Right::Administer));
        }
        q.usage(root).await
    }
}

fn may_set(rights: Rights, flag: &Flag) -> bool {
    match flag {
        Flag::Seen => rights.contains(Right::Seen),
        Flag::Deleted => rights.contains(Right::DeleteMessage),
        _ => rights.contains(Right::Write),
    }
}

/// A selected mailbox with the rights it was selected with.
#[derive(Debug, Clone)]
pub struct Selected {
    mailbox: Arc<dyn Mailbox>,
    rights: Rights,
    read_only: bool,
    access: MailAccess,
}

impl Selected {
    /// The open mailbox, for reads (SELECT already checked `r`).
    pub fn mailbox(&self) -> &Arc<dyn Mailbox> {
        &self.mailbox
    }

    /// The rights held.
    pub fn rights(&self) -> Rights {
        self.rights
    }

    /// STATUS of this mailbox as its viewer sees it (SELECT already checked
    /// `r`): what an EXAMINE session, which claims no `\Recent`, reports
    /// as recent.
    pub async fn status(&self) -> Result<MailboxStatus> {
        self.access
            .storage
            .status(self.mailbox.reference(), &self.access.principal.user)
            .await
    }

    /// Whether selected with EXAMINE (or without rights to change anything).
    pub fn read_only(&self) -> bool {
        self.read_only
            || !(self.rights.contains(Right::Seen)
                || self.rights.contains(Right::Write)
                || self.rights.contains(Right::DeleteMessage)
                || self.rights.contains(Right::Insert)
                || self.rights.contains(Right::Expunge))
    }

    /// Which flags this principal may change (for PERMANENTFLAGS).
    pub fn may_set(&self, flag: &Flag) -> bool {
        !self.read_only && may_set(self.rights, flag)
    }

    /// STORE: fails with [`Error::PermissionDenied`] if any named flag may not be changed.
    pub async fn store(
        &self,
        uids: &[Uid],
        op: &StoreOp,
        unchanged_since: Option<ModSeq>,
    ) -> Result<StoreResult> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        for f in op.flags().iter() {
            if !may_set(self.rights, &f) {
                let right = match f {
                    Flag::Seen => Right::Seen,
                    Flag::Deleted => Right::DeleteMessage,
                    _ => Right::Write,
                };
                return Err(Error::PermissionDenied(right));
            }
        }
        self.mailbox.store(uids, op, unchanged_since).await
    }

    /// EXPUNGE / UID EXPUNGE.
    pub async fn expunge(&self, uids: Option<&[Uid]>) -> Result<Vec<Uid>> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        if !self.rights.contains(Right::Expunge) {
            return Err(Error::PermissionDenied(Right::Expunge));
        }
        let reference = self.mailbox.reference().clone();
        if archive_domain(&reference.owner).is_none() {
            return self.mailbox.expunge(uids).await;
        }
        // Only under a server admin's override: a retention deletion,
        // logged and billed with what it removed.
        let before = self.mailbox.snapshot().await?;
        let expunged = self.mailbox.expunge(uids).await?;
        let removed_bytes = before
            .messages
            .iter()
            .filter(|m| expunged.binary_search(&m.uid).is_ok())
            .map(|m| m.size)
            .sum();
        if let Some(journal) = &self.access.journal {
            journal
                .record_override_use(
                    &self.access.principal,
                    &reference,
                    expunged.len(),
                    removed_bytes,
                )
                .await;
        } else {
            tracing::warn!(target: "mailroom::archive::audit", actor = %self.access.principal.user,
                owner = %reference.owner, mailbox = %reference.name, expunged = expunged.len(),
                removed_bytes, "archive retention deletion under override");
        }
        Ok(expunged)
    }

    /// The destination of a COPY or MOVE (`i` checked, and it exists), and
    /// the quota limits the copies are charged against: `None` without a
    /// quota policy, or for a move within one owner (which frees what it
    /// takes).
    async fn check_dest(
        &self,
        dest: &str,
        is_move: bool,
    ) -> Result<(MailboxRef, Option<QuotaLimits>)> {
        let dest = self.access.resolve(dest)?;
        self.access.require(&dest, Right::Insert).await?;
        if !self.access.exists(&dest).await? {
            return Err(Error::NoSuchMailbox(self.access.display_name(&dest)));
        }
        let same_root = dest.owner == self.mailbox.reference().owner;
        let limits = match self
            .access
            .quota
            .as_ref()
            .filter(|_| !(is_move && same_root))
        {
            Some(q) => Some(q.limits(&q.root_of(&dest.owner)).await?),
            None => None,
        };
        Ok((dest, limits))
    }

    /// COPY: `i` on the destination; the copies are charged to its owner's
    /// quota atomically with the copy.
    pub async fn copy_to(&self, uids: &[Uid], dest: &str) -> Result<CopyResult> {
        let (dest, limits) = self.check_dest(dest, false).await?;
        let archived = self.journal_copies(uids, &dest).await?;
        let result = match limits {
            Some(limits) => self.mailbox.copy_to_within_quota(uids, &dest, limits).await,
            None => self.mailbox.copy_to(uids, &dest).await,
        };
        self.settle(&archived, result.is_ok()).await;
        result
    }

    /// COPY and MOVE into an archived user's mailbox follow the APPEND rule
    /// (into another user's mailbox: `in`; by the owner into their `\Sent`:
    /// `out`): the archive copies are written first, one per message.
    async fn journal_copies(&self, uids: &[Uid], dest: &MailboxRef) -> Result<Vec<ArchivedCopy>> {
        let Some(journal) = &self.access.journal else {
            return Ok(Vec::new());
        };
        if dest.owner == self.mailbox.reference().owner
            && dest.name == self.mailbox.reference().name
        {
            return Ok(Vec::new());
        }
        let Some(direction) = self.access.journal_direction(dest).await? else {
            return Ok(Vec::new());
        };
        let mut copies = Vec::new();
        for meta in self.mailbox.fetch_meta(uids).await? {
            let written = match self.mailbox.content(meta.uid).await {
                Ok(content) => journal.journal(&dest.owner, direction, &content).await,
                Err(e) => Err(e),
            };
            match written {
                Ok(Some(copy)) => copies.push(copy),
                Ok(None) => break,
                Err(e) => {
                    self.settle(&copies, false).await;
                    return Err(e);
                }
            }
        }
        Ok(copies)
    }

    /// Keeps (and bills) or undoes the archive copies of a COPY or MOVE.
    async fn settle(&self, copies: &[ArchivedCopy], done: bool) {
        let Some(journal) = &self.access.journal else {
            return;
        };
        for copy in copies {
            if done {
                journal.confirm(copy).await;
            } else if let Err(e) = journal.abandon(copy).await {
                tracing::error!(user = %copy.user, error = %e,
                    "archive copy of a refused COPY could not be removed");
            }
        }
    }

    /// MOVE: also needs `e` (and `t`) here. The destination may be this
    /// mailbox (RFC 6851): the messages get new UIDs and the old ones are
    /// expunged.
    pub async fn move_to(&self, uids: &[Uid], dest: &str) -> Result<CopyResult> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        if !self.rights.contains(Right::Expunge) || !self.rights.contains(Right::DeleteMessage) {
            return Err(Error::PermissionDenied(Right::Expunge));
        }
        let (dest, limits) = self.check_dest(dest, true).await?;
        let archived = self.journal_copies(uids, &dest).await?;
        let result = match limits {
            Some(limits) => self.mailbox.move_to_within_quota(uids, &dest, limits).await,
            None => self.mailbox.move_to(uids, &dest).await,
        };
        self.settle(&archived, result.is_ok()).await;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_that_reach_the_other_users_namespace() {
        for p in [
            "*",
            "%",
            "O*",
            "Other Users",
            "Other Users/%",
            "Other Users/alice@x.org/INBOX",
            "Other%",
        ] {
            assert!(may_reach_other_users(p), "{p}");
        }
        for p in ["", "INBOX", "INBOX/*", "Other", "Other Usersx", "Sent%"] {
            assert!(!may_reach_other_users(p), "{p}");
        }
    }

    #[test]
    fn identifiers() {
        assert!(identifier_applies("bob", "bob"));
        assert!(identifier_applies(ANYONE, "bob"));
        assert!(!identifier_applies("bobby", "bob"));
        assert!(!identifier_applies("-bob", "bob"));
    }
}
