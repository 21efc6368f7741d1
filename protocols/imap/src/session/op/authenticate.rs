//! AUTHENTICATE (RFC 3501 §6.2.2) with the PLAIN mechanism (RFC 4616),
//! with an initial response (SASL-IR, RFC 4959) or after a `+`
//! continuation. A client answering the continuation with `*` cancels.

use mailroom_core::Credentials;

use super::super::{Action, Context, Reply, State};
use super::capability::plaintext_auth_allowed;
use crate::response::{Code, Response, StatusResponse};

/// The longest SASL response accepted, base64 (a PLAIN message of two names
/// and a password fits easily).
const MAX_RESPONSE: usize = 8 * 1024;

/// AUTHENTICATE.
pub(crate) async fn handle(
    state: &mut State,
    ctx: &Context,
    tag: &str,
    mechanism: &str,
    initial_response: Option<&str>,
) -> Reply {
    if !mechanism.eq_ignore_ascii_case("PLAIN") {
        return super::reply(StatusResponse::no(
            tag,
            Some(Code::Cannot),
            "unsupported SASL mechanism",
        ));
    }
    if !plaintext_auth_allowed(state, ctx) {
        return super::reply(StatusResponse::no(
            tag,
            Some(Code::PrivacyRequired),
            "AUTHENTICATE PLAIN is disabled before STARTTLS",
        ));
    }
    let Some(response) = initial_response else {
        return Reply::new(vec![Response::Continue(String::new())])
            .with_action(Action::SaslContinuation);
    };
    let response = response.trim();
    if response == "*" {
        return super::bad(tag, "AUTHENTICATE cancelled");
    }
    if response.len() > MAX_RESPONSE {
        return super::bad(tag, "SASL response too long");
    }
    let decoded = if response == "=" {
        Some(Vec::new())
    } else {
        base64_decode(response.as_bytes())
    };
    let Some(decoded) = decoded else {
        return super::bad(tag, "invalid base64 in SASL response");
    };
    let Some(credentials) = Credentials::from_sasl_plain(&decoded) else {
        return super::bad(tag, "malformed SASL PLAIN message");
    };
    super::login::complete(state, ctx, tag, &credentials).await
}

/// Decodes standard base64 with padding (RFC 4648 §4); `None` if malformed.
pub(crate) fn base64_decode(input: &[u8]) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    if !input.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let chunks = input.len() / 4;
    for (i, chunk) in input.chunks(4).enumerate() {
        let pad = chunk.iter().rev().take_while(|&&b| b == b'=').count();
        if pad > 2 || (pad > 0 && i + 1 != chunks) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::base64_decode;

    #[test]
    fn base64() {
        assert_eq!(
            base64_decode(b"AGFsaWNlAHNlY3JldA==").unwrap(),
            b"\0alice\0secret"
        );
        assert_eq!(base64_decode(b"YWJj").unwrap(), b"abc");
        assert_eq!(base64_decode(b"YWI=").unwrap(), b"ab");
        assert_eq!(base64_decode(b"").unwrap(), b"");
        assert!(base64_decode(b"YW=j").is_none());
        assert!(base64_decode(b"YWJ").is_none());
        assert!(base64_decode(b"Y===").is_none());
        assert!(base64_decode(b"YW!j").is_none());
        assert!(base64_decode(b"YQ==YWJj").is_none());
    }
}
