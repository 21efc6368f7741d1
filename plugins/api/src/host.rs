//! The async host side: plugins as [`Authenticator`] and [`BillingSink`]
//! trait objects.
//!
//! Plugin calls block (argon2, SQLite with `fsync`), so they run on tokio's
//! blocking pool, never on an async worker. Each plugin instance allows at
//! most [`CallLimits::concurrency`] calls at once (the rest queue), and a
//! call that does not finish within [`CallLimits::timeout`] (queueing
//! included) fails with [`PluginError::Timeout`] while its thread is left
//! to finish; its slot stays taken until it does, so a hung plugin cannot
//! pile up threads beyond the bound.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mailroom_core::sasl::ScramCredentials;
use mailroom_core::{Authenticator, Credentials, Error, Mechanism, Principal};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::abi::PluginKind;
use crate::billing::{ArchiveEvent, BillingMonth, BillingReport, BillingSink, Recorded};
use crate::error::{FailureKind, PluginError};
use crate::loader::{AuthPluginHandle, BillingPluginHandle, PluginInfo, PluginLibrary};

/// Bounds on the calls from async code into one plugin instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    /// The most calls running at once; more wait for a slot.
    pub concurrency: usize,
    /// The longest a call may take, waiting for a slot included.
    pub timeout: Duration,
}

impl Default for CallLimits {
    /// One call per CPU, ten seconds.
    fn default() -> CallLimits {
        CallLimits {
            concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Runs blocking plugin calls under [`CallLimits`].
struct BlockingCalls {
    slots: Arc<Semaphore>,
    limits: CallLimits,
    label: String,
}

impl BlockingCalls {
    fn new(limits: CallLimits, label: String) -> BlockingCalls {
        BlockingCalls {
            slots: Arc::new(Semaphore::new(limits.concurrency.max(1))),
            limits,
            label,
        }
    }

    async fn run<T, F>(&self, function: &'static str, call: F) -> Result<T, PluginError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, PluginError> + Send + 'static,
    {
        let deadline = Instant::now() + self.limits.timeout;
        let timed_out = || PluginError::Timeout {
            plugin: self.label.clone(),
            function,
            after: self.limits.timeout,
        };
        let shutting_down = || PluginError::ShuttingDown {
            plugin: self.label.clone(),
            function,
        };
        let permit = tokio::time::timeout_at(deadline, Arc::clone(&self.slots).acquire_owned())
            .await
            .map_err(|_| timed_out())?
            .map_err(|_| shutting_down())?;
        let task = tokio::task::spawn_blocking(move || {
            let _slot = permit;
            call()
        });
        match tokio::time::timeout_at(deadline, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) if join.is_panic() => Err(PluginError::Panicked {
                plugin: self.label.clone(),
                function,
                message: "the host's call glue panicked".into(),
            }),
            Ok(Err(_)) => Err(shutting_down()),
            Err(_) => Err(timed_out()),
        }
    }
}

impl fmt::Debug for BlockingCalls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingCalls")
            .field("limits", &self.limits)
            .field("free_slots", &self.slots.available_permits())
            .finish()
    }
}

/// An auth plugin as an [`Authenticator`].
///
/// Failures map onto [`mailroom_core::Error`]: wrong credentials (and
/// malformed names) are [`Error::AuthFailed`]; temporary failures and
/// timeouts are [`Error::Busy`]; a panic or any other plugin failure is
/// [`Error::Backend`], logged with the plugin's message (never a password).
#[derive(Debug)]
pub struct PluginAuthenticator {
    handle: Arc<AuthPluginHandle>,
    calls: BlockingCalls,
}

impl PluginAuthenticator {
    /// Loads the auth plugin at `path` and initializes it with `settings`
    /// (blocks: call it at startup).
    pub fn load(
        path: impl AsRef<Path>,
        settings: &str,
        limits: CallLimits,
    ) -> Result<Self, PluginError> {
        let library = Arc::new(PluginLibrary::load(path, PluginKind::Auth)?);
        let handle = AuthPluginHandle::new(library, settings)?;
        Ok(PluginAuthenticator::new(handle, limits))
    }

    /// Wraps an initialized handle.
    pub fn new(handle: AuthPluginHandle, limits: CallLimits) -> PluginAuthenticator {
        let label = handle.info().label();
        PluginAuthenticator {
            handle: Arc::new(handle),
            calls: BlockingCalls::new(limits, label),
        }
    }

    /// What the plugin says about itself.
    pub fn info(&self) -> &PluginInfo {
        self.handle.info()
    }
}

fn to_core_error(error: PluginError) -> Error {
    match &error {
        PluginError::Call {
            kind: FailureKind::AuthFailed | FailureKind::InvalidInput,
            message,
            ..
        } => {
            tracing::debug!(reason = %message, "auth plugin refused the credentials");
            Error::AuthFailed
        }
        _ if error.is_temporary() => {
            tracing::warn!(error = %error, "auth plugin temporarily failed");
            Error::Busy(error.to_string())
        }
        _ => {
            tracing::error!(error = %error, "auth plugin failed");
            Error::Backend(error.to_string())
        }
    }
}

#[async_trait]
impl Authenticator for PluginAuthenticator {
    async fn authenticate(&self, credentials: &Credentials) -> mailroom_core::Result<Principal> {
        let handle = Arc::clone(&self.handle);
        let credentials = credentials.clone();
        self.calls
            .run("authenticate", move || handle.authenticate(&credentials))
            .await
            .map_err(to_core_error)
    }

    /// PLAIN and LOGIN; SCRAM-SHA-256 and -PLUS too when the plugin exports
    /// the SCRAM extension.
    fn mechanisms(&self) -> Vec<Mechanism> {
        let mut m = vec![Mechanism::Plain, Mechanism::Login];
        if self.handle.offers_scram() {
            m.extend([Mechanism::ScramSha256, Mechanism::ScramSha256Plus]);
        }
        m
    }

    async fn scram_credentials(
        &self,
        user: &str,
    ) -> mailroom_core::Result<Option<ScramCredentials>> {
        if !self.handle.offers_scram() {
            return Ok(None);
        }
        let handle = Arc::clone(&self.handle);
        let user = user.to_owned();
        match self
            .calls
            .run("scram_credentials", move || handle.scram_credentials(&user))
            .await
        {
            Ok(found) => Ok(found),
            // A name the plugin cannot parse names no user.
            Err(PluginError::Call {
                kind: FailureKind::InvalidInput | FailureKind::AuthFailed,
                ..
            }) => Ok(None),
            Err(e) => Err(to_core_error(e)),
        }
    }

    async fn authorize(
        &self,
        authcid: &str,
        authzid: Option<&str>,
    ) -> mailroom_core::Result<Principal> {
        let handle = Arc::clone(&self.handle);
        let (authcid, authzid) = (authcid.to_owned(), authzid.map(str::to_owned));
        self.calls
            .run("authorize", move || {
                handle.authorize(&authcid, authzid.as_deref())
            })
            .await
            .map_err(to_core_error)
    }

    async fn lookup(&self, user: &str) -> mailroom_core::Result<Option<Principal>> {
        let handle = Arc::clone(&self.handle);
        let user = user.to_owned();
        match self.calls.run("lookup", move || handle.lookup(&user)).await {
            Ok(found) => Ok(found),
            // A name the plugin cannot even parse names no user.
            Err(PluginError::Call {
                kind: FailureKind::InvalidInput,
                ..
            }) => Ok(None),
            Err(e) => Err(to_core_error(e)),
        }
    }
}

/// A billing plugin as a [`BillingSink`].
#[derive(Debug)]
pub struct PluginBillingSink {
    handle: Arc<BillingPluginHandle>,
    calls: BlockingCalls,
}

impl PluginBillingSink {
    /// Loads the billing plugin at `path` and initializes it with
    /// `settings` (blocks: call it at startup).
    pub fn load(
        path: impl AsRef<Path>,
        settings: &str,
        limits: CallLimits,
    ) -> Result<Self, PluginError> {
        let library = Arc::new(PluginLibrary::load(path, PluginKind::Billing)?);
        let handle = BillingPluginHandle::new(library, settings)?;
        Ok(PluginBillingSink::new(handle, limits))
    }

    /// Wraps an initialized handle.
    pub fn new(handle: BillingPluginHandle, limits: CallLimits) -> PluginBillingSink {
        let label = handle.info().label();
        PluginBillingSink {
            handle: Arc::new(handle),
            calls: BlockingCalls::new(limits, label),
        }
    }

    /// What the plugin says about itself.
    pub fn info(&self) -> &PluginInfo {
        self.handle.info()
    }
}

#[async_trait]
impl BillingSink for PluginBillingSink {
    async fn record(&self, event: &ArchiveEvent) -> Result<Recorded, PluginError> {
        let handle = Arc::clone(&self.handle);
        let event = event.clone();
        self.calls
            .run("record", move || handle.record(&event))
            .await
    }

    async fn report(&self, month: BillingMonth) -> Result<BillingReport, PluginError> {
        let handle = Arc::clone(&self.handle);
        self.calls.run("report", move || handle.report(month)).await
    }
}

/// Loads an auth plugin as an `Arc<dyn Authenticator>` (see
/// [`PluginAuthenticator`]).
pub fn load_authenticator(
    path: impl AsRef<Path>,
    settings: &str,
    limits: CallLimits,
) -> Result<Arc<dyn Authenticator>, PluginError> {
    Ok(Arc::new(PluginAuthenticator::load(path, settings, limits)?))
}

/// Loads a billing plugin as an `Arc<dyn BillingSink>` (see
/// [`PluginBillingSink`]).
pub fn load_billing_sink(
    path: impl AsRef<Path>,
    settings: &str,
    limits: CallLimits,
) -> Result<Arc<dyn BillingSink>, PluginError> {
    Ok(Arc::new(PluginBillingSink::load(path, settings, limits)?))
}
