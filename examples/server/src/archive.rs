//! Archive journaling and billing in mailroomd: the glue between
//! [`mailroom_core::archive`] and the rest of the server.
//!
//! - [`BillingEvents`]: the journal's events, sent to the loaded billing
//!   plugin ([`mailroom_plugin::BillingSink`]), each with its idempotent id.
//! - [`JournalAddresses`]: the authenticator mailroomd serves with. LMTP
//!   accepts `journal+USER@DOMAIN` (the journal address of
//!   [`mailroom_core::archive`]) for every domain; nobody logs in as a
//!   domain's archive account `archive@DOMAIN` or as `journal@DOMAIN`.
//! - [`send_billing_notices`]: when billing is switched on for a domain,
//!   every user with archiving on gets one notice in their INBOX, through
//!   the delivery pipeline. "Once" survives repeats and a restart halfway:
//!   the notice has a fixed Message-ID per user; a user recorded as noticed
//!   (an entry in the archive settings) is skipped, and before delivering,
//!   the INBOX is searched for that Message-ID (a crash between delivery
//!   and record leaves the notice there, so it is recorded, not sent again).

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use mailroom_core::archive::{
    ARCHIVE_LOCALPART, ArchiveEvent, ArchiveEventKind, ArchiveEventSink, ArchiveJournal,
    JOURNAL_LOCALPART, archive_domain,
};
use mailroom_core::sasl::{ScramCredentials, TokenValidator};
use mailroom_core::{
    Authenticator, Credentials, Delivery, DeliveryOutcome, DeliveryRequest, Error, InternalDate,
    MailboxName, MailboxRef, Mechanism, Principal, Recipient, Result, Storage, Uid,
};
use mailroom_plugin::BillingSink;

/// Archive events to a billing plugin.
#[derive(Debug, Clone)]
pub struct BillingEvents {
    sink: Arc<dyn BillingSink>,
}

impl BillingEvents {
    /// Events to `sink`.
    pub fn new(sink: Arc<dyn BillingSink>) -> BillingEvents {
        BillingEvents { sink }
    }
}

/// The plugin's form of a core archive event.
pub fn plugin_event(event: &ArchiveEvent) -> Option<mailroom_plugin::ArchiveEvent> {
    use mailroom_plugin::ArchiveEventKind as P;
    let kind = match &event.kind {
        ArchiveEventKind::Enabled => P::Enabled,
        ArchiveEventKind::Disabled => P::Disabled,
        ArchiveEventKind::MessageArchived { size } => P::MessageArchived { size: *size },
        ArchiveEventKind::OverrideUsed {
            mailbox,
            reason,
            removed_bytes,
        } => P::OverrideUsed {
            mailbox: mailbox.clone(),
            reason: reason.clone(),
            removed_bytes: *removed_bytes,
        },
        _ => return None,
    };
    Some(mailroom_plugin::ArchiveEvent {
        id: event.id.clone(),
        at_unix: event.at_unix,
        domain: event.domain.clone(),
        user: event.user.clone(),
        kind,
    })
}

/// How often a failed `record` is tried before the event is given up (and
/// logged with its id). mailroomd's sink is the plugin behind the durable
/// outbox ([`crate::billing_outbox`]), which takes a refused event at once,
/// so this only fails when the outbox itself cannot be written.
const RECORD_ATTEMPTS: usize = 3;

#[async_trait]
impl ArchiveEventSink for BillingEvents {
    async fn record(&self, event: &ArchiveEvent) -> Result<()> {
        let Some(event) = plugin_event(event) else {
            return Ok(());
        };
        let mut last = None;
        for _ in 0..RECORD_ATTEMPTS {
            // the same id every time: the plugin counts it once
            match self.sink.record(&event).await {
                Ok(_) => return Ok(()),
                Err(e) => last = Some(e.to_string()),
            }
        }
        Err(Error::Backend(format!(
            "billing plugin: {}",
            last.unwrap_or_default()
        )))
    }
}

/// The serving authenticator: `inner`, plus the journal address of every
/// domain for delivery, minus logins as the reserved accounts.
#[derive(Debug, Clone)]
pub struct JournalAddresses {
    inner: Arc<dyn Authenticator>,
}

impl JournalAddresses {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Authenticator>) -> JournalAddresses {
        JournalAddresses { inner }
    }
}

fn reserved(user: &str) -> bool {
    match user.rsplit_once('@') {
        Some((local, domain)) if !domain.is_empty() => {
            local.eq_ignore_ascii_case(ARCHIVE_LOCALPART)
                || local.eq_ignore_ascii_case(JOURNAL_LOCALPART)
        }
        _ => false,
    }
}

#[async_trait]
impl Authenticator for JournalAddresses {
    fn mechanisms(&self) -> Vec<Mechanism> {
        self.inner.mechanisms()
    }

    async fn authenticate(&self, credentials: &Credentials) -> Result<Principal> {
        let principal = self.inner.authenticate(credentials).await?;
        if reserved(&principal.user) {
            return Err(Error::AuthFailed);
        }
        Ok(principal)
    }

    async fn lookup(&self, user: &str) -> Result<Option<Principal>> {
        if let Some((local, domain)) = user.rsplit_once('@')
            && local.eq_ignore_ascii_case(JOURNAL_LOCALPART)
            && !domain.is_empty()
        {
            return Ok(Some(Principal::user(format!(
                "{JOURNAL_LOCALPART}@{}",
                domain.to_ascii_lowercase()
            ))));
        }
        if archive_domain(user).is_some() {
            return Ok(None);
        }
        self.inner.lookup(user).await
    }

    async fn scram_credentials(&self, user: &str) -> Result<Option<ScramCredentials>> {
        if reserved(user) {
            return Ok(None);
        }
        self.inner.scram_credentials(user).await
    }

    async fn authorize(&self, authcid: &str, authzid: Option<&str>) -> Result<Principal> {
        let principal = self.inner.authorize(authcid, authzid).await?;
        if reserved(&principal.user) {
            return Err(Error::AuthFailed);
        }
        Ok(principal)
    }

    fn token_validator(&self) -> Option<&dyn TokenValidator> {
        self.inner.token_validator()
    }

    fn supports_apop(&self) -> bool {
        self.inner.supports_apop()
    }

    async fn authenticate_apop(
        &self,
        user: &str,
        timestamp: &str,
        digest: &[u8; 16],
    ) -> Result<Principal> {
        if reserved(user) {
            return Err(Error::AuthFailed);
        }
        self.inner.authenticate_apop(user, timestamp, digest).await
    }
}

/// What archiving costs, in words, from the billing plugin's `[price]`
/// settings (`currency`, `user_day`, `message`, `gb_month`, as the
/// archive billing plugin reads them), for the notice.
pub fn price_note(plugins: &[crate::plugins::PluginSpec]) -> String {
    let price = plugins
        .iter()
        .find(|p| p.kind == mailroom_plugin::PluginKind::Billing)
        .and_then(|p| p.settings.parse::<toml::Table>().ok())
        .and_then(|t| t.get("price").and_then(|p| p.as_table()).cloned());
    let Some(price) = price else {
        return "the charges of your provider's archive price list.".into();
    };
    let get = |k: &str| {
        price
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_owned()
    };
    format!(
        "{c} {u} per archived user and day, {c} {m} per message archived and\r\n\
         {c} {g} per GB-month stored.",
        c = get("currency"),
        u = get("user_day"),
        m = get("message"),
        g = get("gb_month"),
    )
}

/// The Message-ID of `user`'s billing notice (fixed per user, so a notice
/// already delivered is recognised).
pub fn notice_message_id(user: &str) -> String {
    let tag: String = user
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '.' })
        .collect();
    format!("<archive-billing-notice.{tag}@mailroomd.invalid>")
}

/// The notice: a plain RFC 5322 message (CRLF line ends, ASCII, a Date,
/// From, To, Subject, Message-ID and MIME headers).
pub fn notice_message(user: &str, domain: &str, price_note: &str, at: i64) -> Bytes {
    let date = rfc5322_date(at);
    let text = format!(
        "Date: {date}\r\n\
         From: Mail administrator <postmaster@{domain}>\r\n\
         To: <{user}>\r\n\
         Subject: Your mail is archived; archive billing starts now\r\n\
         Message-ID: {id}\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\
         Content-Transfer-Encoding: 7bit\r\n\
         \r\n\
         Hello,\r\n\
         \r\n\
         Your organisation ({domain}) archives your mail. A copy of every\r\n\
         message you receive and every message you send is kept in the\r\n\
         archive of {domain}, which only its administrators can read and\r\n\
         from which nothing can be deleted.\r\n\
         \r\n\
         From {date} on, {domain} is billed for this archive: {price_note}\r\n\
         \r\n\
         Nothing changes in your mailbox. Questions go to your administrator.\r\n",
        id = notice_message_id(user),
    );
    Bytes::from(text)
}

fn rfc5322_date(at: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = at.div_euclid(86_400);
    let secs = at.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} +0000",
        DAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)],
        MONTHS[usize::try_from(month - 1).unwrap_or(0)],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

async fn inbox_has(storage: &Arc<dyn Storage>, user: &str, message_id: &str) -> Result<bool> {
    let inbox = MailboxRef::new(user, MailboxName::inbox());
    let open = match storage.open(&inbox, user).await {
        Ok(open) => open,
        Err(Error::NoSuchMailbox(_)) => return Ok(false),
        Err(e) => return Err(e),
    };
    let uids: Vec<Uid> = open
        .snapshot()
        .await?
        .messages
        .iter()
        .map(|m| m.uid)
        .collect();
    for chunk in uids.chunks(256) {
        for (_, summary) in open.summaries(chunk).await? {
            if summary.envelope.message_id.as_deref() == Some(message_id.as_bytes()) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Delivers the billing notice to every archived user of `domain` that has
/// not had it; returns one line per user (`notice USER sent|already sent`).
pub async fn send_billing_notices(
    journal: &ArchiveJournal,
    storage: &Arc<dyn Storage>,
    delivery: &dyn Delivery,
    domain: &str,
    price_note: &str,
) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    for user in journal.enabled_users(domain).await? {
        if journal.notice_sent(&user).await? {
            lines.push(format!("notice {user} already sent"));
            continue;
        }
        let id = notice_message_id(&user);
        if !inbox_has(storage, &user, &id).await? {
            let request = DeliveryRequest {
                return_path: None,
                recipients: vec![Recipient {
                    user: user.clone(),
                    detail: None,
                }],
                message: notice_message(&user, domain, price_note, InternalDate::now().timestamp),
            };
            match delivery.deliver(&request).await.pop() {
                Some(DeliveryOutcome::Delivered { .. }) => {}
                Some(
                    DeliveryOutcome::TemporaryFailure(e) | DeliveryOutcome::PermanentFailure(e),
                ) => {
                    return Err(e);
                }
                None => return Err(Error::Backend("no delivery outcome".into())),
            }
        }
        journal.mark_notice_sent(&user).await?;
        tracing::info!(user = %user, domain = %domain, "archive billing notice delivered");
        lines.push(format!("notice {user} sent"));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_ids() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_796_126_400),
            "Tue, 01 Dec 2026 12:00:00 +0000"
        );
        assert_eq!(
            notice_message_id("al.ice@x.org"),
            "<archive-billing-notice.al.ice.x.org@mailroomd.invalid>"
        );
        let m = notice_message("alice@x.org", "x.org", "see the price table", 0);
        let summary = mailroom_core::MessageSummary::parse(&m);
        assert_eq!(
            summary.envelope.message_id.as_deref(),
            Some(notice_message_id("alice@x.org").as_bytes())
        );
        assert!(m.is_ascii());
    }

    #[tokio::test]
    async fn billing_notice_once_even_after_a_crash_between_delivery_and_record() {
        use mailroom_core::delivery::Pipeline;
        use mailroom_core::{Quota, Roles};
        use mailroom_store_memory::MemoryStore;

        let store = Arc::new(MemoryStore::new());
        let storage: Arc<dyn Storage> = store.clone();
        let journal = Arc::new(ArchiveJournal::new(storage.clone()));
        let pipeline = Pipeline::with_archive(
            storage.clone(),
            store.clone() as Arc<dyn Quota>,
            journal.clone(),
        );
        let mut boss = Principal::user("boss@x.org");
        boss.roles = Roles {
            domain_admin: true,
            server_admin: false,
        };
        for u in ["alice@x.org", "bob@x.org"] {
            journal.set_enabled(&boss, u, true).await.unwrap();
        }
        // the earlier run delivered alice's notice and died before recording it
        let request = DeliveryRequest {
            return_path: None,
            recipients: vec![Recipient {
                user: "alice@x.org".into(),
                detail: None,
            }],
            message: notice_message("alice@x.org", "x.org", "p", 0),
        };
        assert!(matches!(
            pipeline.deliver(&request).await.pop(),
            Some(DeliveryOutcome::Delivered { .. })
        ));
        let lines = send_billing_notices(&journal, &storage, &pipeline, "x.org", "p")
            .await
            .unwrap();
        assert_eq!(lines, ["notice alice@x.org sent", "notice bob@x.org sent"]);
        let lines = send_billing_notices(&journal, &storage, &pipeline, "x.org", "p")
            .await
            .unwrap();
        assert_eq!(
            lines,
            [
                "notice alice@x.org already sent",
                "notice bob@x.org already sent"
            ]
        );
        for u in ["alice@x.org", "bob@x.org"] {
            let inbox = MailboxRef::new(u, MailboxName::inbox());
            assert_eq!(storage.status(&inbox, u).await.unwrap().messages, 1, "{u}");
        }
    }

    #[test]
    fn reserved_names() {
        assert!(reserved("archive@x.org") && reserved("Journal@x.org"));
        assert!(!reserved("alice@x.org") && !reserved("archive"));
    }
}
