//! Stored passwords: argon2id PHC strings, the SCRAM-SHA-256 verifier of
//! the same password, and [`HashPool`], the few dedicated threads every
//! argon2 hash and verification of a process runs on.
//!
//! One module for every place that keeps passwords (mailroomd's users
//! file, the users table of the PostgreSQL store, the `auth-sqlite`
//! plugin), so they hash alike and a hash moves between them.
//!
//! Passwords are SASLprepared (RFC 4013, [`crate::sasl::saslprep`]) before
//! they are hashed or verified, with argon2 as with SCRAM, so a password
//! logs in whichever way its client composes it; one that SASLprep refuses
//! cannot be set ([`PasswordError::Prohibited`]). A non-ASCII password set
//! before preparation was added was hashed as typed: if SASLprep changes it
//! (a decomposed accent, a no-break space), it no longer matches and must be
//! set again.
//!
//! ## Why a pool of its own
//!
//! One argon2 computation at the default parameters allocates 19 MiB of
//! working memory and frees it. Run on tokio's blocking pool, each of its
//! up to 512 threads may do one, and with glibc's allocator every thread
//! gets its own arena, which keeps the freed 19 MiB: measured with
//! heaptrack on `mailroomd serve` (60 users logging in once), the heap
//! never held more than 20 MiB, yet the process's USS grew by 552 MiB, in
//! arenas of 19 to 58 MiB each (issue 7). So the computations run on
//! [`HashPool::default_threads`] dedicated threads (at most 4), fed through
//! a queue that at most that many callers enter at once: the working memory
//! lives in that many places at most, whatever the login rate.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use mailroom_core::password::{HashPool, hash_password};
//!
//! let pool = HashPool::new(1).unwrap();
//! let stored = pool.hash("correct horse").await.unwrap();
//! assert!(stored.phc.starts_with("$argon2id$"));
//! assert!(pool.verify("correct horse", stored.phc.clone()).await);
//! assert!(!pool.verify("wrong", stored.phc).await);
//! # let _ = hash_password; }
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use tokio::sync::Semaphore;

use crate::sasl::ScramCredentials;
use crate::sasl::saslprep::{self, SaslprepError};

/// The longest accepted password, in bytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A password that cannot be stored, or a hash that could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// The password is not acceptable (the caller's fault).
    #[error("invalid password: {0}")]
    Invalid(&'static str),
    /// SASLprep (RFC 4013) refuses the password (the caller's fault): a
    /// control, private-use, unassigned or display-changing character, or
    /// right-to-left text mixed with left-to-right. The message names the
    /// reason, never the password.
    #[error("invalid password: {0}")]
    Prohibited(#[from] SaslprepError),
    /// Hashing failed (the server's side; not expected with the defaults),
    /// or the hashing threads are gone.
    #[error("password hashing failed: {0}")]
    Hash(String),
}

impl PasswordError {
    /// Whether the server rather than the caller's input is at fault.
    pub fn is_server_fault(&self) -> bool {
        matches!(self, PasswordError::Hash(_))
    }
}

/// Checks that a password can be stored and presented over IMAP/POP3 SASL:
/// 1 to [`MAX_PASSWORD_BYTES`] bytes, no NUL, CR or LF, and accepted by
/// SASLprep ([`crate::sasl::saslprep::prepare_stored`]).
pub fn check_password(password: &str) -> Result<(), PasswordError> {
    if password.is_empty() {
        return Err(PasswordError::Invalid("empty"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::Invalid("longer than 1024 bytes"));
    }
    if password.contains(['\0', '\r', '\n']) {
        return Err(PasswordError::Invalid("contains NUL, CR or LF"));
    }
    saslprep::prepare_stored(password)?;
    Ok(())
}

/// What is kept of a password: the argon2 PHC string and the SCRAM-SHA-256
/// verifier. `Debug` shows neither.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StoredPassword {
    /// The argon2id PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`).
    pub phc: String,
    /// [`ScramCredentials::to_text`] of the same password (`None` for an
    /// entry stored before verifiers were kept: it logs in with every
    /// mechanism but SCRAM).
    pub scram: Option<String>,
}

impl fmt::Debug for StoredPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoredPassword(<hashes>)")
    }
}

/// Hashes a password with argon2id (default parameters, random salt) into a
/// PHC string, on the calling thread (see [`HashPool`] for where to call it).
/// What is hashed is the SASLprepared password (refused if SASLprep refuses
/// it), as [`verify_password`] prepares what a client presents.
pub fn hash_argon2(password: &str) -> Result<String, PasswordError> {
    check_password(password)?;
    let password = saslprep::prepare_stored(password)?;
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// [`hash_argon2`] and the SCRAM-SHA-256 verifier of the same password
/// (random salt, 4096 iterations), on the calling thread.
pub fn hash_password(password: &str) -> Result<StoredPassword, PasswordError> {
    let phc = hash_argon2(password)?;
    Ok(StoredPassword {
        phc,
        scram: Some(ScramCredentials::generate(password).to_text()),
    })
}

/// Verifies a password against a PHC string (with the parameters in the
/// string), on the calling thread. A malformed string verifies nothing. The
/// password is SASLprepared first ([`saslprep::prepare_query`]: as given
/// if SASLprep refuses it).
pub fn verify_password(password: &str, phc: &str) -> bool {
    let password = saslprep::prepare_query(password);
    match PasswordHash::new(phc) {
        Ok(hash) => Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
}

/// Whether `text` is a PHC hash string (what a stored `password` must be).
pub fn is_phc(text: &str) -> bool {
    PasswordHash::new(text).is_ok()
}

type Job = Box<dyn FnOnce() + Send>;

/// A few dedicated threads that run password hashing (see the module docs):
/// at most as many computations run, or wait in its queue, as it has
/// threads. Cheap to clone; the threads end when the last clone is dropped.
#[derive(Clone)]
pub struct HashPool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    jobs: Mutex<std::sync::mpsc::Sender<Job>>,
    /// Bounds the computations queued for or running on the threads to
    /// their number, so a login storm waits here (async) and the queue
    /// never grows.
    slots: Semaphore,
    verifications: AtomicU64,
    dummy: OnceLock<String>,
}

impl fmt::Debug for HashPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashPool")
            .field("verifications", &self.verifications())
            .finish_non_exhaustive()
    }
}

impl HashPool {
    /// How many threads a pool should have: the CPUs, at most 4 (each may
    /// keep one computation's 19 MiB of working memory in its allocator
    /// arena).
    pub fn default_threads() -> usize {
        std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4))
    }

    /// Starts `threads` threads (at least one), named `mailroom-argon2-N`.
    pub fn new(threads: usize) -> Result<HashPool, PasswordError> {
        let threads = threads.max(1);
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("mailroom-argon2-{i}"))
                // argon2's working memory is on the heap, not the stack
                .stack_size(256 * 1024)
                .spawn(move || {
                    loop {
                        let job = {
                            let Ok(rx) = rx.lock() else { return };
                            rx.recv()
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|e| PasswordError::Hash(format!("cannot start a hashing thread: {e}")))?;
        }
        Ok(HashPool {
            inner: Arc::new(PoolInner {
                jobs: Mutex::new(tx),
                slots: Semaphore::new(threads),
                verifications: AtomicU64::new(0),
                dummy: OnceLock::new(),
            }),
        })
    }

    /// The process's shared pool of [`HashPool::default_threads`] threads,
    /// started at the first call (for code without a pool of its own, such
    /// as a plugin).
    pub fn shared() -> Result<HashPool, PasswordError> {
        static SHARED: OnceLock<HashPool> = OnceLock::new();
        if let Some(pool) = SHARED.get() {
            return Ok(pool.clone());
        }
        let pool = HashPool::new(HashPool::default_threads())?;
        Ok(SHARED.get_or_init(|| pool).clone())
    }

    /// How many verifications ran (cache misses, failures and unknown users
    /// of the callers), for tests and metrics.
    pub fn verifications(&self) -> u64 {
        self.inner.verifications.load(Ordering::Relaxed)
    }

    fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<std::sync::mpsc::Receiver<T>> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        self.inner.jobs.lock().ok()?.send(job).ok()?;
        Some(rx)
    }

    /// Runs `f` on a hashing thread once a slot is free; `None` if the pool
    /// is gone.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let _slot = self.inner.slots.acquire().await.ok()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        self.inner.jobs.lock().ok()?.send(job).ok()?;
        rx.await.ok()
    }

    /// Runs `f` on a hashing thread and blocks the calling thread until it
    /// is done (for synchronous callers, such as a plugin's functions that
    /// the host runs on its blocking pool): the computation's memory stays
    /// on the pool's threads. `None` if the pool is gone.
    pub fn run_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        self.submit(f)?.recv().ok()
    }

    /// Verifies `password` against the PHC string `phc` on the pool.
    pub async fn verify(&self, password: &str, phc: String) -> bool {
        self.inner.verifications.fetch_add(1, Ordering::Relaxed);
        let password = password.to_owned();
        self.run(move || verify_password(&password, &phc))
            .await
            .unwrap_or(false)
    }

    /// [`HashPool::verify`] for synchronous callers.
    pub fn verify_blocking(&self, password: &str, phc: &str) -> bool {
        self.inner.verifications.fetch_add(1, Ordering::Relaxed);
        let (password, phc) = (password.to_owned(), phc.to_owned());
        self.run_blocking(move || verify_password(&password, &phc))
            .unwrap_or(false)
    }

    /// Hashes a password ([`hash_password`]) on the pool.
    pub async fn hash(&self, password: &str) -> Result<StoredPassword, PasswordError> {
        check_password(password)?;
        let password = password.to_owned();
        self.run(move || hash_password(&password))
            .await
            .unwrap_or_else(|| Err(PasswordError::Hash("the hashing threads are gone".into())))
    }

    /// Burns one verification against a dummy hash, so that an unknown user
    /// takes as long as a wrong password.
    pub async fn verify_dummy(&self, password: &str) {
        let dummy = match self.inner.dummy.get() {
            Some(d) => d.clone(),
            None => {
                let made = self
                    .run(|| hash_argon2("mailroom dummy").unwrap_or_default())
                    .await
                    .unwrap_or_default();
                self.inner.dummy.get_or_init(|| made).clone()
            }
        };
        let _ = self.verify(password, dummy).await;
    }

    /// [`HashPool::verify_dummy`] for synchronous callers.
    pub fn verify_dummy_blocking(&self, password: &str) {
        let dummy = match self.inner.dummy.get() {
            Some(d) => d.clone(),
            None => {
                let made = self
                    .run_blocking(|| hash_argon2("mailroom dummy").unwrap_or_default())
                    .unwrap_or_default();
                self.inner.dummy.get_or_init(|| made).clone()
            }
        };
        let _ = self.verify_blocking(password, &dummy);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check() {
        assert!(check_password("s3cret with space").is_ok());
        for bad in ["", "a\0b", "a\rb", "a\nb"] {
            assert!(check_password(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            check_password("bell\u{7}"),
            Err(PasswordError::Prohibited(_))
        ));
        assert!(check_password(&"a".repeat(MAX_PASSWORD_BYTES)).is_ok());
        assert!(check_password(&"a".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
        assert!(!PasswordError::Invalid("x").is_server_fault());
    }

    #[test]
    fn hash_and_verify() {
        let stored = hash_password("correct horse").unwrap();
        assert!(!format!("{stored:?}").contains("argon2id"));
        let scram = ScramCredentials::parse(stored.scram.as_deref().unwrap()).unwrap();
        assert_eq!(
            scram,
            ScramCredentials::derive("correct horse", &scram.salt, scram.iterations)
        );
        let h = stored.phc;
        assert!(h.starts_with("$argon2id$") && is_phc(&h));
        assert!(!h.contains("correct"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("correct horse", "not a hash"));
        assert!(!is_phc("not a hash"));
        assert_ne!(h, hash_argon2("correct horse").unwrap(), "salts are random");
        assert!(hash_password("").is_err());
    }

    /// A password set in one Unicode form verifies in another, with argon2
    /// as with SCRAM; one SASLprep refuses cannot be set.
    #[test]
    fn passwords_are_saslprepared() {
        let stored = hash_password("pa\u{0308}ss\u{00A0}word").unwrap();
        assert!(verify_password("p\u{00E4}ss word", &stored.phc));
        assert!(verify_password("pa\u{0308}ss\u{00A0}word", &stored.phc));
        assert!(!verify_password("pass word", &stored.phc));
        let scram = ScramCredentials::parse(stored.scram.as_deref().unwrap()).unwrap();
        assert_eq!(
            scram,
            ScramCredentials::derive("p\u{00E4}ss word", &scram.salt, scram.iterations)
        );
        let err = hash_password("private \u{E000}").unwrap_err();
        assert!(!err.is_server_fault());
        assert!(
            err.to_string().starts_with(
                "invalid password: SASLprep (RFC 4013) refuses it: prohibited character"
            ),
            "{err}"
        );
        assert!(!err.to_string().contains("private"), "{err}");
    }

    #[tokio::test]
    async fn pool_runs_on_its_threads_and_counts() {
        let pool = HashPool::new(2).unwrap();
        let name = pool
            .run(|| std::thread::current().name().map(str::to_owned))
            .await
            .flatten()
            .unwrap();
        assert!(name.starts_with("mailroom-argon2-"), "{name}");
        let blocking = pool
            .run_blocking(|| std::thread::current().name().map(str::to_owned))
            .flatten()
            .unwrap();
        assert!(blocking.starts_with("mailroom-argon2-"), "{blocking}");

        let stored = pool.hash("pw").await.unwrap();
        assert!(pool.verify("pw", stored.phc.clone()).await);
        assert!(!pool.verify_blocking("nope", &stored.phc));
        pool.verify_dummy("pw").await;
        pool.verify_dummy_blocking("pw");
        assert_eq!(pool.verifications(), 4);
        assert!(matches!(
            pool.hash("a\nb").await,
            Err(PasswordError::Invalid(_))
        ));
    }

    /// At most as many computations run at once as the pool has threads,
    /// however many callers wait.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pool_bounds_concurrency() {
        let pool = HashPool::new(2).unwrap();
        let running = Arc::new(AtomicU64::new(0));
        let peak = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..12 {
            let (pool, running, peak) = (pool.clone(), running.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    let _ = hash_argon2("x");
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), Some(()));
        }
        let peak = peak.load(Ordering::SeqCst);
        assert!((1..=2).contains(&peak), "peak {peak}");
    }
}
