//! How core errors become IMAP responses (RFC 5530 response codes).

use mailroom_core::Error;

use crate::response::{Code, Response, StatusResponse};

/// The tagged response for a failed operation. Server faults are logged
/// here with their detail and shown to the client without it.
pub(crate) fn error_response(tag: &str, error: &Error) -> Response {
    let (code, text): (Option<Code>, String) = match error {
        Error::NoSuchMailbox(_) => (Some(Code::NonExistent), error.to_string()),
        Error::MailboxExists(_) => (Some(Code::AlreadyExists), error.to_string()),
        Error::InvalidMailboxName(_) => (Some(Code::Cannot), error.to_string()),
        Error::Cannot(_) => (Some(Code::Cannot), error.to_string()),
        Error::HasChildren(_) => (Some(Code::HasChildren), error.to_string()),
        Error::NoSuchMessage(_) => (Some(Code::ExpungeIssued), error.to_string()),
        Error::PermissionDenied(_) => (Some(Code::NoPerm), error.to_string()),
        Error::ReadOnly => (Some(Code::Cannot), "mailbox is read-only".into()),
        Error::OverQuota => (Some(Code::OverQuota), "quota exceeded".into()),
        Error::TooBig { .. } => (Some(Code::TooBig), error.to_string()),
        Error::AuthFailed | Error::NoSuchUser => (
            Some(Code::AuthenticationFailed),
            "authentication failed".into(),
        ),
        Error::InvalidInput(reason) => {
            return StatusResponse::bad(Some(tag), Some(Code::ClientBug), *reason);
        }
        Error::Corruption(_) => {
            tracing::error!(error = %error, "stored data is corrupt");
            (
                Some(Code::Corruption),
                "stored data is corrupt; the mailbox is being repaired".into(),
            )
        }
        Error::Busy(_) => {
            tracing::info!(error = %error, "resource busy");
            (Some(Code::InUse), "mailbox is busy, try again later".into())
        }
        Error::Unsupported(what) => (Some(Code::Cannot), format!("not supported: {what}")),
        Error::Unavailable(_) => {
            tracing::warn!(error = %error, "service unavailable");
            (
                Some(Code::Unavailable),
                "service temporarily unavailable, try again later".into(),
            )
        }
        _ => {
            tracing::error!(error = %error, "storage failure");
            (Some(Code::ServerBug), "internal server error".into())
        }
    };
    StatusResponse::no(tag, code, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::StatusKind;

    fn code_of(r: &Response) -> (StatusKind, Option<Code>) {
        match r {
            Response::Status(s) => (s.kind, s.code.clone()),
            _ => panic!("not a status"),
        }
    }

    #[test]
    fn maps_rfc5530_codes() {
        let cases = [
            (Error::NoSuchMailbox("x".into()), Code::NonExistent),
            (Error::MailboxExists("x".into()), Code::AlreadyExists),
            (
                Error::PermissionDenied(mailroom_core::Right::Read),
                Code::NoPerm,
            ),
            (Error::OverQuota, Code::OverQuota),
            (Error::Corruption("x".into()), Code::Corruption),
            (Error::Backend("secret path".into()), Code::ServerBug),
            (Error::Cannot("no"), Code::Cannot),
            (Error::HasChildren("x".into()), Code::HasChildren),
            (Error::Unavailable("replica".into()), Code::Unavailable),
        ];
        for (e, c) in cases {
            assert_eq!(code_of(&error_response("t", &e)), (StatusKind::No, Some(c)));
        }
        let r = error_response("t", &Error::Backend("/secret/path".into()));
        let Response::Status(s) = r else { panic!() };
        assert!(!s.text.contains("secret"));
        assert_eq!(
            code_of(&error_response("t", &Error::InvalidInput("x"))).0,
            StatusKind::Bad
        );
    }
}
