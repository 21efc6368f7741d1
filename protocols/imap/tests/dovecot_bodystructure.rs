//! ENVELOPE, BODY and BODYSTRUCTURE compared byte for byte with Dovecot's.
//!
//! The messages are CPython's email test corpus (`msg_*.txt` of
//! `test.test_email`, Debian package `libpython3.11-testsuite`) and the
//! tricky fixtures of `tests/fixtures/mime/`, all with CRLF line ends. They
//! are put in a Maildir, a private Dovecot (`/usr/sbin/dovecot`, Debian
//! package `dovecot-imapd`) serves it on a free loopback port, and for every
//! message the answer to `FETCH (ENVELOPE BODYSTRUCTURE BODY BODY.PEEK[])`
//! is compared with what our parser and encoder make of the same bytes.
//!
//! Where we differ on purpose, [`ALLOWED`] says so with the reason; anything
//! else fails the test, and so does an allowance that is no longer needed.
//! Missing Dovecot or a missing corpus fail the test too.
//!
//! Set `MIME_DUMP_DIR` to get every difference written there, and
//! `MIME_EXTRA_DIR` to compare the files of another directory as well.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a panic is the failure report

#[allow(dead_code)]
#[path = "../src/response/body_structure.rs"]
mod body_structure;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mailroom_core::MessageSummary;
use mailroom_testkit::corpus::{cpython_email_dir as corpus_dir, crlf};

const DOVECOT: &str = "/usr/sbin/dovecot";

/// Media types, subtypes, parameter names and disposition types are
/// lower-cased (`MessageSummary` keeps them so; RFC 2045 §5.1 and RFC 2183
/// make them case-insensitive); Dovecot repeats them as written.
const LOWER_CASE: &str = "types and parameter names lower-cased (RFC 2045: case-insensitive)";
/// `mail-parser` decodes RFC 2231 continuations, charsets and RFC 2047 words
/// in parameter values (a `MessageSummary` design choice); Dovecot joins
/// continuations but passes `name*=charset'lang'%xx` and encoded words on.
const DECODED_PARAMS: &str = "RFC 2231 / RFC 2047 parameter values decoded (mail-parser)";
/// Dovecot ignores `boundary*=...` (RFC 2231 form) and shows a multipart
/// without parts; we split the message at the decoded boundary.
const ENCODED_BOUNDARY: &str = "Dovecot does not decode an RFC 2231 boundary* parameter";
/// For a Content-Type without a valid type/subtype Dovecot writes empty
/// strings as type and subtype (and no line count); RFC 2045 §5.2 says to
/// treat such a part as text/plain; charset=us-ascii, which we do.
const INVALID_TYPE: &str =
    "invalid Content-Type: Dovecot writes \"\" \"\", we use text/plain (RFC 2045 5.2)";
/// RFC 9051 §7.5.2 gives message/global the envelope and body of
/// message/rfc822; Dovecot 2.3 treats it as an opaque part.
const MESSAGE_GLOBAL: &str = "message/global nested like message/rfc822 (RFC 9051 7.5.2)";
/// `boundary=""` is invalid (RFC 2046 §5.1.1: 1 to 70 characters);
/// `mail-parser` drops it, so the multipart has no parts. Dovecot splits at
/// every line starting with `--`.
const EMPTY_BOUNDARY: &str = "empty boundary parameter is invalid (RFC 2046 5.1.1)";
/// `Content-Disposition: ; filename=x` has no disposition type; Dovecot
/// writes an empty one, we write NIL.
const NO_DISPOSITION_TYPE: &str = "Content-Disposition without a type: Dovecot writes \"\", we NIL";
/// Header text that `MessageSummary` holds as `String` and that is neither
/// ASCII nor UTF-8 is read as ISO-8859-1 (so it goes out as UTF-8);
/// Dovecot repeats the raw bytes.
const LATIN1: &str = "non-UTF-8 parameter or description read as ISO-8859-1";
/// Dovecot "cleans up" the Subject and display names for humans (tabs and
/// runs of spaces to one space, names with `"` or `\\` as literals); the
/// envelope carries the raw unfolded values (and drops leading whitespace
/// also when the value starts on a continuation line).
const RAW_ENVELOPE: &str =
    "raw unfolded Subject/names; Dovecot collapses whitespace, literals for quotes";

/// Differences we keep on purpose: (message, item, reason).
const ALLOWED: &[(&str, &str, &str)] = &[
    ("address_edge.eml", "ENVELOPE", RAW_ENVELOPE),
    ("addresses_weird.eml", "ENVELOPE", RAW_ENVELOPE),
    (
        "attachment_params.eml",
        "BODYSTRUCTURE",
        NO_DISPOSITION_TYPE,
    ),
    ("empty_boundary_param.eml", "BODY", EMPTY_BOUNDARY),
    ("empty_boundary_param.eml", "BODYSTRUCTURE", EMPTY_BOUNDARY),
    ("folded_headers.eml", "ENVELOPE", RAW_ENVELOPE),
    ("garbage_content_type.eml", "BODY", INVALID_TYPE),
    ("garbage_content_type.eml", "BODYSTRUCTURE", INVALID_TYPE),
    ("latin1_params.eml", "BODY", LATIN1),
    ("latin1_params.eml", "BODYSTRUCTURE", LATIN1),
    ("message_global.eml", "BODY", MESSAGE_GLOBAL),
    ("message_global.eml", "BODYSTRUCTURE", MESSAGE_GLOBAL),
    ("missing_semicolon.eml", "BODY", INVALID_TYPE),
    ("missing_semicolon.eml", "BODYSTRUCTURE", INVALID_TYPE),
    ("msg_14.txt", "BODY", INVALID_TYPE),
    ("msg_14.txt", "BODYSTRUCTURE", INVALID_TYPE),
    ("msg_16.txt", "BODY", LOWER_CASE),
    ("msg_16.txt", "BODYSTRUCTURE", LOWER_CASE),
    ("msg_27.txt", "ENVELOPE", RAW_ENVELOPE),
    ("msg_29.txt", "BODY", DECODED_PARAMS),
    ("msg_29.txt", "BODYSTRUCTURE", DECODED_PARAMS),
    ("msg_32.txt", "BODY", DECODED_PARAMS),
    ("msg_32.txt", "BODYSTRUCTURE", DECODED_PARAMS),
    ("msg_33.txt", "BODY", ENCODED_BOUNDARY),
    ("msg_33.txt", "BODYSTRUCTURE", ENCODED_BOUNDARY),
    ("msg_36.txt", "BODY", LOWER_CASE),
    ("msg_36.txt", "BODYSTRUCTURE", LOWER_CASE),
    ("nul_and_cr.eml", "ENVELOPE", RAW_ENVELOPE),
    ("rfc2231.eml", "BODY", DECODED_PARAMS),
    ("rfc2231.eml", "BODYSTRUCTURE", DECODED_PARAMS),
    ("uppercase_types.eml", "BODY", LOWER_CASE),
    ("uppercase_types.eml", "BODYSTRUCTURE", LOWER_CASE),
];

/// Every message to compare, by name.
fn messages() -> BTreeMap<String, Vec<u8>> {
    let mut all = BTreeMap::new();
    let corpus = corpus_dir();
    for entry in std::fs::read_dir(&corpus).expect("read corpus") {
        let path = entry.expect("corpus entry").path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if name.starts_with("msg_") && name.ends_with(".txt") {
            all.insert(
                name,
                crlf(&std::fs::read(&path).expect("read corpus message")),
            );
        }
    }
    assert!(
        all.len() >= 40,
        "the corpus at {} looks incomplete",
        corpus.display()
    );
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mime");
    let mut n = 0;
    for entry in std::fs::read_dir(&fixtures).expect("read fixtures") {
        let path = entry.expect("fixture entry").path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".eml") {
            all.insert(name, crlf(&std::fs::read(&path).expect("read fixture")));
            n += 1;
        }
    }
    assert!(n > 0, "no fixtures in {}", fixtures.display());
    // more messages to compare, for exploring (not part of the fixed set)
    if let Some(extra) = std::env::var_os("MIME_EXTRA_DIR") {
        for entry in std::fs::read_dir(&extra).expect("read MIME_EXTRA_DIR") {
            let path = entry.expect("extra entry").path();
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let data = crlf(&std::fs::read(&path).expect("read extra"));
            if !all.values().any(|d| *d == data) {
                all.insert(format!("extra/{name}"), data);
            }
        }
    }
    all
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A private Dovecot on a free loopback port, stopped on drop.
struct Dovecot {
    dir: tempfile::TempDir,
    conf: PathBuf,
    child: Child,
    port: u16,
}

impl Dovecot {
    /// Starts Dovecot serving `messages` in user `u`'s INBOX.
    fn start(messages: &BTreeMap<String, Vec<u8>>) -> Dovecot {
        assert!(
            Path::new(DOVECOT).exists(),
            "{DOVECOT} is missing: install the Debian package dovecot-imapd"
        );
        let dir = tempfile::Builder::new()
            .prefix("mime-dovecot")
            .tempdir()
            .expect("temp dir");
        let d = dir.path();
        let uid = run("id", &["-u"]);
        let user = run("id", &["-un"]);
        // Dovecot refuses to run mail or login processes as root.
        let (mail_uid, mail_gid, service_user) = if uid == "0" {
            (
                "65534".to_string(),
                "65534".to_string(),
                "nobody".to_string(),
            )
        } else {
            (uid.clone(), run("id", &["-g"]), user.clone())
        };
        let maildir = d.join("home/Maildir");
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).expect("mkdir maildir");
        }
        for sub in ["run", "state"] {
            std::fs::create_dir_all(d.join(sub)).expect("mkdir");
        }
        for (i, data) in messages.values().enumerate() {
            let file = maildir.join("cur").join(format!(
                "{}.M{i}P1.mailroom,S={}:2,",
                1_000_000 + i,
                data.len()
            ));
            std::fs::write(file, data).expect("write message");
        }
        if uid == "0" {
            let st = Command::new("chown")
                .args(["-R", &format!("{mail_uid}:{mail_gid}")])
                .arg(d.join("home"))
                .status()
                .expect("chown");
            assert!(st.success(), "chown of the maildir failed");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        std::fs::write(d.join("passwd"), "u:{PLAIN}p\n").expect("passwd");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let p = d.display();
        let conf = d.join("dovecot.conf");
        std::fs::write(
            &conf,
            format!(
                "protocols = imap\nlisten = 127.0.0.1\nbase_dir = {p}/run\nstate_dir = {p}/state\n\
                 log_path = {p}/dovecot.log\nssl = no\nauth_mechanisms = plain\n\
                 disable_plaintext_auth = no\ndefault_internal_user = {service_user}\n\
                 default_login_user = {service_user}\nfirst_valid_uid = 1\n\
                 mail_location = maildir:{p}/home/Maildir\n\
                 passdb {{\n  driver = passwd-file\n  args = {p}/passwd\n}}\n\
                 userdb {{\n  driver = static\n  args = uid={mail_uid} gid={mail_gid} home={p}/home\n}}\n\
                 service imap-login {{\n  chroot =\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n\
                 inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
                 service anvil {{\n  chroot =\n}}\n"
            ),
        )
        .expect("dovecot.conf");
        let child = Command::new(DOVECOT)
            .arg("-F")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dovecot");
        let mut dovecot = Dovecot {
            dir,
            conf,
            child,
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = dovecot.child.try_wait() {
                panic!("dovecot exited with {status}: {}", dovecot.log());
            }
            assert!(
                Instant::now() < deadline,
                "dovecot does not listen: {}",
                dovecot.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        dovecot
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = Command::new(DOVECOT)
            .arg("-c")
            .arg(&self.conf)
            .arg("stop")
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal IMAP client: sends commands, reads responses with literals.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let writer = stream.try_clone().expect("clone");
        let mut c = Client {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = c.response_line();
        assert!(
            greeting.starts_with(b"* OK"),
            "greeting: {}",
            String::from_utf8_lossy(&greeting)
        );
        c
    }

    /// One response line with its literals inlined.
    fn response_line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        loop {
            let start = line.len();
            self.reader.read_until(b'\n', &mut line).expect("read");
            assert!(line.len() > start, "connection closed");
            let chunk = &line[start..];
            let Some(n) = literal_len(chunk) else {
                return line;
            };
            let mut data = vec![0; n];
            self.reader.read_exact(&mut data).expect("read literal");
            line.extend_from_slice(&data);
        }
    }

    /// Runs a command; returns the untagged responses, asserting OK.
    fn command(&mut self, tag: &str, cmd: &str) -> Vec<Vec<u8>> {
        write!(self.writer, "{tag} {cmd}\r\n").expect("write");
        let mut untagged = Vec::new();
        loop {
            let line = self.response_line();
            if line.starts_with(format!("{tag} ").as_bytes()) {
                assert!(
                    line.starts_with(format!("{tag} OK").as_bytes()),
                    "{cmd}: {}",
                    String::from_utf8_lossy(&line)
                );
                return untagged;
            }
            untagged.push(line);
        }
    }
}

/// `n` if `line` ends with `{n}\r\n`.
fn literal_len(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"\r\n")?.strip_suffix(b"}")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&line[open + 1..]).ok()?.parse().ok()
}

/// Skips one IMAP value (atom, NIL, number, quoted string, literal or
/// parenthesized list) at `pos`; returns the offset after it.
fn skip_value(s: &[u8], mut pos: usize) -> usize {
    match s.get(pos) {
        Some(b'(') => {
            pos += 1;
            while s.get(pos) != Some(&b')') {
                assert!(pos < s.len(), "unterminated list");
                if s[pos] == b' ' {
                    pos += 1;
                } else {
                    pos = skip_value(s, pos);
                }
            }
            pos + 1
        }
        Some(b'"') => {
            pos += 1;
            loop {
                match s.get(pos) {
                    Some(b'\\') => pos += 2,
                    Some(b'"') => return pos + 1,
                    Some(_) => pos += 1,
                    None => panic!("unterminated string"),
                }
            }
        }
        Some(b'{') => {
            let close = pos + s[pos..].iter().position(|&b| b == b'}').expect("literal");
            let n: usize = std::str::from_utf8(&s[pos + 1..close])
                .expect("utf8")
                .parse()
                .expect("len");
            close + 3 + n
        }
        _ => {
            while pos < s.len() && !matches!(s[pos], b' ' | b')' | b'(') {
                pos += 1;
            }
            pos
        }
    }
}

/// The items of a `* n FETCH (...)` response: name to raw value.
fn fetch_items(line: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let open = line.iter().position(|&b| b == b'(').expect("FETCH (");
    let mut pos = open + 1;
    let mut items = BTreeMap::new();
    while line[pos] != b')' {
        let name_end = pos
            + line[pos..]
                .iter()
                .position(|&b| b == b' ')
                .expect("item name");
        let name = String::from_utf8_lossy(&line[pos..name_end]).into_owned();
        let value_end = skip_value(line, name_end + 1);
        items.insert(name, line[name_end + 1..value_end].to_vec());
        pos = value_end;
        if line[pos] == b' ' {
            pos += 1;
        }
    }
    items
}

/// The data of a literal value `{n}\r\n...`.
fn literal_data(value: &[u8]) -> Vec<u8> {
    let start = value.iter().position(|&b| b == b'\n').expect("literal") + 1;
    value[start..].to_vec()
}

#[test]
fn envelope_and_bodystructure_match_dovecot() {
    let messages = messages();
    // Dovecot sends NUL bytes of a body as 0x80 (no IMAP literal may hold NUL).
    let no_nul = |data: &[u8]| -> Vec<u8> {
        data.iter()
            .map(|&b| if b == 0 { 0x80 } else { b })
            .collect()
    };
    let by_content: BTreeMap<Vec<u8>, &str> = messages
        .iter()
        .map(|(name, data)| (no_nul(data), name.as_str()))
        .collect();
    assert_eq!(
        by_content.len(),
        messages.len(),
        "two fixtures have the same bytes"
    );

    let dovecot = Dovecot::start(&messages);
    let mut client = Client::connect(dovecot.port);
    client.command("a", "LOGIN u p");
    client.command("b", "SELECT INBOX");
    let responses = client.command("c", "FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY BODY.PEEK[])");
    client.command("d", "LOGOUT");

    let dump = std::env::var_os("MIME_DUMP_DIR").map(PathBuf::from);
    let mut seen = 0;
    let mut exact = 0;
    let mut allowed_used = Vec::new();
    let mut failures = Vec::new();
    for line in responses
        .iter()
        .filter(|l| l.windows(6).any(|w| w == b"FETCH "))
    {
        let items = fetch_items(line);
        let raw = literal_data(&items["BODY[]"]);
        let name = by_content
            .get(raw.as_slice())
            .unwrap_or_else(|| panic!("Dovecot returned a message we did not give it"));
        seen += 1;
        // parse the bytes Dovecot has in its Maildir
        let summary = MessageSummary::parse(&messages[*name]);
        let mut ours = BTreeMap::new();
        let mut out = Vec::new();
        body_structure::write_envelope(&mut out, &summary.envelope);
        ours.insert("ENVELOPE", out);
        let mut out = Vec::new();
        body_structure::write_body_structure(&mut out, &summary.structure, true);
        ours.insert("BODYSTRUCTURE", out);
        let mut out = Vec::new();
        body_structure::write_body_structure(&mut out, &summary.structure, false);
        ours.insert("BODY", out);
        let mut all_equal = true;
        for (item, mine) in &ours {
            let theirs = &items[*item];
            let allowance = ALLOWED.iter().find(|(m, i, _)| m == name && i == item);
            if mine == theirs {
                if allowance.is_some() {
                    failures.push(format!("{name} {item}: matches now, drop it from ALLOWED"));
                }
                continue;
            }
            all_equal = false;
            if let Some(dir) = &dump {
                std::fs::create_dir_all(dir).expect("dump dir");
                let file = name.replace('/', "_");
                std::fs::write(dir.join(format!("{file}.{item}.ours")), mine).expect("dump");
                std::fs::write(dir.join(format!("{file}.{item}.dovecot")), theirs).expect("dump");
            }
            match allowance {
                // a case-only allowance must not hide any other difference
                Some(a) if a.2 == LOWER_CASE && !mine.eq_ignore_ascii_case(theirs) => failures
                    .push(format!(
                        "{name} {item}: differs in more than case:\n  dovecot: {}\n  ours:    {}",
                        String::from_utf8_lossy(theirs),
                        String::from_utf8_lossy(mine)
                    )),
                Some(a) => allowed_used.push(*a),
                None => failures.push(format!(
                    "{name} {item}:\n  dovecot: {}\n  ours:    {}",
                    String::from_utf8_lossy(theirs),
                    String::from_utf8_lossy(mine)
                )),
            }
        }
        if all_equal {
            exact += 1;
        }
    }
    assert_eq!(seen, messages.len(), "Dovecot did not return every message");
    println!(
        "{exact} of {seen} messages match Dovecot exactly (ENVELOPE, BODY and BODYSTRUCTURE); \
         {} allowed differences:",
        allowed_used.len()
    );
    for (m, i, why) in &allowed_used {
        println!("  {m} {i}: {why}");
    }
    drop(dovecot);
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
