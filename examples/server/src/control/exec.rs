//! Running an admin request against an open store: the one implementation
//! behind both the admin socket and the offline path.

use std::collections::BTreeMap;
use std::sync::Arc;

use mailroom_core::acl::domain_of;
use mailroom_core::archive::{ArchiveJournal, year_month};
use mailroom_core::delivery::Pipeline;
use mailroom_core::{
    InternalDate, MailboxName, MailboxRef, Principal, QuotaLimits, QuotaUsage, Roles, Storage as _,
};
use mailroom_plugin::{BillingMonth, BillingSink};

use crate::archive::{BillingEvents, send_billing_notices};

use super::wire::{Request, Target};
use crate::store::Store;
use crate::users::{Directory, UsersError};

/// The outcome of one request: output lines, then success or the reason
/// of the failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Lines of output (also sent when the request fails part-way).
    pub lines: Vec<String>,
    /// `Err(reason)` if the request failed.
    pub outcome: Result<(), String>,
}

impl Reply {
    fn ok(lines: Vec<String>) -> Reply {
        Reply {
            lines,
            outcome: Ok(()),
        }
    }

    fn fail(lines: Vec<String>, why: impl Into<String>) -> Reply {
        Reply {
            lines,
            outcome: Err(why.into()),
        }
    }
}

/// Runs `request` on `store`. `users` (the users file or the PostgreSQL
/// users table) is consulted by the quota commands, which refuse a user
/// that does not exist (a typo must not create quota data for nobody).
pub async fn execute(store: &Store, users: &Directory, request: &Request) -> Reply {
    execute_with(store, users, &ArchiveSettings::default(), request).await
}

/// What the archive and billing commands need besides the store.
#[derive(Debug, Clone, Default)]
pub struct ArchiveSettings {
    /// The loaded billing plugin (events, reports); `None` without one.
    pub billing: Option<Arc<dyn BillingSink>>,
    /// What archiving costs, in words, for the billing notice.
    pub price_note: String,
}

/// [`execute`] with the billing plugin for the archive commands.
pub async fn execute_with(
    store: &Store,
    users_file: &Directory,
    archive: &ArchiveSettings,
    request: &Request,
) -> Reply {
    let journal = || {
        let journal = ArchiveJournal::new(store.storage());
        Arc::new(match &archive.billing {
            Some(sink) => journal.with_events(Arc::new(BillingEvents::new(sink.clone()))),
            None => journal,
        })
    };
    match request {
        Request::DomainList => domain_list(&journal(), users_file).await,
        Request::ArchiveSet {
            actor,
            user,
            enabled,
        } => {
            let actor = match actor_principal(users_file, actor.as_deref()).await {
                Ok(a) => a,
                Err(e) => return Reply::fail(Vec::new(), e),
            };
            if let Err(e) = known_user(users_file, user).await {
                return Reply::fail(Vec::new(), e.to_string());
            }
            let state = if *enabled { "on" } else { "off" };
            match journal().set_enabled(&actor, user, *enabled).await {
                Ok(changed) => Reply::ok(vec![format!(
                    "archive {user} {state}{}",
                    if changed { "" } else { " (unchanged)" }
                )]),
                Err(e) => Reply::fail(Vec::new(), format!("archive {state} for {user}: {e}")),
            }
        }
        Request::ArchiveStatus { user } => match journal().is_enabled(user).await {
            Ok(on) => Reply::ok(vec![format!(
                "archive {user} {}",
                if on { "on" } else { "off" }
            )]),
            Err(e) => Reply::fail(Vec::new(), format!("archive status of {user}: {e}")),
        },
        Request::ArchiveOverride {
            actor,
            mailbox,
            reason,
        } => {
            let actor = match actor_principal(users_file, actor.as_deref()).await {
                Ok(a) => a,
                Err(e) => return Reply::fail(Vec::new(), e),
            };
            let Some(name) = &mailbox.mailbox else {
                return Reply::fail(
                    Vec::new(),
                    "name the archive mailbox: archive@DOMAIN/MAILBOX",
                );
            };
            let target = MailboxRef::new(mailbox.user.clone(), name.clone());
            match journal()
                .set_override(&actor, &target, reason.as_deref())
                .await
            {
                Ok(()) => Reply::ok(vec![format!(
                    "override on {mailbox} {}",
                    if reason.is_some() {
                        "granted"
                    } else {
                        "revoked"
                    }
                )]),
                Err(e) => Reply::fail(Vec::new(), format!("override on {mailbox}: {e}")),
            }
        }
        Request::BillingSet { domain, enabled } => {
            billing_set(store, archive, journal(), domain, *enabled).await
        }
        Request::BillingReport { month } => billing_report(archive, month.as_deref()).await,
        Request::As { actor, request } => {
            let principal = match actor_principal(users_file, Some(actor)).await {
                Ok(p) => p,
                Err(e) => return Reply::fail(Vec::new(), e),
            };
            let user = match request.as_ref() {
                Request::QuotaShow { user } | Request::QuotaSet { user, .. } => user,
                Request::Reconstruct(t) | Request::Verify(t) => &t.user,
                _ => {
                    return Reply::fail(
                        Vec::new(),
                        "as applies to quota, reconstruct and verify (the archive commands take --as themselves)",
                    );
                }
            };
            if !principal.administers_user(user) {
                return Reply::fail(
                    Vec::new(),
                    format!("permission denied: {actor} does not administer {user}"),
                );
            }
            Box::pin(execute_with(store, users_file, archive, request)).await
        }
        Request::ReplicationStatus
        | Request::ReplicationPromote
        | Request::ReplicationVerify { .. } => Reply::fail(
            Vec::new(),
            "replication is not configured on this server (no [replication] table)",
        ),
        _ => execute_store(store, users_file, request).await,
    }
}

/// The operator on the admin socket (root or the server's own user) acts
/// as a server admin; `--as USER` acts with that user's roles.
async fn actor_principal(users: &Directory, actor: Option<&str>) -> Result<Principal, String> {
    match actor {
        None => Ok(Principal {
            user: "operator".into(),
            domain: None,
            roles: Roles {
                domain_admin: false,
                server_admin: true,
            },
        }),
        Some(name) => match users.get(name).await {
            Ok(record) => record
                .map(|r| r.principal())
                .ok_or_else(|| format!("no such user: {name}")),
            Err(e) => Err(e.to_string()),
        },
    }
}

async fn domain_list(journal: &ArchiveJournal, users: &Directory) -> Reply {
    let records = match users.list().await {
        Ok(records) => records,
        Err(e) => return Reply::fail(Vec::new(), e.to_string()),
    };
    let mut domains: BTreeMap<String, u64> = BTreeMap::new();
    for record in &records {
        if let Some(d) = domain_of(&record.name) {
            *domains.entry(d.to_ascii_lowercase()).or_default() += 1;
        }
    }
    let mut lines = Vec::new();
    for (domain, users) in domains {
        let archived = match journal.enabled_users(&domain).await {
            Ok(u) => u.len(),
            Err(e) => return Reply::fail(lines, format!("archive settings of {domain}: {e}")),
        };
        let billing = match journal.billing_enabled(&domain).await {
            Ok(b) => b,
            Err(e) => return Reply::fail(lines, format!("billing setting of {domain}: {e}")),
        };
        lines.push(format!(
            "domain {domain} users {users} archived {archived} billing {}",
            if billing { "on" } else { "off" }
        ));
    }
    Reply::ok(lines)
}

async fn billing_set(
    store: &Store,
    archive: &ArchiveSettings,
    journal: Arc<ArchiveJournal>,
    domain: &str,
    enabled: bool,
) -> Reply {
    if enabled && archive.billing.is_none() {
        return Reply::fail(
            Vec::new(),
            "no billing plugin is configured ([[plugin]] kind = \"billing\")",
        );
    }
    let operator = Principal {
        user: "operator".into(),
        domain: None,
        roles: Roles {
            domain_admin: false,
            server_admin: true,
        },
    };
    let changed = match journal.set_billing(&operator, domain, enabled).await {
        Ok(c) => c,
        Err(e) => return Reply::fail(Vec::new(), format!("billing of {domain}: {e}")),
    };
    let mut lines = vec![format!(
        "billing {domain} {}{}",
        if enabled { "on" } else { "off" },
        if changed { "" } else { " (unchanged)" }
    )];
    if !enabled {
        return Reply::ok(lines);
    }
    // Also when unchanged: a run cut short by a restart finishes here.
    let storage = store.storage();
    let pipeline = Pipeline::with_archive(storage.clone(), store.quota(), journal.clone());
    match send_billing_notices(&journal, &storage, &pipeline, domain, &archive.price_note).await {
        Ok(more) => {
            lines.extend(more);
            Reply::ok(lines)
        }
        Err(e) => Reply::fail(
            lines,
            format!("billing notices of {domain}: {e} (run the command again)"),
        ),
    }
}

async fn billing_report(archive: &ArchiveSettings, month: Option<&str>) -> Reply {
    let Some(sink) = &archive.billing else {
        return Reply::fail(
            Vec::new(),
            "no billing plugin is configured ([[plugin]] kind = \"billing\")",
        );
    };
    let month = match month {
        Some(m) => match m.parse::<BillingMonth>() {
            Ok(m) => m,
            Err(e) => return Reply::fail(Vec::new(), e.to_string()),
        },
        None => {
            let (y, m) = year_month(InternalDate::now().timestamp);
            match BillingMonth::new(
                i32::try_from(y).unwrap_or(1970),
                u8::try_from(m).unwrap_or(1),
            ) {
                Some(m) => m,
                None => return Reply::fail(Vec::new(), "the clock is outside 1970..9999"),
            }
        }
    };
    match sink.report(month).await {
        Ok(report) => Reply::ok(report.to_string().lines().map(str::to_owned).collect()),
        Err(e) => Reply::fail(Vec::new(), format!("billing report: {e}")),
    }
}

async fn execute_store(store: &Store, users_file: &Directory, request: &Request) -> Reply {
    match request {
        Request::Reconstruct(target) => reconstruct(store, target).await,
        Request::Verify(target) => verify(store, target).await,
        Request::QuotaShow { user } => {
            if let Err(e) = known_user(users_file, user).await {
                return Reply::fail(Vec::new(), e.to_string());
            }
            match store.quota().usage(&store.quota().root_of(user)).await {
                Ok(usage) => Reply::ok(quota_lines(&usage)),
                Err(e) => Reply::fail(Vec::new(), format!("quota of {user}: {e}")),
            }
        }
        Request::QuotaSet {
            user,
            storage_kib,
            messages,
        } => {
            if let Err(e) = known_user(users_file, user).await {
                return Reply::fail(Vec::new(), e.to_string());
            }
            let storage_bytes = match storage_kib.map(|k| k.checked_mul(1024)) {
                None => None,
                Some(Some(bytes)) => Some(bytes),
                Some(None) => {
                    return Reply::fail(Vec::new(), "the storage limit is too large");
                }
            };
            let limits = QuotaLimits {
                storage_bytes,
                messages: *messages,
            };
            let quota = store.quota();
            let root = quota.root_of(user);
            if let Err(e) = quota.set_limits(&root, limits).await {
                return Reply::fail(Vec::new(), format!("setting the quota of {user}: {e}"));
            }
            tracing::info!(user, ?limits, "quota limits set");
            let mut lines = vec![format!("quota of {user} set")];
            match quota.usage(&root).await {
                Ok(usage) => {
                    lines.extend(quota_lines(&usage));
                    Reply::ok(lines)
                }
                Err(e) => Reply::fail(lines, format!("reading the quota of {user} back: {e}")),
            }
        }
        _ => Reply::fail(Vec::new(), "not a store request"),
    }
}

async fn known_user(users: &Directory, user: &str) -> Result<(), UsersError> {
    match users.get(user).await? {
        Some(_) => Ok(()),
        None => Err(UsersError::NoSuchUser(user.to_owned())),
    }
}

/// A quota as `key value` lines: `quota_root`, `storage_used_bytes`,
/// `storage_used_kib` (rounded up), `storage_limit_kib`, `messages_used`,
/// `messages_limit`; a missing limit is `unlimited`.
pub fn quota_lines(usage: &QuotaUsage) -> Vec<String> {
    let limit = |l: Option<u64>| l.map_or_else(|| "unlimited".to_owned(), |n| n.to_string());
    vec![
        format!("quota_root {}", usage.root),
        format!("storage_used_bytes {}", usage.storage_bytes),
        format!("storage_used_kib {}", usage.storage_bytes.div_ceil(1024)),
        format!(
            "storage_limit_kib {}",
            limit(usage.limits.storage_bytes.map(|b| b / 1024))
        ),
        format!("messages_used {}", usage.messages),
        format!("messages_limit {}", limit(usage.limits.messages)),
    ]
}

fn crc_only<'a>(store: &'a Store, what: &str) -> Result<&'a mailroom_store_crc::CrcStore, Reply> {
    store.crc().ok_or_else(|| {
        Reply::fail(
            Vec::new(),
            format!(
                "{what} needs the crc store; this server runs the {} store, \
                 which keeps no files to {what}",
                store.kind()
            ),
        )
    })
}

async fn reconstruct(store: &Store, target: &Target) -> Reply {
    let crc = match crc_only(store, "reconstruct") {
        Ok(c) => c,
        Err(reply) => return reply,
    };
    let user = &target.user;
    let reports = match crc.reconstruct(user, target.mailbox.as_ref()).await {
        Ok(r) => r,
        Err(mailroom_core::Error::NoSuchUser) => {
            return Reply::fail(Vec::new(), format!("the store has no mailboxes for {user}"));
        }
        Err(e) => return Reply::fail(Vec::new(), format!("reconstruct of {target}: {e}")),
    };
    let mut lines = Vec::new();
    for (name, r) in &reports {
        lines.push(format!(
            "reconstructed {user}/{}: {} messages, {} bytes (kept {}, recovered {}, \
             quarantined {}, lost {}, skipped {})",
            name.as_str(),
            r.messages,
            r.quota_bytes,
            r.kept,
            r.recovered,
            r.quarantined,
            r.lost,
            r.skipped
        ));
    }
    tracing::info!(target = %target, mailboxes = reports.len(), "reconstruct done");
    // The quota of the whole user, as the store now computes it (recomputed
    // from the rebuilt mailboxes, never added to the old figure).
    let quota = store.quota();
    match quota.usage(&quota.root_of(user)).await {
        Ok(usage) => {
            lines.extend(quota_lines(&usage));
            Reply::ok(lines)
        }
        Err(e) => Reply::fail(lines, format!("reading the quota of {user}: {e}")),
    }
}

async fn verify(store: &Store, target: &Target) -> Reply {
    let crc = match crc_only(store, "verify") {
        Ok(c) => c,
        Err(reply) => return reply,
    };
    let user = &target.user;
    let names: Vec<MailboxName> = match &target.mailbox {
        Some(m) => vec![m.clone()],
        None => match crc.list(user).await {
            Ok(list) => list.into_iter().map(|i| i.name).collect(),
            Err(e) => {
                return Reply::fail(Vec::new(), format!("listing the mailboxes of {user}: {e}"));
            }
        },
    };
    if names.is_empty() {
        return Reply::fail(Vec::new(), format!("the store has no mailboxes for {user}"));
    }
    let mut lines = Vec::new();
    let mut failed = 0;
    for name in &names {
        let mref = MailboxRef::new(user.clone(), name.clone());
        match crc.verify(&mref).await {
            Ok(n) => lines.push(format!(
                "verified {user}/{}: ok, {n} messages",
                name.as_str()
            )),
            Err(e) => {
                failed += 1;
                let what = if matches!(e, mailroom_core::Error::Corruption(_)) {
                    "CORRUPT"
                } else {
                    "FAILED"
                };
                lines.push(format!("verified {user}/{}: {what}: {e}", name.as_str()));
            }
        }
    }
    if failed == 0 {
        Reply::ok(lines)
    } else {
        Reply::fail(
            lines,
            format!(
                "{failed} of {} mailboxes failed verification; repair with \
                 `mailroomd reconstruct {target}`",
                names.len()
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mailroom_core::{Flags, NewMessage};
    use mailroom_store_crc::{CrcOptions, CrcStore};
    use mailroom_store_memory::MemoryStore;

    use super::*;
    use crate::users::{UserDb, hash_password};

    fn users(dir: &std::path::Path) -> Directory {
        let path = dir.join("users.toml");
        UserDb::modify(&path, |db| {
            db.add("alice@example.com", hash_password("pw")?, Vec::new())
        })
        .unwrap();
        Directory::File(path)
    }

    async fn append(store: &Store, user: &str, text: &str) {
        store.storage().ensure_account(user).await.unwrap();
        let inbox = MailboxRef::new(user, MailboxName::inbox());
        let msg = NewMessage {
            flags: Flags::default(),
            internal_date: None,
            content: text.to_owned().into(),
        };
        store.storage().append(&inbox, msg).await.unwrap();
    }

    #[tokio::test]
    async fn crc_reconstruct_verify_quota() {
        let dir = tempfile::tempdir().unwrap();
        let users_file = users(dir.path());
        let crc = CrcStore::open(dir.path().join("store"), CrcOptions::default()).unwrap();
        let store = Store::Crc(crc);
        let alice = "alice@example.com";
        let (m1, m2) = ("Subject: a\r\n\r\none\r\n", "Subject: b\r\n\r\ntwo two\r\n");
        append(&store, alice, m1).await;
        append(&store, alice, m2).await;
        let total = (m1.len() + m2.len()) as u64;

        let target = Target::parse("alice@example.com/INBOX").unwrap();
        for _ in 0..2 {
            // twice: the quota is recomputed, not added to
            let r = execute(&store, &users_file, &Request::Reconstruct(target.clone())).await;
            assert_eq!(r.outcome, Ok(()));
            assert!(
                r.lines[0].starts_with(&format!(
                    "reconstructed alice@example.com/INBOX: 2 messages, {total} bytes (kept 2,"
                )),
                "{:?}",
                r.lines
            );
            assert!(r.lines.contains(&format!("storage_used_bytes {total}")));
            assert!(r.lines.contains(&"messages_used 2".to_owned()));
        }

        let r = execute(
            &store,
            &users_file,
            &Request::Verify(Target::parse(alice).unwrap()),
        )
        .await;
        assert_eq!(r.outcome, Ok(()), "{:?}", r.lines);
        assert!(
            r.lines
                .contains(&format!("verified {alice}/INBOX: ok, 2 messages"))
        );
        assert!(
            r.lines.len() > 1,
            "every mailbox is verified: {:?}",
            r.lines
        );

        let set = Request::QuotaSet {
            user: alice.into(),
            storage_kib: Some(100),
            messages: None,
        };
        let r = execute(&store, &users_file, &set).await;
        assert_eq!(r.outcome, Ok(()));
        assert_eq!(r.lines[0], "quota of alice@example.com set");
        assert!(r.lines.contains(&"storage_limit_kib 100".to_owned()));
        assert!(r.lines.contains(&"messages_limit unlimited".to_owned()));
        let usage = store.quota().usage(alice).await.unwrap();
        assert_eq!(usage.limits.storage_bytes, Some(102_400));

        let unknown = Request::QuotaShow {
            user: "mallory@example.com".into(),
        };
        let r = execute(&store, &users_file, &unknown).await;
        assert!(r.outcome.unwrap_err().contains("no such user"));
        let r = execute(
            &store,
            &users_file,
            &Request::Reconstruct(Target::parse("mallory@example.com").unwrap()),
        )
        .await;
        assert!(r.outcome.unwrap_err().contains("no mailboxes"));
        let r = execute(
            &store,
            &users_file,
            &Request::Verify(Target::parse("alice@example.com/Nope").unwrap()),
        )
        .await;
        assert!(r.outcome.is_err());
        assert!(r.lines[0].contains("FAILED"), "{:?}", r.lines);
    }

    #[tokio::test]
    async fn memory_store_quota_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let users_file = users(dir.path());
        let store = Store::Memory(Arc::new(MemoryStore::new()));
        append(&store, "alice@example.com", "Subject: x\r\n\r\nx\r\n").await;
        let set = Request::QuotaSet {
            user: "alice@example.com".into(),
            storage_kib: None,
            messages: Some(1),
        };
        let r = execute(&store, &users_file, &set).await;
        assert_eq!(r.outcome, Ok(()));
        assert!(r.lines.contains(&"messages_limit 1".to_owned()));
        assert!(r.lines.contains(&"messages_used 1".to_owned()));
        assert!(
            store
                .quota()
                .check("alice@example.com", 1, 1)
                .await
                .is_err()
        );

        let r = execute(
            &store,
            &users_file,
            &Request::Reconstruct(Target::parse("alice@example.com").unwrap()),
        )
        .await;
        assert!(r.outcome.unwrap_err().contains("needs the crc store"));

        let huge = Request::QuotaSet {
            user: "alice@example.com".into(),
            storage_kib: Some(u64::MAX),
            messages: None,
        };
        let r = execute(&store, &users_file, &huge).await;
        assert!(r.outcome.unwrap_err().contains("too large"));
    }

    #[test]
    fn quota_lines_format() {
        let usage = QuotaUsage {
            root: "a@b.c".into(),
            storage_bytes: 1025,
            messages: 3,
            limits: QuotaLimits {
                storage_bytes: Some(2048),
                messages: None,
            },
        };
        assert_eq!(
            quota_lines(&usage),
            [
                "quota_root a@b.c",
                "storage_used_bytes 1025",
                "storage_used_kib 2",
                "storage_limit_kib 2",
                "messages_used 3",
                "messages_limit unlimited"
            ]
        );
    }
}
