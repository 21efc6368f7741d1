//! Property tests of the decoder: generated commands round-trip through a
//! test formatter in every literal style and any chunking, and random bytes
//! never panic the decoder, never stall it and never grow its buffer.

mod codec_support;

use bytes::BytesMut;
use codec_support::{arb, format::Style, format::format_request, harness};
use mailroom_imap::parser::{Decoded, Decoder, Limits};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn commands_roundtrip(tag in arb::tag(), cmd in arb::command()) {
        harness::check_roundtrip(&tag, &cmd);
    }

    #[test]
    fn any_chunking_gives_the_same_commands(
        cmds in proptest::collection::vec((arb::tag(), arb::command()), 1..5),
        cuts in proptest::collection::vec(1usize..40, 1..50),
    ) {
        let mut stream = Vec::new();
        for (t, c) in &cmds {
            stream.extend(format_request(t, c, Style::LiteralPlus));
        }
        let mut d = Decoder::new(Limits::default());
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut i = 0;
        let mut k = 0;
        while i < stream.len() {
            let end = (i + cuts[k % cuts.len()]).min(stream.len());
            k += 1;
            buf.extend_from_slice(&stream[i..end]);
            i = end;
            loop {
                match d.decode(&mut buf) {
                    Decoded::Incomplete => break,
                    Decoded::Request(r) => got.push((r.tag, r.command)),
                    other => panic!("{other:?}"),
                }
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got, cmds);
    }

    #[test]
    fn random_bytes_never_panic_or_stall(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
        harness::run(&data);
    }

    #[test]
    fn imap_shaped_noise_never_panics(
        parts in proptest::collection::vec(
            proptest::sample::select(vec![
                &b"a1 "[..], b"UID ", b"FETCH ", b"SEARCH ", b"(",
                b")", b"{5}\r\n", b"{3+}\r\n", b"\"", b"\\",
                b"\r\n", b"1:*", b"BODY[", b"]", b"<0.10>",
                b"NOT ", b"OR ", b"APPEND x ", b"\0", b"{99999999999}\r\n",
                b" ", b"HEADER.FIELDS (A)", b"LOGIN ", b"&-", b"\xff",
                b"{4097+}\r\n", b"{4096+}\r\n",
            ]),
            0..200,
        ),
    ) {
        let data: Vec<u8> = parts.concat();
        let mut with_sizes = vec![5u8, 1, 17, 3];
        with_sizes.extend_from_slice(&data);
        harness::run(&with_sizes);
        // The same with LITERAL- on.
        with_sizes[0] |= 0x80;
        harness::run(&with_sizes);
    }
}

/// Commands naming a mailbox that is not modified UTF-7 round-trip too:
/// the formatter writes that name as it came. (The fuzzer found the
/// formatter encoding it, which made a valid name of it.)
#[test]
fn commands_with_names_that_are_not_modified_utf7_roundtrip() {
    for line in [
        "a1 SELECT ~peter/mail/&U,BTFw-/&ZeVnLIqe2222222222622222222222N}}-",
        "a1 RENAME AT&-T &foo",
        "a1 RENAME &foo &foo",
        "a1 RENAME \"&-foo\" &foo",
        "a1 LIST &foo x",
        "a1 LIST \"\" (\"&foo\" \"&bar\")",
        "a1 LSUB \"\" &foo*",
        "a1 UID MOVE 1:* AT&T",
        "a1 APPEND &foo {1+}\r\nx",
    ] {
        let mut d = Decoder::new(Limits::default());
        let mut buf = BytesMut::from(format!("{line}\r\n").as_bytes());
        let cmd = match d.decode(&mut buf) {
            Decoded::Request(r) => r.command,
            other => panic!("{line}: {other:?}"),
        };
        assert!(
            matches!(
                cmd,
                mailroom_imap::command::Command::InvalidMailboxName { .. }
            ),
            "{line}: {cmd:?}"
        );
        harness::check_roundtrip("a1", &cmd);
    }
}
