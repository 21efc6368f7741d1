//! LOGIN and AUTHENTICATE (RFC 3501 §6.2.2–6.2.3, SASL-IR RFC 4959).

use crate::command::Command;

use super::primitives::{Cursor, PResult, err, is_atom_char};

/// `LOGIN SP userid SP password`
pub(super) fn login(c: &mut Cursor<'_>) -> PResult<Command> {
    c.sp()?;
    let username = c.astring_utf8()?;
    c.sp()?;
    let password = c.astring_utf8()?;
    Ok(Command::Login { username, password })
}

/// `AUTHENTICATE SP auth-type [SP (base64 / "=")]`
pub(super) fn authenticate(c: &mut Cursor<'_>) -> PResult<Command> {
    c.sp()?;
    let mechanism = c.keyword()?;
    let initial_response = if c.eat(b' ') {
        let t = c.token(is_atom_char, "invalid initial response")?;
        let ok = t == b"="
            || (t.len() % 4 == 0 && {
                let body = t
                    .strip_suffix(b"==")
                    .or_else(|| t.strip_suffix(b"="))
                    .unwrap_or(t);
                body.iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
            });
        if !ok {
            return err("initial response is not base64");
        }
        Some(String::from_utf8_lossy(t).into_owned())
    } else {
        None
    };
    Ok(Command::Authenticate {
        mechanism,
        initial_response,
    })
}
