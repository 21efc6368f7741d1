//! PREVIEW (RFC 8970): `FETCH PREVIEW` and `PREVIEW (LAZY)`, a short
//! plain-text preview of a message.
//!
//! - The text is that of the first text/plain body part, else of the first
//!   text/html one with its markup removed (`mail-parser`'s
//!   `body_preview`, which decodes the transfer encoding and charset);
//!   runs of white space become one space, leading and trailing space is
//!   dropped, and it is cut at [`MAX_PREVIEW`] characters (§3: at most 256
//!   characters).
//! - A message with no text part has the empty preview `""` (§3: NIL is
//!   only for a preview the server cannot make now).
//! - The preview is made on demand from the message, so LAZY changes
//!   nothing: it is always available (§4 lets a server answer LAZY with
//!   the preview itself).

use mail_parser::MessageParser;

/// The most characters of a preview (RFC 8970 §3).
pub const MAX_PREVIEW: usize = 256;

/// The preview of a message's bytes.
pub(crate) fn preview(message: &[u8]) -> String {
    let Some(parsed) = MessageParser::default().parse(message) else {
        return String::new();
    };
    // Ask for more than needed: white space folding shortens it.
    let Some(raw) = parsed.body_preview(MAX_PREVIEW * 4) else {
        return String::new();
    };
    let mut out = String::with_capacity(MAX_PREVIEW);
    let mut count = 0;
    for word in raw.split_whitespace() {
        for (i, ch) in std::iter::once(' ').chain(word.chars()).enumerate() {
            if i == 0 && out.is_empty() {
                continue;
            }
            if count == MAX_PREVIEW {
                return out;
            }
            out.push(if ch.is_control() { ' ' } else { ch });
            count += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_folded_and_cut() {
        let m = b"Subject: x\r\n\r\n  Hello,\r\n\r\n   world\tagain \r\n";
        assert_eq!(preview(m), "Hello, world again");
        let long = format!("Subject: x\r\n\r\n{}\r\n", "abc ".repeat(200));
        let p = preview(long.as_bytes());
        assert_eq!(p.chars().count(), MAX_PREVIEW);
        assert!(p.starts_with("abc abc"));
    }

    #[test]
    fn html_loses_its_markup_and_no_text_is_empty() {
        let m = b"Content-Type: text/html\r\n\r\n<p>Hi <b>there</b></p>\r\n";
        assert_eq!(preview(m), "Hi there");
        let m = b"Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n";
        assert_eq!(preview(m), "");
    }
}
