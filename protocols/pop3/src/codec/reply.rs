//! Server replies and their encoding.

use bytes::BytesMut;
use mailroom_core::throttle::LoginAttempt;

use super::message::MessageWriter;

/// The status indicator of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `+OK`
    Ok,
    /// `-ERR`
    Err,
    /// `+ ` (a SASL challenge, RFC 5034).
    Continue,
}

/// Extended response codes (RFC 2449 §8, RFC 3206).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseCode {
    /// `[IN-USE]`: the maildrop is locked by another session.
    InUse,
    /// `[LOGIN-DELAY]`: logging in again too soon.
    LoginDelay,
    /// `[SYS/TEMP]`: a temporary server problem.
    SysTemp,
    /// `[SYS/PERM]`: a permanent server problem.
    SysPerm,
    /// `[AUTH]`: the credentials were the problem (RFC 3206).
    Auth,
}

impl ResponseCode {
    /// The code as written inside the brackets.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseCode::InUse => "IN-USE",
            ResponseCode::LoginDelay => "LOGIN-DELAY",
            ResponseCode::SysTemp => "SYS/TEMP",
            ResponseCode::SysPerm => "SYS/PERM",
            ResponseCode::Auth => "AUTH",
        }
    }
}

/// The multi-line part of a reply.
#[derive(Debug, Clone)]
pub enum Body {
    /// Text lines (LIST, UIDL, CAPA), byte-stuffed on output.
    Lines(Vec<String>),
    /// A message (RETR, TOP), streamed by the driver.
    Message(MessageWriter),
}

/// What the driver does after sending the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Action {
    /// Read the next command.
    #[default]
    None,
    /// Start the TLS handshake (after `STLS`'s `+OK`), discarding anything
    /// the client pipelined in the clear.
    StartTls,
    /// Close the connection.
    Close,
}

/// One reply of the server.
///
/// ```
/// use bytes::BytesMut;
/// use mailroom_pop3::codec::{Reply, ResponseCode};
///
/// let mut out = BytesMut::new();
/// Reply::err_code(ResponseCode::InUse, "maildrop locked").encode(&mut out);
/// assert_eq!(&out[..], b"-ERR [IN-USE] maildrop locked\r\n");
/// ```
#[derive(Debug, Clone)]
pub struct Reply {
    /// `+OK`, `-ERR` or `+ `.
    pub status: Status,
    /// An extended response code.
    pub code: Option<ResponseCode>,
    /// The human-readable text (CR and LF are replaced by spaces on output).
    pub text: String,
    /// The multi-line body, if any.
    pub body: Option<Body>,
    /// What the driver does next.
    pub action: Action,
    /// Set on the answer to a PASS, AUTH or APOP that reached the
    /// authenticator, so a throttle layer (see [`crate::layer::throttle`])
    /// can count failures. Never encoded.
    pub login: Option<LoginAttempt>,
}

impl Reply {
    /// `+OK text`.
    pub fn ok(text: impl Into<String>) -> Reply {
        Reply {
            status: Status::Ok,
            code: None,
            text: text.into(),
            body: None,
            action: Action::None,
            login: None,
        }
    }

    /// `-ERR text`.
    pub fn err(text: impl Into<String>) -> Reply {
        Reply {
            status: Status::Err,
            ..Reply::ok(text)
        }
    }

    /// `-ERR [CODE] text`.
    pub fn err_code(code: ResponseCode, text: impl Into<String>) -> Reply {
        Reply {
            code: Some(code),
            ..Reply::err(text)
        }
    }

    /// `+ challenge` (base64, possibly empty).
    pub fn challenge(text: impl Into<String>) -> Reply {
        Reply {
            status: Status::Continue,
            ..Reply::ok(text)
        }
    }

    /// Adds a multi-line body of text lines.
    pub fn with_lines(mut self, lines: Vec<String>) -> Reply {
        self.body = Some(Body::Lines(lines));
        self
    }

    /// Adds a message body.
    pub fn with_message(mut self, writer: MessageWriter) -> Reply {
        self.body = Some(Body::Message(writer));
        self
    }

    /// Records the outcome of a login attempt for the throttle layer.
    pub fn with_login(mut self, user: impl Into<String>, success: bool) -> Reply {
        self.login = Some(LoginAttempt {
            user: user.into(),
            success,
        });
        self
    }

    /// Sets the action taken after the reply.
    pub fn then(mut self, action: Action) -> Reply {
        self.action = action;
        self
    }

    /// Whether this is a `+OK`.
    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }

    /// Writes the status line and a text body into `out`. A message body is
    /// left in the returned writer for the caller to stream.
    pub fn encode(self, out: &mut BytesMut) -> Option<MessageWriter> {
        out.extend_from_slice(match self.status {
            Status::Ok => b"+OK",
            Status::Err => b"-ERR",
            Status::Continue => b"+",
        });
        if let Some(code) = self.code {
            out.extend_from_slice(b" [");
            out.extend_from_slice(code.as_str().as_bytes());
            out.extend_from_slice(b"]");
        }
        if !self.text.is_empty() || self.status == Status::Continue {
            out.extend_from_slice(b" ");
            push_sanitised(out, &self.text);
        }
        out.extend_from_slice(b"\r\n");
        match self.body {
            None => None,
            Some(Body::Lines(lines)) => {
                for line in lines {
                    if line.starts_with('.') {
                        out.extend_from_slice(b".");
                    }
                    push_sanitised(out, &line);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b".\r\n");
                None
            }
            Some(Body::Message(writer)) => Some(writer),
        }
    }
}

fn push_sanitised(out: &mut BytesMut, text: &str) {
    for b in text.bytes() {
        out.extend_from_slice(&[if b == b'\r' || b == b'\n' { b' ' } else { b }]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(r: Reply) -> Vec<u8> {
        let mut out = BytesMut::new();
        assert!(r.encode(&mut out).is_none());
        out.to_vec()
    }

    #[test]
    fn forms() {
        assert_eq!(enc(Reply::ok("")), b"+OK\r\n");
        assert_eq!(enc(Reply::challenge("")), b"+ \r\n");
        assert_eq!(enc(Reply::challenge("VXNlcm5hbWU6")), b"+ VXNlcm5hbWU6\r\n");
        assert_eq!(enc(Reply::err("a\r\nb")), b"-ERR a  b\r\n");
        assert_eq!(
            enc(Reply::ok("2 messages").with_lines(vec!["1 120".into(), ".x".into()])),
            b"+OK 2 messages\r\n1 120\r\n..x\r\n.\r\n"
        );
    }
}
