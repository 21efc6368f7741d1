//! Replies: a code, an enhanced status code (RFC 3463) and text lines.

use bytes::{BufMut, BytesMut};

/// One SMTP/LMTP reply, possibly multi-line.
///
/// ```
/// use bytes::BytesMut;
/// use mailroom_lmtp::codec::Reply;
///
/// let mut out = BytesMut::new();
/// Reply::new(452, [4, 2, 2], "mailbox full").encode(&mut out);
/// assert_eq!(&out[..], b"452 4.2.2 mailbox full\r\n");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// The enhanced status code (`None` for the greeting and LHLO lines).
    pub status: Option<[u8; 3]>,
    /// The text, one entry per line (never empty).
    pub lines: Vec<String>,
}

impl Reply {
    /// A one-line reply with an enhanced status code.
    pub fn new(code: u16, status: [u8; 3], text: impl Into<String>) -> Reply {
        Reply {
            code,
            status: Some(status),
            lines: vec![text.into()],
        }
    }

    /// A reply without enhanced status code (greeting, LHLO).
    pub fn plain(code: u16, lines: Vec<String>) -> Reply {
        Reply {
            code,
            status: None,
            lines: if lines.is_empty() {
                vec![String::new()]
            } else {
                lines
            },
        }
    }

    /// Whether the code is 2xx or 3xx.
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// Writes the reply; CR and LF in the text become spaces.
    pub fn encode(&self, out: &mut BytesMut) {
        let single_line = self.lines.len() == 1;
        if let (true, Some(s)) = (single_line, self.status) {
            // smtp-proto's writer formats the one-line form with its status code.
            let r =
                smtp_proto::Response::new(self.code, s[0], s[1], s[2], sanitise(&self.lines[0]));
            let _ = r.write((&mut *out).writer());
            return;
        }
        let last = self.lines.len() - 1;
        for (i, line) in self.lines.iter().enumerate() {
            out.extend_from_slice(self.code.to_string().as_bytes());
            out.put_u8(if i == last { b' ' } else { b'-' });
            if let Some([a, b, c]) = self.status {
                out.extend_from_slice(format!("{a}.{b}.{c} ").as_bytes());
            }
            out.extend_from_slice(sanitise(line).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
}

fn sanitise(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(r: &Reply) -> String {
        let mut out = BytesMut::new();
        r.encode(&mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn forms() {
        assert_eq!(enc(&Reply::new(250, [2, 1, 5], "ok")), "250 2.1.5 ok\r\n");
        assert_eq!(
            enc(&Reply::plain(250, vec!["mx".into(), "PIPELINING".into()])),
            "250-mx\r\n250 PIPELINING\r\n"
        );
        assert_eq!(
            enc(&Reply::plain(220, vec!["hi\r\n".into()])),
            "220 hi  \r\n"
        );
        assert_eq!(
            enc(&Reply {
                code: 550,
                status: Some([5, 1, 1]),
                lines: vec!["a".into(), "b".into()]
            }),
            "550-5.1.1 a\r\n550 5.1.1 b\r\n"
        );
    }
}
