//! The client messages of OAUTHBEARER (RFC 7628) and XOAUTH2 (Google's
//! older form), and the [`TokenValidator`] trait that judges their tokens.
//!
//! Byte by byte (`^A` is the byte 0x01):
//!
//! ```text
//! OAUTHBEARER: gs2-header ^A *(key "=" value ^A) ^A
//!              gs2-header = ("n" / "y") "," ["a=" saslname] ","
//!              the pair auth=Bearer <token> is required; host=, port= and
//!              others are ignored; p= (channel binding) is refused
//!              after an error challenge the client sends a lone ^A
//! XOAUTH2:     "user=" user ^A "auth=Bearer " token ^A ^A
//! ```
//!
//! ```
//! use mailroom_core::sasl::bearer::{parse_oauthbearer, parse_xoauth2};
//!
//! let m = parse_oauthbearer(b"n,a=alice@example.com,\x01host=x\x01auth=Bearer t0k\x01\x01").unwrap();
//! assert_eq!((m.user.as_deref(), m.token.as_str()), (Some("alice@example.com"), "t0k"));
//! let m = parse_xoauth2(b"user=alice@example.com\x01auth=Bearer t0k\x01\x01").unwrap();
//! assert_eq!(m.user.as_deref(), Some("alice@example.com"));
//! ```

use std::fmt;

use async_trait::async_trait;

use crate::error::Result;

/// The longest token accepted.
pub const MAX_TOKEN: usize = 4096;

/// Checks bearer tokens for OAUTHBEARER and XOAUTH2.
#[async_trait]
pub trait TokenValidator: Send + Sync + fmt::Debug {
    /// Returns the user the token was issued to, or
    /// [`crate::Error::AuthFailed`] for a token that is not valid (bad
    /// signature, expired, wrong audience, malformed) alike.
    async fn validate(&self, token: &str) -> Result<String>;
}

/// A parsed bearer-token message. `Debug` hides the token.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerMessage {
    /// The user the client names (`a=` or `user=`), if any.
    pub user: Option<String>,
    /// The token.
    pub token: String,
}

impl fmt::Debug for BearerMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerMessage")
            .field("user", &self.user)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// Why a bearer message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed bearer message: {0}")]
pub struct BearerError(pub &'static str);

/// `auth=Bearer <token>`'s value: the token, or an error.
fn bearer_token(value: &str) -> Result<String, BearerError> {
    let (scheme, token) = value
        .split_once(' ')
        .ok_or(BearerError("no bearer token"))?;
    let token = token.trim_start_matches(' ');
    if !scheme.eq_ignore_ascii_case("Bearer") {
        return Err(BearerError("not a Bearer token"));
    }
    // b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    let body = token.trim_end_matches('=');
    if body.is_empty()
        || token.len() > MAX_TOKEN
        || !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
    {
        return Err(BearerError("bad token"));
    }
    Ok(token.to_owned())
}

fn key_values(s: &str) -> Result<Vec<(&str, &str)>, BearerError> {
    let body = s
        .strip_suffix("\x01\x01")
        .ok_or(BearerError("not terminated"))?;
    let mut out = Vec::new();
    for pair in body.split('\x01') {
        let (k, v) = pair.split_once('=').ok_or(BearerError("bad pair"))?;
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(BearerError("bad key"));
        }
        if !v
            .bytes()
            .all(|b| (0x20..=0x7e).contains(&b) || matches!(b, b'\t' | b'\r' | b'\n'))
        {
            return Err(BearerError("bad value"));
        }
        if out.len() >= 16 {
            return Err(BearerError("too many pairs"));
        }
        out.push((k, v));
    }
    Ok(out)
}

fn decode_saslname(s: &str) -> Result<String, BearerError> {
    if s.is_empty() {
        return Err(BearerError("empty authzid"));
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(BearerError("bad escape in authzid")),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Parses an OAUTHBEARER initial client response.
pub fn parse_oauthbearer(msg: &[u8]) -> Result<BearerMessage, BearerError> {
    let msg = std::str::from_utf8(msg).map_err(|_| BearerError("not UTF-8"))?;
    let (flag, rest) = msg.split_once(',').ok_or(BearerError("no gs2 header"))?;
    if flag != "n" && flag != "y" {
        return Err(BearerError("channel binding is not supported"));
    }
    let (authz, rest) = rest.split_once(',').ok_or(BearerError("no gs2 header"))?;
    let user = if authz.is_empty() {
        None
    } else {
        Some(decode_saslname(
            authz.strip_prefix("a=").ok_or(BearerError("bad authzid"))?,
        )?)
    };
    let rest = rest
        .strip_prefix('\x01')
        .ok_or(BearerError("no separator after gs2 header"))?;
    let pairs = key_values(rest)?;
    let auth = pairs
        .iter()
        .find(|(k, _)| *k == "auth")
        .ok_or(BearerError("no auth= pair"))?;
    Ok(BearerMessage {
        user,
        token: bearer_token(auth.1)?,
    })
}

/// Parses an XOAUTH2 initial client response.
pub fn parse_xoauth2(msg: &[u8]) -> Result<BearerMessage, BearerError> {
    let msg = std::str::from_utf8(msg).map_err(|_| BearerError("not UTF-8"))?;
    let pairs = key_values(msg)?;
    let (Some(user), Some(auth)) = (
        pairs.iter().find(|(k, _)| *k == "user"),
        pairs.iter().find(|(k, _)| *k == "auth"),
    ) else {
        return Err(BearerError("user= and auth= are required"));
    };
    if user.1.is_empty() {
        return Err(BearerError("empty user"));
    }
    Ok(BearerMessage {
        user: Some(user.1.to_owned()),
        token: bearer_token(auth.1)?,
    })
}

/// The OAUTHBEARER error challenge (RFC 7628 §3.2.2), JSON.
pub fn oauthbearer_error() -> Vec<u8> {
    br#"{"status":"invalid_token","schemes":"bearer"}"#.to_vec()
}

/// The XOAUTH2 error challenge, JSON.
pub fn xoauth2_error() -> Vec<u8> {
    br#"{"status":"401","schemes":"bearer"}"#.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauthbearer() {
        let m = parse_oauthbearer(b"n,,\x01auth=Bearer abc.def-_~+/==\x01\x01").unwrap();
        assert_eq!(m.user, None);
        assert_eq!(m.token, "abc.def-_~+/==");
        assert!(!format!("{m:?}").contains("abc"));
        for bad in [
            &b""[..],
            b"\x01",
            b"n,,\x01\x01",
            b"p=tls-exporter,,\x01auth=Bearer x\x01\x01",
            b"n,,\x01auth=Basic x\x01\x01",
            b"n,,\x01auth=Bearer \x01\x01",
            b"n,,\x01auth=Bearer a b\x01\x01",
            b"n,,auth=Bearer x\x01\x01",
            b"n,,\x01auth=Bearer x\x01",
            b"n,b=1,\x01auth=Bearer x\x01\x01",
            b"n,a=,\x01auth=Bearer x\x01\x01",
        ] {
            assert!(parse_oauthbearer(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn xoauth2() {
        assert!(parse_xoauth2(b"auth=Bearer x\x01\x01").is_err());
        assert!(parse_xoauth2(b"user=\x01auth=Bearer x\x01\x01").is_err());
        assert!(parse_xoauth2(b"user=u\x01auth=Bearer x\x01").is_err());
        let long = format!(
            "user=u\x01auth=Bearer {}\x01\x01",
            "a".repeat(MAX_TOKEN + 1)
        );
        assert!(parse_xoauth2(long.as_bytes()).is_err());
    }
}
