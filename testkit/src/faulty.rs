//! [`FaultyStore`]: a store whose appends to some owners fail on demand.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use mailroom_core::storage::Delegate;
use mailroom_core::{Appended, Error, MailboxRef, NewMessage, QuotaLimits, Result, Storage};

/// Wraps any store and, while failing is switched on, refuses every
/// uncharged append (`append`, `append_all`) into a mailbox whose owner
/// starts with the given prefix, with [`Error::Busy`]: a write fault
/// injected through the store traits (tests run as root, so file
/// permissions would stop nothing). Everything else, charged appends
/// included, goes to the wrapped store ([`Delegate`]).
#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn Storage>,
    owner_prefix: String,
    fail: AtomicBool,
}

impl FaultyStore {
    /// `inner`, with appends to owners starting with `owner_prefix` failing
    /// once [`FaultyStore::set_failing`] switches faults on (off at first).
    pub fn new(inner: Arc<dyn Storage>, owner_prefix: &str) -> FaultyStore {
        FaultyStore {
            inner,
            owner_prefix: owner_prefix.to_owned(),
            fail: AtomicBool::new(false),
        }
    }

    /// Switches the fault on or off.
    pub fn set_failing(&self, fail: bool) {
        self.fail.store(fail, Ordering::SeqCst);
    }

    fn check(&self, mailbox: &MailboxRef) -> Result<()> {
        if self.fail.load(Ordering::SeqCst) && mailbox.owner.starts_with(&self.owner_prefix) {
            return Err(Error::Busy("injected write failure".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl Delegate for FaultyStore {
    fn inner(&self) -> &dyn Storage {
        &*self.inner
    }
    async fn append(&self, mailbox: &MailboxRef, message: NewMessage) -> Result<Appended> {
        self.check(mailbox)?;
        self.inner.append(mailbox, message).await
    }
    async fn append_all(
        &self,
        mailbox: &MailboxRef,
        messages: Vec<NewMessage>,
        limits: Option<QuotaLimits>,
    ) -> Result<Vec<Appended>> {
        if limits.is_none() {
            self.check(mailbox)?;
        }
        self.inner.append_all(mailbox, messages, limits).await
    }
}
