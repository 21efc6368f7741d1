//! The `Authenticator` trait.

use std::fmt::{self, Debug};

use async_trait::async_trait;

use crate::acl::Principal;
use crate::error::Result;
use crate::sasl::{ScramCredentials, TokenValidator};

/// A SASL mechanism an authenticator supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mechanism {
    /// RFC 4616 PLAIN (also used for IMAP LOGIN and POP3 USER/PASS).
    Plain,
    /// The de-facto LOGIN mechanism.
    Login,
    /// RFC 5802/7677 SCRAM-SHA-256.
    ScramSha256,
    /// SCRAM-SHA-256-PLUS with `tls-exporter` channel binding (RFC 9266).
    ScramSha256Plus,
    /// RFC 7628 OAUTHBEARER.
    OAuthBearer,
    /// Google's XOAUTH2.
    XOAuth2,
}

impl Mechanism {
    /// Every mechanism, in the order servers list them.
    pub const ALL: [Mechanism; 6] = [
        Mechanism::Plain,
        Mechanism::Login,
        Mechanism::ScramSha256,
        Mechanism::ScramSha256Plus,
        Mechanism::OAuthBearer,
        Mechanism::XOAuth2,
    ];

    /// The SASL name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha256Plus => "SCRAM-SHA-256-PLUS",
            Mechanism::OAuthBearer => "OAUTHBEARER",
            Mechanism::XOAuth2 => "XOAUTH2",
        }
    }

    /// The mechanism of a SASL name (ASCII case-insensitive).
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
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

    /// The SCRAM-SHA-256 verifier of `user`, or `None` for an unknown user
    /// or one without a verifier (the exchange then goes on with made-up
    /// values and fails at the proof, so the answer does not tell which).
    /// Only an authenticator that lists [`Mechanism::ScramSha256`] in
    /// [`Authenticator::mechanisms`] is asked. Defaults to `None`.
    async fn scram_credentials(&self, user: &str) -> Result<Option<ScramCredentials>> {
        let _ = user;
        Ok(None)
    }

    /// The principal of `authcid`, whom a mechanism without a password
    /// check here (SCRAM, a bearer token) has authenticated, acting as
    /// `authzid` if given. The default allows only acting as oneself
    /// (`authzid` absent or equal) and takes the principal from
    /// [`Authenticator::lookup`]; fails with [`crate::Error::AuthFailed`].
    async fn authorize(&self, authcid: &str, authzid: Option<&str>) -> Result<Principal> {
        if authzid.is_some_and(|z| z != authcid) {
            return Err(crate::Error::AuthFailed);
        }
        self.lookup(authcid).await?.ok_or(crate::Error::AuthFailed)
    }

    /// The validator of OAUTHBEARER and XOAUTH2 tokens, if this
    /// authenticator takes them. Defaults to `None`.
    fn token_validator(&self) -> Option<&dyn TokenValidator> {
        None
    }

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
