//! The maildrop lock: one POP3 session per maildrop (RFC 1939 §8, `[IN-USE]`).
//!
//! POP3 numbers messages for the whole session and deletes at QUIT, so two
//! sessions on one maildrop would fight over numbers and deletions. The lock
//! lives in a process-wide registry keyed by the store (its `Arc` address) and
//! the owner, so every listener and every [`crate::Pop3Server`] in the process
//! over the same store share it. IMAP sessions do not take it: they coexist.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex};

use mailroom_core::Storage;

type Key = (usize, String);

static HELD: LazyLock<Mutex<HashSet<Key>>> = LazyLock::new(|| Mutex::new(HashSet::new()));

/// A held maildrop lock; released when dropped (QUIT, or the connection closing).
#[derive(Debug)]
pub(crate) struct MaildropLock {
    key: Key,
}

impl MaildropLock {
    /// Takes the lock on `owner`'s maildrop in `storage`, or `None` if
    /// another session holds it.
    pub(crate) fn acquire(storage: &Arc<dyn Storage>, owner: &str) -> Option<MaildropLock> {
        let key = (Arc::as_ptr(storage).cast::<()>() as usize, owner.to_owned());
        let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
        // Build the guard only on success: dropping a guard releases the key
        // (and re-locks the registry).
        if held.insert(key.clone()) {
            Some(MaildropLock { key })
        } else {
            None
        }
    }
}

impl Drop for MaildropLock {
    fn drop(&mut self) {
        let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
        held.remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquire_fails_without_releasing_the_first() {
        let storage: Arc<dyn Storage> = Arc::new(mailroom_store_memory::MemoryStore::new());
        let first = MaildropLock::acquire(&storage, "u").unwrap();
        assert!(MaildropLock::acquire(&storage, "u").is_none());
        assert!(MaildropLock::acquire(&storage, "u").is_none(), "still held");
        assert!(MaildropLock::acquire(&storage, "v").is_some());
        drop(first);
        assert!(MaildropLock::acquire(&storage, "u").is_some());
    }
}
