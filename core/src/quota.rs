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

impl QuotaUsage {
    /// Whether adding `bytes` in `messages` more messages stays within the limits.
    pub fn allows(&self, bytes: u64, messages: u64) -> bool {
        let storage_ok = self
            .limits
            .storage_bytes
            .is_none_or(|l| self.storage_bytes.saturating_add(bytes) <= l);
        let messages_ok = self
            .limits
            .messages
            .is_none_or(|l| self.messages.saturating_add(messages) <= l);
        storage_ok && messages_ok
    }
}

/// Quota roots, limits and usage. Usage must be exact: a backend that
/// rebuilds its data recomputes it from scratch, never adds to an old figure.
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

    /// Fails with [`crate::Error::OverQuota`] if `bytes` more in `messages`
    /// more messages would exceed the quota of `owner`.
    async fn check(&self, owner: &str, bytes: u64, messages: u64) -> Result<()> {
        let usage = self.usage(&self.root_of(owner)).await?;
        if usage.allows(bytes, messages) {
            Ok(())
        } else {
            Err(crate::Error::OverQuota)
        }
    }
}
