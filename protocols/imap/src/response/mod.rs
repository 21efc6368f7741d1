//! IMAP responses: types and the encoder.
//!
//! [`encode`] turns one [`Response`] into wire bytes as a list of chunks.
//! Message bodies (`BODY[...]`, `RFC822...`) are written as literals whose
//! data is the store's [`Bytes`] slice, pushed as its own chunk without a
//! copy; the driver writes the chunks in order (vectored if it likes).
//!
//! Strings are written quoted when they can be (no CR, LF or NUL, at most
//! 1 KiB, ASCII unless UTF8=ACCEPT is on) and as literals otherwise; mailbox
//! names are modified UTF-7 unless [`EncodeOptions::utf8`]; human-readable
//! text has CR and LF replaced so a response can never be split.

use bytes::Bytes;

pub mod types;
pub use types::*;

pub(crate) mod body_structure;
mod data;
mod fetch;
mod status;
pub(crate) mod wire;

use wire::Out;

/// How to encode responses for one connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncodeOptions {
    /// UTF8=ACCEPT (RFC 6855) is enabled: mailbox names go out as UTF-8
    /// quoted strings or literals instead of modified UTF-7.
    pub utf8: bool,
}

/// Encodes one response as a list of chunks; message bodies are `Bytes`
/// slices appended without copying.
pub fn encode(resp: &Response, opts: EncodeOptions, out: &mut Vec<Bytes>) {
    let mut o = Out::new(out, opts.utf8);
    match resp {
        Response::Status(s) => status::status(&mut o, s),
        Response::Data(d) => data::data(&mut o, d),
        Response::Continue(text) => {
            o.raw(b"+ ");
            o.text(text);
        }
    }
    o.finish();
}

/// Encodes one response into a single contiguous buffer (copies the
/// bodies; for tests and logs of small responses).
pub fn encode_to_vec(resp: &Response, opts: EncodeOptions) -> Vec<u8> {
    let mut chunks = Vec::new();
    encode(resp, opts, &mut chunks);
    chunks.concat()
}

#[cfg(test)]
mod tests;
