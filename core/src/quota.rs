//! The `Quota` trait (RFC 9208 resources STORAGE and MESSAGE).

use std::fmt::Debug;

use async_trait::async_trait;

use crate::error::Result;

/// Limits of one quota root; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuotaLimits {
    /// STORAGE limit in bytes.
    pub storage_bytes: Option<u64>,
    /// MESSAGE limit (number of messages).
    pub messages: Option<u64>,
}

/// Usage and limits of one quota root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaUsage {
    /// The root's name (Mailroom has one root per user, named after the user).
    pub root: String,
    /// Bytes used by all messages under the root.
    pub storage_bytes: u64,
    /// Messages under the root.
    pub messages: u64,
    /// The limits.
    pub limits: QuotaLimits,
}

impl QuotaLimits {
    /// No limit on either resource.
    pub const UNLIMITED: QuotaLimits = QuotaLimits {
        storage_bytes: None,
        messages: None,
    };

    /// Whether neither resource is limited.
    pub fn is_unlimited(&self) -> bool {
        self.storage_bytes.is_none() && self.messages.is_none()
    }

    /// Whether `used_bytes` in `used_messages` messages, plus `bytes` more
    /// in `messages` more, stay within the limits.
    pub fn allow(&self, used_bytes: u64, used_messages: u64, bytes: u64, messages: u64) -> bool {
        self.storage_bytes
            .is_none_or(|l| used_bytes.saturating_add(bytes) <= l)
            && self
                .messages
                .is_none_or(|l| used_messages.saturating_add(messages) <= l)
    }
}

impl QuotaUsage {
    /// Whether adding `bytes` in `messages` more messages stays within the limits.
    pub fn allows(&self, bytes: u64, messages: u64) -> bool {
        self.limits
            .allow(self.storage_bytes, self.messages, bytes, messages)
    }
}

/// Quota roots, limits and usage. Usage must be exact: a backend that
/// rebuilds its data recomputes it from scratch, never adds to an old figure.
///
/// Enforcement is not done here but by the store, in the same atomic step
/// as the write: [`crate::Storage::append_within_quota`] and
/// [`crate::Mailbox::copy_to_within_quota`] take the [`QuotaLimits`] this
/// trait hands out ([`Quota::limits`]) and fail with
/// [`crate::Error::OverQuota`], storing nothing, when the write would take
/// the owner's usage past them. A separate check followed by a write
/// ([`Quota::check`]) cannot do that: two concurrent writes can both pass
/// the check and together overshoot.
#[async_trait]
pub trait Quota: Send + Sync + Debug {
    /// The quota root that governs the mailboxes of `owner`.
    fn root_of(&self, owner: &str) -> String {
        owner.to_owned()
    }

    /// Usage and limits of a root.
    async fn usage(&self, root: &str) -> Result<QuotaUsage>;

    /// Sets the limits of a root.
    async fn set_limits(&self, root: &str, limits: QuotaLimits) -> Result<()>;

    /// The limits of a root, without counting its usage (what a charged
    /// append needs; cheaper than [`Quota::usage`] on stores that must add
    /// up every mailbox).
    async fn limits(&self, root: &str) -> Result<QuotaLimits> {
        Ok(self.usage(root).await?.limits)
    }

    /// Fails with [`crate::Error::OverQuota`] if `bytes` more in `messages`
    /// more messages would exceed the quota of `owner` now. Advisory only (a
    /// report, or an early refusal): it charges nothing, so concurrent
    /// writes that all pass it can together exceed the limits. Writes are
    /// charged by the store (see the trait documentation).
    async fn check(&self, owner: &str, bytes: u64, messages: u64) -> Result<()> {
        let usage = self.usage(&self.root_of(owner)).await?;
        if usage.allows(bytes, messages) {
            Ok(())
        } else {
            Err(crate::Error::OverQuota)
        }
    }
}
