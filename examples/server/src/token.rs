//! Bearer tokens for OAUTHBEARER and XOAUTH2: signed JWTs (RFC 7519),
//! HS256 with a shared key from the configuration (`[auth]
//! token_key_file`), checked by [`JwtValidator`].
//!
//! A token is accepted when its signature verifies with the key, its `exp`
//! is in the future (60 s of leeway for clock skew), its `aud` is the
//! configured audience (required), its `iss` is the configured issuer (when
//! one is configured), and its `sub` names the user. The user then logs in
//! as `sub` (or as the SASL authorization identity, where the users file
//! lets `sub` act as it).
//!
//! `jsonwebtoken` (aws-lc-rs backend, the crypto the server already links)
//! does the signature and claim checks: it is the JWT crate most of the
//! ecosystem uses, and the checks it does are the ones easy to get subtly
//! wrong (algorithm confusion, constant-time MACs, time claims).
//!
//! ```
//! use mailroomd::token::JwtValidator;
//! use mailroom_core::sasl::TokenValidator;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let key = b"0123456789abcdef0123456789abcdef";
//! let v = JwtValidator::new(key, "mailroom", None).unwrap();
//! let token = JwtValidator::sign(key, "alice@example.com", "mailroom", None, 3600).unwrap();
//! assert_eq!(v.validate(&token).await.unwrap(), "alice@example.com");
//! let other = JwtValidator::sign(key, "alice@example.com", "elsewhere", None, 3600).unwrap();
//! assert!(v.validate(&other).await.is_err());
//! # });
//! ```

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use mailroom_core::sasl::TokenValidator;
use mailroom_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// The shortest key accepted (RFC 7518 §3.2: at least the hash size).
pub const MIN_KEY_BYTES: usize = 32;

/// Why a token configuration is not usable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The key is shorter than [`MIN_KEY_BYTES`].
    #[error("the token key must be at least {MIN_KEY_BYTES} bytes")]
    ShortKey,
    /// The audience is empty.
    #[error("the token audience must not be empty")]
    NoAudience,
    /// The JWT library has no crypto provider (a build problem).
    #[error("JWT: {0}")]
    Jwt(String),
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    aud: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
}

/// Checks HS256 JWTs; see the [module docs](self).
pub struct JwtValidator {
    key: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for JwtValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtValidator")
            .field("audience", &self.validation.aud)
            .field("issuer", &self.validation.iss)
            .finish_non_exhaustive()
    }
}

impl JwtValidator {
    /// A validator for tokens signed with `key`, for `audience`, and from
    /// `issuer` when given.
    pub fn new(
        key: &[u8],
        audience: &str,
        issuer: Option<&str>,
    ) -> std::result::Result<JwtValidator, TokenError> {
        if key.len() < MIN_KEY_BYTES {
            return Err(TokenError::ShortKey);
        }
        if audience.is_empty() {
            return Err(TokenError::NoAudience);
        }
        if jsonwebtoken::crypto::CryptoProvider::try_get_default().is_none() {
            return Err(TokenError::Jwt("no crypto provider".into()));
        }
        let key = DecodingKey::from_secret(key).map_err(|e| TokenError::Jwt(e.to_string()))?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 60;
        validation.set_audience(&[audience]);
        let mut required = vec!["exp", "aud", "sub"];
        if let Some(iss) = issuer {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        Ok(JwtValidator { key, validation })
    }

    /// Signs a token for `sub` valid `ttl_secs` from now (for tests and
    /// for operators who hand out tokens).
    pub fn sign(
        key: &[u8],
        sub: &str,
        audience: &str,
        issuer: Option<&str>,
        ttl_secs: i64,
    ) -> std::result::Result<String, TokenError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = Claims {
            sub: sub.to_owned(),
            exp: now.saturating_add_signed(ttl_secs),
            aud: audience.to_owned(),
            iss: issuer.map(str::to_owned),
        };
        let key = EncodingKey::from_secret(key).map_err(|e| TokenError::Jwt(e.to_string()))?;
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key)
            .map_err(|e| TokenError::Jwt(e.to_string()))
    }
}

#[async_trait]
impl TokenValidator for JwtValidator {
    async fn validate(&self, token: &str) -> Result<String> {
        match jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation) {
            Ok(data) if !data.claims.sub.is_empty() => Ok(data.claims.sub),
            Ok(_) => Err(Error::AuthFailed),
            Err(e) => {
                // The kind only (expired, bad signature, ...), never the token.
                tracing::info!(reason = ?e.kind(), "bearer token refused");
                Err(Error::AuthFailed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"an HS256 key of at least 32 bytes!";

    #[tokio::test]
    async fn checks_signature_expiry_audience_and_issuer() {
        let v = JwtValidator::new(KEY, "imap", Some("idp")).unwrap();
        let good = JwtValidator::sign(KEY, "bob@example.com", "imap", Some("idp"), 60).unwrap();
        assert_eq!(v.validate(&good).await.unwrap(), "bob@example.com");
        for bad in [
            JwtValidator::sign(KEY, "bob@example.com", "imap", Some("idp"), -600).unwrap(),
            JwtValidator::sign(KEY, "bob@example.com", "pop", Some("idp"), 60).unwrap(),
            JwtValidator::sign(KEY, "bob@example.com", "imap", Some("other"), 60).unwrap(),
            JwtValidator::sign(KEY, "bob@example.com", "imap", None, 60).unwrap(),
            JwtValidator::sign(
                b"another key, also 32 bytes long!!",
                "bob@example.com",
                "imap",
                Some("idp"),
                60,
            )
            .unwrap(),
            format!("{good}x"),
            "not.a.jwt".to_owned(),
        ] {
            assert!(
                matches!(v.validate(&bad).await, Err(Error::AuthFailed)),
                "{bad}"
            );
        }
        // alg=none is never accepted.
        let parts: Vec<&str> = good.split('.').collect();
        let none = format!(
            "{}.{}.",
            mailroom_core::base64::encode(br#"{"alg":"none","typ":"JWT"}"#).trim_end_matches('='),
            parts[1]
        );
        assert!(v.validate(&none).await.is_err());
    }

    #[test]
    fn configuration_is_checked() {
        assert!(matches!(
            JwtValidator::new(b"short", "a", None),
            Err(TokenError::ShortKey)
        ));
        assert!(matches!(
            JwtValidator::new(KEY, "", None),
            Err(TokenError::NoAudience)
        ));
    }
}
