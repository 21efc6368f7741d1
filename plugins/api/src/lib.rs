//! `mailroom-plugin`: the binary interface of Mailroom's dynamic plugins and
//! the loader that checks and calls them.
//!
//! A plugin is a `cdylib` that exports one versioned declaration (see
//! [`abi`]). The loader ([`PluginLibrary::load`], on `libloading`) checks
//! its ABI version, kind and layout fingerprint before calling anything, and
//! refuses a mismatch with an error naming both versions
//! ([`PluginError::AbiMismatch`]). Two kinds exist:
//!
//! - **auth**: an [`AuthPlugin`], seen by the host as an
//!   `Arc<dyn mailroom_core::Authenticator>` ([`load_authenticator`]);
//! - **billing**: a [`BillingPlugin`] receiving archive events, seen by the
//!   host as an `Arc<dyn BillingSink>` ([`load_billing_sink`]).
//!
//! Plugin calls block, so the async wrappers run them on the blocking pool
//! under [`CallLimits`]. A panic inside a plugin is caught at the boundary
//! and becomes [`PluginError::Panicked`]; the host keeps running. Why the
//! design is sound is in [`soundness`].
//!
//! Dependencies: `libloading` (the maintained, portable `dlopen` wrapper;
//! `abi_stable` was evaluated and is unmaintained, see [`soundness`]),
//! `toml`/`serde` for plugin settings, `tokio` for the blocking pool.
//!
//! # Writing a plugin
//!
//! A plugin crate has `crate-type = ["cdylib"]`, implements the traits and
//! invokes the export macro once; it writes no `unsafe`:
//!
//! ```
//! use mailroom_core::{Credentials, Principal};
//! use mailroom_plugin::{AuthPlugin, Plugin, PluginFailure, parse_settings};
//!
//! #[derive(serde::Deserialize)]
//! struct Settings {
//!     password: String,
//! }
//!
//! struct OnePassword(String);
//!
//! impl Plugin for OnePassword {
//!     fn init(settings: &str) -> Result<Self, PluginFailure> {
//!         let s: Settings = parse_settings(settings)?;
//!         Ok(OnePassword(s.password))
//!     }
//! }
//!
//! impl AuthPlugin for OnePassword {
//!     fn authenticate(&self, c: &Credentials) -> Result<Principal, PluginFailure> {
//!         if c.password == self.0 {
//!             Ok(Principal::user(c.authcid.clone()))
//!         } else {
//!             Err(PluginFailure::auth_failed("wrong password"))
//!         }
//!     }
//!     fn lookup(&self, user: &str) -> Result<Option<Principal>, PluginFailure> {
//!         Ok(Some(Principal::user(user)))
//!     }
//! }
//!
//! mailroom_plugin::export_auth_plugin!(OnePassword);
//!
//! // The plugin side works without a host, too:
//! let p = OnePassword::init("password = \"s3cret\"").unwrap();
//! let c = Credentials { authzid: None, authcid: "a@x.org".into(), password: "s3cret".into() };
//! assert_eq!(p.authenticate(&c).unwrap().domain.as_deref(), Some("x.org"));
//! assert!(OnePassword::init("password = 1").is_err());
//! ```
//!
//! # Loading one
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use mailroom_core::Credentials;
//! use mailroom_plugin::{CallLimits, load_authenticator};
//!
//! let auth = load_authenticator(
//!     "/usr/lib/mailroom/libmailroom_auth_sqlite.so",
//!     "database = \"/var/lib/mailroom/users.sqlite\"",
//!     CallLimits::default(),
//! )?;
//! let who = auth
//!     .authenticate(&Credentials {
//!         authzid: None,
//!         authcid: "alice@example.com".into(),
//!         password: "secret".into(),
//!     })
//!     .await?;
//! println!("{} of {:?}", who.user, who.domain);
//! # Ok(())
//! # }
//! ```

pub mod abi;
pub mod billing;
mod error;
#[doc(hidden)]
pub mod export;
mod host;
mod loader;
pub mod soundness;

pub use abi::PluginKind;
pub use billing::{
    ArchiveEvent, ArchiveEventKind, BillingMonth, BillingReport, BillingSink, BusinessReport,
    Recorded,
};
pub use error::{FailureKind, PluginError, PluginFailure};
pub use export::{AuthPlugin, BillingPlugin, Plugin};
pub use host::{
    CallLimits, PluginAuthenticator, PluginBillingSink, load_authenticator, load_billing_sink,
};
pub use loader::{AuthPluginHandle, BillingPluginHandle, PluginInfo, PluginLibrary};

/// The largest settings text accepted by [`parse_settings`], in bytes.
pub const MAX_SETTINGS_BYTES: usize = 1 << 20;

/// Parses a plugin's settings (the TOML table the operator wrote for it,
/// as text) into `T`. For use in [`Plugin::init`].
pub fn parse_settings<T: serde::de::DeserializeOwned>(settings: &str) -> Result<T, PluginFailure> {
    if settings.len() > MAX_SETTINGS_BYTES {
        return Err(PluginFailure::invalid_input("settings larger than 1 MiB"));
    }
    toml::from_str(settings).map_err(|e| PluginFailure::invalid_input(format!("settings: {e}")))
}
