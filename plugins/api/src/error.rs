//! The host's error ([`PluginError`]) and the plugin's ([`PluginFailure`]).

use std::path::PathBuf;
use std::time::Duration;

use crate::abi::{Status, status};

/// How a plugin call failed, as the plugin reported it (its [`Status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// [`status::AUTH_FAILED`].
    AuthFailed,
    /// [`status::INVALID_INPUT`].
    InvalidInput,
    /// [`status::TEMPORARY`].
    Temporary,
    /// [`status::FAILED`].
    Failed,
}

impl FailureKind {
    /// The status code a plugin returns for this failure.
    pub const fn status(self) -> Status {
        match self {
            FailureKind::AuthFailed => status::AUTH_FAILED,
            FailureKind::InvalidInput => status::INVALID_INPUT,
            FailureKind::Temporary => status::TEMPORARY,
            FailureKind::Failed => status::FAILED,
        }
    }

    /// The failure for a status code, if it is one.
    pub const fn from_status(code: Status) -> Option<FailureKind> {
        match code {
            status::AUTH_FAILED => Some(FailureKind::AuthFailed),
            status::INVALID_INPUT => Some(FailureKind::InvalidInput),
            status::TEMPORARY => Some(FailureKind::Temporary),
            status::FAILED => Some(FailureKind::Failed),
            _ => None,
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FailureKind::AuthFailed => "authentication failed",
            FailureKind::InvalidInput => "invalid input",
            FailureKind::Temporary => "temporary failure",
            FailureKind::Failed => "failed",
        })
    }
}

/// What a plugin's own code returns when a call fails (the plugin side of
/// the boundary). The export shims turn it into a [`Status`] and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct PluginFailure {
    kind: FailureKind,
    message: String,
}

impl PluginFailure {
    /// Wrong credentials or an account that cannot log in; `message` goes to
    /// the host's log (never a password), never to the client.
    pub fn auth_failed(message: impl Into<String>) -> PluginFailure {
        PluginFailure {
            kind: FailureKind::AuthFailed,
            message: message.into(),
        }
    }

    /// Unacceptable input.
    pub fn invalid_input(message: impl Into<String>) -> PluginFailure {
        PluginFailure {
            kind: FailureKind::InvalidInput,
            message: message.into(),
        }
    }

    /// A failure that may go away if the call is retried.
    pub fn temporary(message: impl Into<String>) -> PluginFailure {
        PluginFailure {
            kind: FailureKind::Temporary,
            message: message.into(),
        }
    }

    /// A permanent failure.
    pub fn failed(message: impl Into<String>) -> PluginFailure {
        PluginFailure {
            kind: FailureKind::Failed,
            message: message.into(),
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> FailureKind {
        self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Everything loading or calling a plugin can fail with, on the host side.
///
/// None of these is a mail client's fault except [`PluginError::Call`] with
/// [`FailureKind::AuthFailed`] or [`FailureKind::InvalidInput`]; the rest
/// are the plugin's or its configuration's ([`PluginError::is_server_fault`]).
/// Load-time errors are permanent until the operator changes the plugin or
/// the configuration; [`PluginError::is_temporary`] says which call errors
/// may go away on a retry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The shared library could not be opened (missing file, missing
    /// dependency, wrong architecture).
    #[error("plugin {path}: cannot load: {source}")]
    Open {
        /// The configured path.
        path: PathBuf,
        /// What `dlopen` said.
        source: libloading::Error,
    },
    /// The path is not valid UTF-8 (the loader needs a UTF-8 path).
    #[error("plugin {path}: the path is not valid UTF-8")]
    PathNotUtf8 {
        /// The configured path.
        path: PathBuf,
    },
    /// The library is not a Mailroom plugin: no declaration symbol, or one
    /// without the magic bytes.
    #[error("plugin {path}: not a Mailroom plugin ({reason})")]
    NotAPlugin {
        /// The configured path.
        path: PathBuf,
        /// What is missing.
        reason: &'static str,
    },
    /// The plugin was built for another ABI version; nothing in it was called.
    #[error(
        "plugin {path}: {plugin} was built for plugin ABI version {plugin_abi} \
         (mailroom-plugin {plugin_api}), but this server speaks ABI version {host_abi} \
         (mailroom-plugin {host_api}); rebuild the plugin against mailroom-plugin {host_api}"
    )]
    AbiMismatch {
        /// The configured path.
        path: PathBuf,
        /// The plugin's name and version.
        plugin: String,
        /// The ABI version the plugin declares.
        plugin_abi: u32,
        /// The `mailroom-plugin` version the plugin declares.
        plugin_api: String,
        /// This host's [`crate::abi::ABI_VERSION`].
        host_abi: u32,
        /// This host's [`crate::abi::API_VERSION`].
        host_api: String,
    },
    /// The plugin is of another kind than the configuration says.
    #[error("plugin {path}: {plugin} is a {found} plugin, configured as a {expected} plugin")]
    KindMismatch {
        /// The configured path.
        path: PathBuf,
        /// The plugin's name and version.
        plugin: String,
        /// The configured kind.
        expected: String,
        /// The declared kind (its name, or its number if unknown).
        found: String,
    },
    /// Same ABI version, but the types crossing the boundary differ in layout.
    #[error(
        "plugin {path}: {plugin} declares ABI version {abi} but a different layout \
         (fingerprint {plugin_fingerprint:#018x}, this server {host_fingerprint:#018x}); \
         rebuild it against this server's mailroom-plugin"
    )]
    LayoutMismatch {
        /// The configured path.
        path: PathBuf,
        /// The plugin's name and version.
        plugin: String,
        /// The common ABI version.
        abi: u32,
        /// The plugin's fingerprint.
        plugin_fingerprint: u64,
        /// This host's [`crate::abi::LAYOUT_FINGERPRINT`].
        host_fingerprint: u64,
    },
    /// The plugin was built with `panic = "abort"`: a panic in it would take
    /// the host down, so it is refused.
    #[error(
        "plugin {path}: {plugin} was built with panic = \"abort\"; build it with panic = \"unwind\""
    )]
    AbortsOnPanic {
        /// The configured path.
        path: PathBuf,
        /// The plugin's name and version.
        plugin: String,
    },
    /// The declaration lacks a function the ABI requires.
    #[error("plugin {path}: {plugin} does not provide `{function}`")]
    MissingFunction {
        /// The configured path.
        path: PathBuf,
        /// The plugin's name and version.
        plugin: String,
        /// The function.
        function: &'static str,
    },
    /// The plugin reported a failure.
    #[error("plugin {plugin}: {function}: {kind}: {message}")]
    Call {
        /// The plugin's name and version.
        plugin: String,
        /// The function called.
        function: &'static str,
        /// What kind of failure.
        kind: FailureKind,
        /// The plugin's message (for the log).
        message: String,
    },
    /// The plugin panicked; the panic was caught at the boundary and the
    /// host keeps running.
    #[error("plugin {plugin}: {function} panicked: {message}")]
    Panicked {
        /// The plugin's name and version.
        plugin: String,
        /// The function called.
        function: &'static str,
        /// The panic message.
        message: String,
    },
    /// The plugin returned something the ABI does not allow (an unknown
    /// status, invalid UTF-8, an oversized buffer, a null instance).
    #[error("plugin {plugin}: {function}: broken answer: {reason}")]
    InvalidOutput {
        /// The plugin's name and version.
        plugin: String,
        /// The function called.
        function: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The call did not finish in time (queueing for a call slot included);
    /// the plugin's thread is left to finish on its own.
    #[error("plugin {plugin}: {function} did not answer within {after:?}")]
    Timeout {
        /// The plugin's name and version.
        plugin: String,
        /// The function called.
        function: &'static str,
        /// The limit.
        after: Duration,
    },
    /// The host's blocking pool is shutting down.
    #[error("plugin {plugin}: {function}: the host is shutting down")]
    ShuttingDown {
        /// The plugin's name and version.
        plugin: String,
        /// The function called.
        function: &'static str,
    },
}

impl PluginError {
    /// Whether retrying the same call later may succeed.
    pub fn is_temporary(&self) -> bool {
        match self {
            PluginError::Call { kind, .. } => *kind == FailureKind::Temporary,
            PluginError::Timeout { .. } | PluginError::ShuttingDown { .. } => true,
            _ => false,
        }
    }

    /// Whether the plugin, its build or its configuration is at fault
    /// rather than the client whose request led to the call.
    pub fn is_server_fault(&self) -> bool {
        !matches!(
            self,
            PluginError::Call {
                kind: FailureKind::AuthFailed | FailureKind::InvalidInput,
                ..
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for k in [
            FailureKind::AuthFailed,
            FailureKind::InvalidInput,
            FailureKind::Temporary,
            FailureKind::Failed,
        ] {
            assert_eq!(FailureKind::from_status(k.status()), Some(k));
        }
        assert_eq!(FailureKind::from_status(status::OK), None);
        assert_eq!(FailureKind::from_status(status::PANICKED), None);
    }

    #[test]
    fn fault_and_retry() {
        let call = |kind| PluginError::Call {
            plugin: "p 1".into(),
            function: "f",
            kind,
            message: String::new(),
        };
        assert!(!call(FailureKind::AuthFailed).is_server_fault());
        assert!(call(FailureKind::Failed).is_server_fault());
        assert!(call(FailureKind::Temporary).is_temporary());
        assert!(!call(FailureKind::Failed).is_temporary());
    }
}
