//! Dynamic plugins named in the config file (`[[plugin]]`), loaded with
//! [`mailroom_plugin`] at start.
//!
//! ```toml
//! [[plugin]]
//! path = "/usr/lib/mailroom/libmailroom_auth_sqlite.so"
//! kind = "auth"
//! [plugin.settings]          # passed to the plugin as its own TOML table
//! database = "/var/lib/mailroom/users.sqlite"
//! ```
//!
//! - `path`: the shared library; a relative path is taken relative to the
//!   config file.
//! - `kind`: `auth` or `billing`; at most one plugin of each kind.
//! - `[plugin.settings]`: any table, handed to the plugin unchanged (as TOML
//!   text). Paths inside it are the plugin's business: write them absolute.
//!
//! An **auth** plugin replaces the users file for logins (IMAP, POP3) and
//! for delivery lookups (LMTP); without one, the users file stays the
//! authenticator. A **billing** plugin is loaded and checked at start and
//! kept for the archive pipeline. A plugin that is missing, of another ABI
//! version (the error names both versions) or of another kind, or whose
//! settings it refuses, stops mailroomd at start with the loader's error.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mailroom_core::Authenticator;
use mailroom_plugin::{
    BillingSink, CallLimits, PluginAuthenticator, PluginBillingSink, PluginError, PluginKind,
};
use serde::Deserialize;

use crate::billing_outbox::{OUTBOX_FILE, OutboxSink};

/// `[[plugin]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginTable {
    /// The shared library.
    pub path: PathBuf,
    /// `auth` or `billing`.
    pub kind: PluginKindName,
    /// The plugin's own settings.
    #[serde(default)]
    pub settings: toml::Table,
}

/// The `kind` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKindName {
    /// An auth plugin.
    Auth,
    /// A billing plugin.
    Billing,
}

impl PluginKindName {
    fn kind(self) -> PluginKind {
        match self {
            PluginKindName::Auth => PluginKind::Auth,
            PluginKindName::Billing => PluginKind::Billing,
        }
    }
}

/// One plugin, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSpec {
    /// The shared library (absolute when the config came from a file).
    pub path: PathBuf,
    /// Its kind.
    pub kind: PluginKind,
    /// Its settings table as TOML text.
    pub settings: String,
}

/// Resolves the `[[plugin]]` tables: paths made absolute with `absolute`,
/// settings turned into text, at most one plugin per kind.
pub fn resolve(
    tables: Vec<PluginTable>,
    absolute: impl Fn(PathBuf) -> PathBuf,
) -> Result<Vec<PluginSpec>, String> {
    let mut specs: Vec<PluginSpec> = Vec::with_capacity(tables.len());
    for table in tables {
        if table.path.as_os_str().is_empty() {
            return Err("[[plugin]] path must not be empty".into());
        }
        let kind = table.kind.kind();
        if specs.iter().any(|s| s.kind == kind) {
            return Err(format!("[[plugin]]: more than one {kind} plugin"));
        }
        let settings = toml::to_string(&table.settings)
            .map_err(|e| format!("[[plugin]] {}: settings: {e}", table.path.display()))?;
        specs.push(PluginSpec {
            path: absolute(table.path),
            kind,
            settings,
        });
    }
    Ok(specs)
}

/// The loaded plugins.
#[derive(Default)]
pub struct Plugins {
    /// The auth plugin, replacing the users file.
    pub auth: Option<Arc<dyn Authenticator>>,
    /// The billing plugin.
    pub billing: Option<Arc<dyn BillingSink>>,
}

impl fmt::Debug for Plugins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugins")
            .field("auth", &self.auth.is_some())
            .field("billing", &self.billing.is_some())
            .finish()
    }
}

impl Plugins {
    /// Puts the billing plugin behind the durable outbox in `data_dir`
    /// ([`crate::billing_outbox`]), so an event it refuses is sent again
    /// later instead of lost. Returns the outbox, for the task that flushes it.
    pub fn with_billing_outbox(&mut self, data_dir: &Path) -> Option<Arc<OutboxSink>> {
        let inner = self.billing.take()?;
        let outbox = Arc::new(OutboxSink::new(inner, data_dir.join(OUTBOX_FILE)));
        self.billing = Some(outbox.clone());
        Some(outbox)
    }
}

/// Loads and initializes every plugin (on the blocking pool: `init` may
/// open databases).
pub async fn load(specs: &[PluginSpec]) -> Result<Plugins, PluginError> {
    let specs = specs.to_vec();
    let loaded = tokio::task::spawn_blocking(move || load_blocking(&specs)).await;
    match loaded {
        Ok(result) => result,
        Err(_) => Err(PluginError::ShuttingDown {
            plugin: "<all>".into(),
            function: "load",
        }),
    }
}

fn load_blocking(specs: &[PluginSpec]) -> Result<Plugins, PluginError> {
    let mut plugins = Plugins::default();
    for spec in specs {
        let limits = CallLimits::default();
        let info = match spec.kind {
            PluginKind::Auth => {
                let auth = PluginAuthenticator::load(&spec.path, &spec.settings, limits)?;
                let info = auth.info().clone();
                plugins.auth = Some(Arc::new(auth));
                info
            }
            _ => {
                let sink = PluginBillingSink::load(&spec.path, &spec.settings, limits)?;
                let info = sink.info().clone();
                plugins.billing = Some(Arc::new(sink));
                info
            }
        };
        tracing::info!(
            kind = %info.kind,
            plugin = %info.name,
            version = %info.version,
            path = %info.path.display(),
            "plugin loaded"
        );
    }
    Ok(plugins)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(text: &str) -> Vec<PluginTable> {
        #[derive(Deserialize)]
        struct File {
            plugin: Vec<PluginTable>,
        }
        toml::from_str::<File>(text).unwrap().plugin
    }

    #[test]
    fn resolves_paths_kinds_and_settings() {
        let specs = resolve(
            tables(
                "[[plugin]]\npath = \"lib/auth.so\"\nkind = \"auth\"\n\
                 [plugin.settings]\ndatabase = \"/x/users.sqlite\"\n\
                 [[plugin]]\npath = \"/abs/billing.so\"\nkind = \"billing\"\n",
            ),
            |p| PathBuf::from("/etc/m").join(p),
        )
        .unwrap();
        assert_eq!(specs[0].path, PathBuf::from("/etc/m/lib/auth.so"));
        assert_eq!(specs[0].kind, PluginKind::Auth);
        assert_eq!(specs[0].settings, "database = \"/x/users.sqlite\"\n");
        assert_eq!(specs[1].path, PathBuf::from("/abs/billing.so"));
        assert_eq!(specs[1].settings, "");
    }

    #[test]
    fn refuses_two_of_a_kind_and_empty_paths() {
        let two = tables(
            "[[plugin]]\npath = \"a.so\"\nkind = \"auth\"\n[[plugin]]\npath = \"b.so\"\nkind = \"auth\"\n",
        );
        assert_eq!(
            resolve(two, |p| p).unwrap_err(),
            "[[plugin]]: more than one auth plugin"
        );
        let empty = tables("[[plugin]]\npath = \"\"\nkind = \"billing\"\n");
        assert!(resolve(empty, |p| p).is_err());
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct File {
            plugin: Vec<PluginTable>,
        }
        assert!(
            toml::from_str::<File>("[[plugin]]\npath = \"a.so\"\nkind = \"storage\"\n").is_err()
        );
        assert!(
            toml::from_str::<File>("[[plugin]]\npath = \"a.so\"\nkind = \"auth\"\npth = 1\n")
                .is_err()
        );
    }
}
