//! The POP3 maildrop lock of the CRC store: an exclusive `flock` on
//! `users/<user>/pop3.lock` (an empty file, created on first use and left in
//! place). The kernel releases the lock when the file is closed, that is
//! when the [`MaildropLock`] is dropped or the process dies, so a crash
//! never leaves a maildrop locked; and `flock` locks belong to the open
//! file, so two sessions in one process exclude each other just as two
//! processes do.

use std::fs::{File, OpenOptions, TryLockError};

use mailroom_core::Result;
use mailroom_core::maildrop::{self, MaildropLock};

use crate::store::StoreInner;

/// The lock file's name in the user's directory.
pub(crate) const LOCK_FILE: &str = "pop3.lock";

impl StoreInner {
    /// Takes `user`'s maildrop lock, or [`maildrop::in_use`].
    pub(crate) fn lock_maildrop(&self, user: &str) -> Result<MaildropLock> {
        let dir = self.user_dir(user);
        std::fs::create_dir_all(&dir)?;
        let file: File = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))?;
        match file.try_lock() {
            Ok(()) => Ok(MaildropLock::new(file)),
            Err(TryLockError::WouldBlock) => Err(maildrop::in_use()),
            Err(TryLockError::Error(e)) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use mailroom_core::Storage;

    use crate::CrcStore;

    #[tokio::test]
    async fn one_holder_at_a_time_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let store = CrcStore::open(dir.path(), crate::CrcOptions::default()).unwrap();
        store.ensure_account("alice@example.com").await.unwrap();
        let held = store.lock_maildrop("alice@example.com").await.unwrap();
        let again = store.lock_maildrop("alice@example.com").await.unwrap_err();
        assert!(matches!(again, mailroom_core::Error::Busy(_)), "{again}");
        assert!(store.lock_maildrop("bob@example.com").await.is_ok());
        drop(held);
        assert!(store.lock_maildrop("alice@example.com").await.is_ok());
    }
}
