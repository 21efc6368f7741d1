//! Replays the `fetch` fuzz corpus (`fuzz/corpus/fetch/`) and CPython's
//! corpus of odd real-world messages through the fuzz target's checks: the
//! FETCH response for every message parses with `imap-codec` and has our
//! part tree.
// Test harnesses: a failed expectation must fail the test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod fetch_support;

use mailroom_testkit::corpus;

#[test]
fn fuzz_corpus_replays_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/fetch");
    corpus::replay(&dir, 50, fetch_support::harness::run);
}

/// CPython's `test_email` messages (Debian: libpython3.11-testsuite,
/// installed by `.ci/run`); missing is a failure, not a skip.
#[test]
fn cpython_email_corpus_encodes_to_valid_imap() {
    for f in corpus::cpython_email_messages() {
        let data = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        fetch_support::harness::run(&data);
    }
}

/// 8-bit media types (sent as literals, as Dovecot does), odd parameters
/// and a nesting deeper than the oracle reads: encoded without a panic,
/// and valid IMAP wherever imap-codec can judge.
#[test]
fn odd_content_types_encode_to_valid_imap() {
    let mut messages: Vec<Vec<u8>> = [
        &b"Content-Type: text/pl\xc3\xa4in\r\n\r\nx\r\n"[..],
        b"Content-Type: application/x-\xff; name=\"a\\\"b\"\r\n\r\nx\r\n",
        b"Content-Type: multipart/mixe\xc3\x89; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n",
        b"Content-Type: message/rfc822\r\n\r\nSubject: \xe2\x82\xac\r\nContent-Type: text/html; charset=\"\"\r\n\r\n<p>\r\n",
        b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n\r\n----\r\n",
    ]
    .iter()
    .map(|m| m.to_vec())
    .collect();
    let mut deep = Vec::new();
    for i in 0..20 {
        deep.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n").as_bytes(),
        );
    }
    deep.extend_from_slice(b"Content-Type: text/plain\r\n\r\nbottom\r\n");
    messages.push(deep);
    for m in &messages {
        fetch_support::harness::run(m);
    }
}
