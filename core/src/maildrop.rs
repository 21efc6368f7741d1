//! The POP3 maildrop lock (RFC 1939 §8): one POP3 session per maildrop at a
//! time, because POP3 numbers messages for the whole session and deletes at
//! QUIT, so two sessions on one maildrop would fight over numbers and
//! deletions. IMAP sessions do not take it: they coexist.
//!
//! The lock belongs to the store ([`crate::Storage::lock_maildrop`]), so
//! that every listener and every server over one store, and a store shared
//! by several processes, agree on who holds it. It is an owned guard:
//! released when dropped (QUIT, or the connection closing for any reason,
//! a write timeout included).
//!
//! [`MaildropLocks`] is the in-process table a store without a shared
//! medium (the memory store) can use.
//!
//! ```
//! use mailroom_core::maildrop::MaildropLocks;
//!
//! let locks = MaildropLocks::default();
//! let held = locks.try_lock("alice@example.com").unwrap();
//! assert!(locks.try_lock("alice@example.com").is_err(), "one session at a time");
//! assert!(locks.try_lock("bob@example.com").is_ok());
//! drop(held);
//! assert!(locks.try_lock("alice@example.com").is_ok());
//! ```

use std::any::Any;
use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

/// A held maildrop lock; dropping it releases the lock.
pub struct MaildropLock {
    _guard: Box<dyn Any + Send + Sync>,
}

impl MaildropLock {
    /// A lock held as long as `guard` lives (a locked file, a table entry
    /// removed on drop): what a backend's
    /// [`lock_maildrop`](crate::Storage::lock_maildrop) returns.
    pub fn new<G: Send + Sync + 'static>(guard: G) -> MaildropLock {
        MaildropLock {
            _guard: Box::new(guard),
        }
    }
}

impl fmt::Debug for MaildropLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaildropLock").finish_non_exhaustive()
    }
}

/// The error a store returns when another session holds the lock: temporary
/// (the other session will end), not the server's fault. POP3 answers
/// `-ERR [IN-USE]`.
pub fn in_use() -> Error {
    Error::Busy("maildrop in use by another POP3 session".into())
}

/// An in-process table of held maildrop locks, keyed by user. Cheap to
/// clone; clones share the table.
#[derive(Debug, Clone, Default)]
pub struct MaildropLocks {
    held: Arc<Mutex<HashSet<String>>>,
}

impl MaildropLocks {
    /// Takes `user`'s lock.
    ///
    /// # Errors
    ///
    /// [`in_use`] if it is held.
    pub fn try_lock(&self, user: &str) -> Result<MaildropLock> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if !held.insert(user.to_owned()) {
            return Err(in_use());
        }
        Ok(MaildropLock::new(Entry {
            held: self.held.clone(),
            user: user.to_owned(),
        }))
    }
}

/// A table entry, removed when dropped.
struct Entry {
    held: Arc<Mutex<HashSet<String>>>,
    user: String,
}

impl Drop for Entry {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.remove(&self.user);
    }
}
