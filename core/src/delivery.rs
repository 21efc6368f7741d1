//! The `Delivery` trait and the step pipeline mailroomd delivers through.
//!
//! A [`Pipeline`] runs its [`DeliveryStep`]s in order for each recipient; a
//! step either lets delivery go on or ends it with an outcome. The shipped
//! steps are [`QuotaCheck`] and [`FileInto`]; integrators insert their own
//! (archive journaling, filtering) anywhere in the list.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::{Error, Result};
use crate::flags::Flags;
use crate::mailbox::{MailboxName, MailboxRef};
use crate::message::{InternalDate, NewMessage};
use crate::quota::{Quota, QuotaLimits};
use crate::storage::Storage;
use crate::types::Uid;

/// One local recipient of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The local user (mailbox owner).
    pub user: String,
    /// The `+detail` of a plus address, if any (`alice+lists@x` → `lists`).
    pub detail: Option<String>,
}

/// A message to deliver to some local recipients.
#[derive(Debug, Clone)]
pub struct DeliveryRequest {
    /// The envelope sender (`None` for the null sender `<>`).
    pub return_path: Option<String>,
    /// The recipients.
    pub recipients: Vec<Recipient>,
    /// The message as it will be stored (headers already added by the front end).
    pub message: Bytes,
}

/// The result of delivering to one recipient.
#[derive(Debug)]
pub enum DeliveryOutcome {
    /// Stored durably.
    Delivered {
        /// Where it was filed.
        mailbox: MailboxName,
        /// The UID it took.
        uid: Uid,
    },
    /// Not stored; the sender should retry later (over quota, busy).
    TemporaryFailure(Error),
    /// Not stored and never will be (no such user, too big).
    PermanentFailure(Error),
}

impl DeliveryOutcome {
    fn from_error(e: Error) -> DeliveryOutcome {
        if e.is_temporary() {
            DeliveryOutcome::TemporaryFailure(e)
        } else {
            DeliveryOutcome::PermanentFailure(e)
        }
    }
}

/// Delivers messages: one outcome per recipient, in order.
#[async_trait]
pub trait Delivery: Send + Sync + Debug {
    /// Delivers to every recipient of the request.
    async fn deliver(&self, request: &DeliveryRequest) -> Vec<DeliveryOutcome>;
}

/// The state one recipient's delivery carries through the steps.
#[derive(Debug, Clone)]
pub struct DeliveryContext {
    /// The recipient.
    pub recipient: Recipient,
    /// The envelope sender.
    pub return_path: Option<String>,
    /// The message.
    pub message: Bytes,
    /// The mailbox to file into; steps may change it. Starts as INBOX.
    pub target: MailboxName,
    /// Flags the message is filed with.
    pub flags: Flags,
    /// The recipient's quota limits, set by [`QuotaCheck`]: the filing
    /// step charges the message against them atomically with the append
    /// (`None`: no quota policy in the pipeline, nothing charged).
    pub quota: Option<QuotaLimits>,
    /// The archive copy an [`crate::archive::ArchiveStep`] made before the
    /// filing step, kept or undone by its [`DeliveryStep::finish`].
    pub archived: Option<crate::archive::ArchivedCopy>,
}

/// What a step decided.
#[derive(Debug)]
pub enum StepOutcome {
    /// Go on with the next step.
    Continue,
    /// Stop here with this outcome.
    Done(DeliveryOutcome),
}

/// One step of a [`Pipeline`].
#[async_trait]
pub trait DeliveryStep: Send + Sync + Debug {
    /// Runs the step for one recipient.
    async fn run(&self, ctx: &mut DeliveryContext) -> Result<StepOutcome>;

    /// Called once the recipient's outcome is known, on every step that
    /// ran (the last first), with whether the message was delivered: a
    /// step that wrote something ahead of the filing step commits or undoes
    /// it here. The default does nothing.
    async fn finish(&self, ctx: &DeliveryContext, delivered: bool) {
        let _ = (ctx, delivered);
    }
}

/// A [`Delivery`] made of steps.
#[derive(Debug, Clone, Default)]
pub struct Pipeline {
    steps: Vec<Arc<dyn DeliveryStep>>,
}

impl Pipeline {
    /// An empty pipeline (which delivers nothing: add a [`FileInto`] last).
    pub fn new() -> Pipeline {
        Pipeline::default()
    }

    /// The standard pipeline: account check, quota check, plus-address
    /// folder choice, filing.
    pub fn standard(storage: Arc<dyn Storage>, quota: Arc<dyn Quota>) -> Pipeline {
        Pipeline::new()
            .step(QuotaCheck::new(quota))
            .step(FileInto::new(storage))
    }

    /// The standard pipeline with archive journaling: quota check, the
    /// [`crate::archive::ArchiveStep`], filing (the ordering rule of
    /// [`crate::archive`]).
    pub fn with_archive(
        storage: Arc<dyn Storage>,
        quota: Arc<dyn Quota>,
        journal: Arc<crate::archive::ArchiveJournal>,
    ) -> Pipeline {
        Pipeline::new()
            .step(QuotaCheck::new(quota))
            .step(crate::archive::ArchiveStep::new(journal))
            .step(FileInto::new(storage))
    }

    /// Adds a step at the end.
    pub fn step(mut self, step: impl DeliveryStep + 'static) -> Pipeline {
        self.steps.push(Arc::new(step));
        self
    }

    /// Inserts a step at position `index` (clamped to the end).
    pub fn insert_step(mut self, index: usize, step: impl DeliveryStep + 'static) -> Pipeline {
        let index = index.min(self.steps.len());
        self.steps.insert(index, Arc::new(step));
        self
    }
}

impl Pipeline {
    /// Runs the steps for one recipient.
    async fn deliver_one(&self, rcpt: &Recipient, request: &DeliveryRequest) -> DeliveryOutcome {
        let mut ctx = DeliveryContext {
            recipient: rcpt.clone(),
            return_path: request.return_path.clone(),
            message: request.message.clone(),
            target: MailboxName::inbox(),
            flags: Flags::default(),
            quota: None,
            archived: None,
        };
        let mut ran = 0;
        let mut outcome = None;
        for step in &self.steps {
            ran += 1;
            match step.run(&mut ctx).await {
                Ok(StepOutcome::Continue) => {}
                Ok(StepOutcome::Done(o)) => {
                    outcome = Some(o);
                    break;
                }
                Err(e) => {
                    tracing::warn!(user = %rcpt.user, error = %e, "delivery step failed");
                    outcome = Some(DeliveryOutcome::from_error(e));
                    break;
                }
            }
        }
        let outcome = outcome.unwrap_or_else(|| {
            DeliveryOutcome::TemporaryFailure(Error::Backend(
                "delivery pipeline has no filing step".into(),
            ))
        });
        let delivered = matches!(outcome, DeliveryOutcome::Delivered { .. });
        for step in self.steps[..ran].iter().rev() {
            step.finish(&ctx, delivered).await;
        }
        outcome
    }
}

#[async_trait]
impl Delivery for Pipeline {
    /// Delivers to every recipient at once (each through every step), so
    /// the copies of a message to several users are made durable together
    /// rather than one after the other; the outcomes come back in the
    /// recipients' order. The message bytes are shared, never copied.
    async fn deliver(&self, request: &DeliveryRequest) -> Vec<DeliveryOutcome> {
        futures::future::join_all(
            request
                .recipients
                .iter()
                .map(|rcpt| self.deliver_one(rcpt, request)),
        )
        .await
    }
}

/// Puts the recipient under their quota: looks up their limits for the
/// filing step, which charges the message against them in the same atomic
/// step as the append (so concurrent deliveries never overshoot). Over
/// quota, delivery fails temporarily ([`Error::OverQuota`], LMTP `452
/// 4.2.2`), so the MTA keeps the message and retries.
#[derive(Debug, Clone)]
pub struct QuotaCheck {
    quota: Arc<dyn Quota>,
}

impl QuotaCheck {
    /// A quota check against `quota`.
    pub fn new(quota: Arc<dyn Quota>) -> QuotaCheck {
        QuotaCheck { quota }
    }
}

#[async_trait]
impl DeliveryStep for QuotaCheck {
    async fn run(&self, ctx: &mut DeliveryContext) -> Result<StepOutcome> {
        let root = self.quota.root_of(&ctx.recipient.user);
        ctx.quota = Some(self.quota.limits(&root).await?);
        Ok(StepOutcome::Continue)
    }
}

/// Files the message into the target mailbox (the `+detail` folder when the
/// recipient used a plus address and that folder exists, else INBOX).
#[derive(Debug, Clone)]
pub struct FileInto {
    storage: Arc<dyn Storage>,
}

impl FileInto {
    /// Files into `storage`.
    pub fn new(storage: Arc<dyn Storage>) -> FileInto {
        FileInto { storage }
    }
}

#[async_trait]
impl DeliveryStep for FileInto {
    async fn run(&self, ctx: &mut DeliveryContext) -> Result<StepOutcome> {
        let user = &ctx.recipient.user;
        if ctx.recipient.detail.is_some() && ctx.target.is_inbox() {
            self.storage.ensure_account(user).await?;
            if let Some(name) = ctx
                .recipient
                .detail
                .as_deref()
                .and_then(|d| MailboxName::new(d).ok())
                && self
                    .storage
                    .list(user)
                    .await?
                    .iter()
                    .any(|m| m.name == name)
            {
                ctx.target = name;
            }
        }
        let mailbox = MailboxRef::new(user.clone(), ctx.target.clone());
        let mut created = false;
        let appended = loop {
            let message = NewMessage {
                flags: ctx.flags.clone(),
                internal_date: Some(InternalDate::now()),
                content: ctx.message.clone(),
            };
            let result = match ctx.quota.filter(|l| !l.is_unlimited()) {
                Some(limits) => {
                    self.storage
                        .append_within_quota(&mailbox, message, limits)
                        .await
                }
                None => self.storage.append(&mailbox, message).await,
            };
            match result {
                // the first delivery to a user makes their account (and
                // INBOX); every later one goes straight to the append
                Err(Error::NoSuchMailbox(_)) if !created && ctx.target.is_inbox() => {
                    self.storage.ensure_account(user).await?;
                    created = true;
                }
                Err(Error::OverQuota) => {
                    return Ok(StepOutcome::Done(DeliveryOutcome::TemporaryFailure(
                        Error::OverQuota,
                    )));
                }
                other => break other?,
            }
        };
        Ok(StepOutcome::Done(DeliveryOutcome::Delivered {
            mailbox: ctx.target.clone(),
            uid: appended.uid,
        }))
    }
}
