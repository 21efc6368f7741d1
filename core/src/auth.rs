//! The `Authenticator` trait.

use std::fmt::{self, Debug};

use async_trait::async_trait;

use crate::acl::Principal;
use crate::error::Result;

/// A SASL mechanism an authenticator supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mechanism {
    /// RFC 4616 PLAIN (also used for IMAP LOGIN and POP3 USER/PASS).
    Plain,
    /// The de-facto LOGIN mechanism.
    Login,
}

impl Mechanism {
    /// The SASL name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
        }
    }
}

/// Credentials presented by a client. The password is never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The identity to act as, if different from `authcid` (SASL authzid).
    pub authzid: Option<String>,
    /// The identity whose password this is.
    pub authcid: String,
    /// The password.
    pub password: String,
}

impl Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("authzid", &self.authzid)
            .field("authcid", &self.authcid)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// Decodes a SASL PLAIN message (`authzid NUL authcid NUL password`).
    pub fn from_sasl_plain(msg: &[u8]) -> Option<Credentials> {
        let mut parts = msg.splitn(3, |&b| b == 0);
        let authzid = std::str::from_utf8(parts.next()?).ok()?;
        let authcid = std::str::from_utf8(parts.next()?).ok()?;
        let password = std::str::from_utf8(parts.next()?).ok()?;
        if authcid.is_empty() || password.contains('\0') {
            return None;
        }
        Some(Credentials {
            authzid: (!authzid.is_empty()).then(|| authzid.to_owned()),
            authcid: authcid.to_owned(),
            password: password.to_owned(),
        })
    }
}

/// Verifies credentials and names principals.
#[async_trait]
pub trait Authenticator: Send + Sync + Debug {
    /// The SASL mechanisms offered.
    fn mechanisms(&self) -> Vec<Mechanism> {
        vec![Mechanism::Plain, Mechanism::Login]
    }

    /// Verifies credentials. Fails with [`crate::Error::AuthFailed`] on a
    /// wrong password or unknown user alike (never say which).
    async fn authenticate(&self, credentials: &Credentials) -> Result<Principal>;

    /// Looks up a user by name or address without credentials (for delivery).
    async fn lookup(&self, user: &str) -> Result<Option<Principal>>;

    /// Whether [`Authenticator::authenticate_apop`] works: only an
    /// implementation that can get at each user's plaintext secret can check
    /// an APOP digest (one that keeps only password hashes cannot). POP3
    /// offers APOP, with a timestamp in its greeting, only when this is
    /// `true`. Defaults to `false`.
    fn supports_apop(&self) -> bool {
        false
    }

    /// Verifies a POP3 APOP login (RFC 1939 §7): `digest` must equal
    /// `MD5(timestamp ‖ secret)`, where `timestamp` is the one the server
    /// sent in its greeting (angle brackets included) and `secret` the
    /// user's password. Compare in constant time, and fail with
    /// [`crate::Error::AuthFailed`] on a wrong digest or an unknown user
    /// alike, as [`Authenticator::authenticate`] does.
    ///
    /// The default fails with [`crate::Error::Unsupported`]; an
    /// implementation that overrides it also overrides
    /// [`Authenticator::supports_apop`].
    async fn authenticate_apop(
        &self,
        user: &str,
        timestamp: &str,
        digest: &[u8; 16],
    ) -> Result<Principal> {
        let _ = (user, timestamp, digest);
        Err(crate::Error::Unsupported("APOP"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sasl_plain() {
        let c = Credentials::from_sasl_plain(b"\0alice\0secret").unwrap();
        assert_eq!(c.authcid, "alice");
        assert_eq!(c.authzid, None);
        assert!(!format!("{c:?}").contains("secret"));
        assert!(Credentials::from_sasl_plain(b"alice\0secret").is_none());
        assert!(Credentials::from_sasl_plain(b"\0\0secret").is_none());
    }

    #[derive(Debug)]
    struct HashesOnly;

    #[async_trait]
    impl Authenticator for HashesOnly {
        async fn authenticate(&self, _: &Credentials) -> Result<Principal> {
            Err(crate::Error::AuthFailed)
        }
        async fn lookup(&self, _: &str) -> Result<Option<Principal>> {
            Ok(None)
        }
    }

    #[tokio::test]
    async fn apop_is_unsupported_unless_implemented() {
        let auth: &dyn Authenticator = &HashesOnly;
        assert!(!auth.supports_apop());
        assert!(matches!(
            auth.authenticate_apop("mrose", "<1896.697170952@dbc.mtview.ca.us>", &[0; 16])
                .await,
            Err(crate::Error::Unsupported("APOP"))
        ));
    }
}
