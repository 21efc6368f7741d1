//! Every SASL mechanism over TLS as `mailroomd serve` runs them, with real
//! clients: Python's imaplib, imapclient and poplib (SCRAM through the
//! scramp package) log in with PLAIN, LOGIN, SCRAM-SHA-256, OAUTHBEARER and
//! XOAUTH2 (JWTs signed with the configured key); SCRAM-SHA-256-PLUS with
//! `tls-exporter` binding from a Rust client (Python's ssl module cannot
//! export keying material), over IMAP and POP3. Then failures: a wrong SCRAM
//! proof, a bad token and a channel binding to another connection are
//! refused, and all three are counted by the failed-login table IMAP and
//! POP3 share (a later POP3 login waits for them).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{Imap, Server, TlsStream, add_user, tls, write_config};
use mailroom_core::base64;
use mailroom_core::sasl::scram::{EXPORTER_LABEL, ScramClient};
use mailroomd::token::JwtValidator;

const USER: &str = "sasha@example.com";
const PASSWORD: &str = "sasl pw, with = signs";
const KEY: &[u8] = b"the HS256 key of this test, 40 bytes long";
const AUDIENCE: &str = "mailroom-test";

fn start(dir: &Path) -> Server {
    std::fs::write(dir.join("token.key"), KEY).unwrap();
    let cfg = write_config(
        dir,
        &format!(
            "[pop3]\nlisten = \"127.0.0.1:0\"\n\n[pop3s]\nlisten = \"127.0.0.1:0\"\n\n\
             [auth]\ntoken_key_file = \"token.key\"\ntoken_audience = \"{AUDIENCE}\"\n"
        ),
    );
    let cfg = cfg.to_str().unwrap().to_owned();
    add_user(dir, &cfg, USER, PASSWORD);
    Server::start(dir, &["-c", &cfg])
}

fn exporter(c: &Imap<TlsStream>) -> Vec<u8> {
    c.get_ref()
        .conn
        .export_keying_material(vec![0u8; 32], EXPORTER_LABEL, None)
        .unwrap()
}

/// SCRAM-SHA-256-PLUS over IMAP, binding to `bind` (this connection's
/// exporter, or another's); returns the tagged status.
fn imap_scram_plus(c: &mut Imap<TlsStream>, bind: Vec<u8>) -> String {
    let mut client = ScramClient::new(USER, PASSWORD, Some(bind));
    let first = base64::encode(client.client_first().as_bytes());
    let r = c.raw(&format!("p1 AUTHENTICATE SCRAM-SHA-256-PLUS {first}"));
    let server_first = base64::decode(r.trim_end().strip_prefix("+ ").unwrap()).unwrap();
    let fin = client.client_final(&server_first).unwrap();
    let r = c.raw(&base64::encode(fin.as_bytes()));
    let Some(server_final) = r.trim_end().strip_prefix("+ ") else {
        return r;
    };
    client
        .verify_server_final(&base64::decode(server_final).unwrap())
        .unwrap();
    c.raw("")
}

#[test]
fn every_mechanism_with_real_clients_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let (imaps, pop3s) = (server.imaps.unwrap(), server.pop3s.unwrap());
    let cert = dir.path().join("data/tls/cert.pem");
    let token = JwtValidator::sign(KEY, USER, AUDIENCE, None, 600).unwrap();
    let wrong_audience = JwtValidator::sign(KEY, USER, "elsewhere", None, 600).unwrap();

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sasl_clients.py");
    let out = Command::new("python3")
        .arg(script)
        .args([
            &imaps.port().to_string(),
            &pop3s.port().to_string(),
            cert.to_str().unwrap(),
            USER,
            PASSWORD,
            &token,
            &wrong_audience,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = "AUTH=PLAIN AUTH=LOGIN AUTH=SCRAM-SHA-256 AUTH=SCRAM-SHA-256-PLUS AUTH=OAUTHBEARER AUTH=XOAUTH2";
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            &format!("imaplib caps {all}"),
            "imaplib PLAIN OK OK",
            "imaplib LOGIN OK OK",
            "imaplib SCRAM-SHA-256 OK OK",
            "imaplib OAUTHBEARER OK OK",
            "imaplib XOAUTH2 OK OK",
            "imapclient PLAIN OK True",
            "imapclient SCRAM-SHA-256 OK True",
            "imapclient OAUTHBEARER OK True",
            "imapclient XOAUTH2 OK True",
            "poplib caps PLAIN LOGIN SCRAM-SHA-256 SCRAM-SHA-256-PLUS OAUTHBEARER XOAUTH2",
            "poplib PLAIN +OK True",
            "poplib LOGIN +OK True",
            "poplib SCRAM-SHA-256 +OK True",
            "poplib OAUTHBEARER +OK True",
            "poplib XOAUTH2 +OK True",
            "imaplib SCRAM-SHA-256 wrong-password refused True",
            "imaplib OAUTHBEARER bad-token refused True",
        ],
        "{text}"
    );

    // SCRAM-SHA-256-PLUS over IMAPS, bound to this connection.
    let mut c = tls(imaps, &cert);
    c.line();
    let bind = exporter(&c);
    let r = imap_scram_plus(&mut c, bind.clone());
    assert!(r.starts_with("p1 OK"), "{r}");
    assert!(c.command("SELECT INBOX").1.starts_with("OK"));

    // And over POP3S.
    let mut p = tls(pop3s, &cert);
    assert!(p.line().starts_with("+OK"));
    let mut client = ScramClient::new(USER, PASSWORD, Some(exporter(&p)));
    let first = base64::encode(client.client_first().as_bytes());
    let r = p.raw(&format!("AUTH SCRAM-SHA-256-PLUS {first}"));
    let server_first = base64::decode(r.trim_end().strip_prefix("+ ").unwrap()).unwrap();
    let fin = client.client_final(&server_first).unwrap();
    let r = p.raw(&base64::encode(fin.as_bytes()));
    let server_final = base64::decode(r.trim_end().strip_prefix("+ ").unwrap()).unwrap();
    client.verify_server_final(&server_final).unwrap();
    let r = p.raw("");
    assert!(r.starts_with("+OK"), "{r}");
    assert!(p.raw("STAT").starts_with("+OK"));
    assert!(p.raw("QUIT").starts_with("+OK"));

    // A channel binding to another connection (as a man in the middle
    // relaying the exchange would present) is refused.
    let mut c = tls(imaps, &cert);
    c.line();
    let r = imap_scram_plus(&mut c, bind);
    assert!(r.starts_with("p1 NO [AUTHENTICATIONFAILED]"), "{r}");

    // The failures (wrong proof, bad token, binding mismatch) are counted in
    // the one table every protocol shares: each is logged with the delay the
    // next attempt from this address waits (1 s doubled per failure), so the
    // third says 4 s; a POP3 login after them still succeeds (after that
    // wait). The throttle's own tests check the wait with a paused clock.
    let mut p = tls(pop3s, &cert);
    p.line();
    assert!(p.raw(&format!("USER {USER}")).starts_with("+OK"));
    let r = p.raw(&format!("PASS {PASSWORD}"));
    assert!(r.starts_with("+OK"), "{r}");
    let log = server.stderr();
    let delays: Vec<u64> = log
        .lines()
        .filter(|l| l.contains("failed login throttled"))
        .filter_map(|l| l.split("delay_ms=").nth(1))
        .filter_map(|v| {
            v.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<u64>()
                .ok()
        })
        .collect();
    assert!(delays.len() >= 3 && delays[2] == 4000, "{delays:?}\n{log}");
    drop(server);
}

/// Runs `scram_logins.py` (scramp and PLAIN through imaplib and poplib)
/// against the plain IMAP and POP3 ports; returns its lines.
fn scram_logins(server: &Server, attempts: &[[&str; 4]]) -> Vec<String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scram_logins.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(server.imap.unwrap().port().to_string())
        .arg(server.pop3.map_or(0, |a| a.port()).to_string())
        .arg(serde_json::to_string(attempts).unwrap())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines().map(str::to_owned).collect()
}

/// SASLprep (RFC 4013) end to end: passwords set with `mailroomd user add`
/// in one Unicode form log in typed in another, by SCRAM-SHA-256 from
/// scramp (which prepares as RFC 5802 asks) and by PLAIN, over IMAP and
/// POP3: a decomposed `pa\u{308}sswo\u{308}rd` answers a composed
/// `pässwörd`, a no-break space a space, and the other way round. A
/// password SASLprep refuses cannot be set, with a message that says why.
#[test]
fn saslprep_non_ascii_passwords_with_scramp() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "[pop3]\nlisten = \"127.0.0.1:0\"\n\n[auth]\nallow_plaintext = true\n",
    );
    let cfg = cfg.to_str().unwrap().to_owned();
    add_user(
        dir.path(),
        &cfg,
        "saskia@example.com",
        "pa\u{308}sswo\u{308}rd",
    );
    add_user(dir.path(), &cfg, "nils@example.com", "two\u{a0}words");
    add_user(dir.path(), &cfg, "omar@example.com", "p\u{e4}ssw\u{f6}rd");
    let out = common::run(
        dir.path(),
        &[
            "-c",
            &cfg,
            "user",
            "add",
            "bell@example.com",
            "--password-stdin",
        ],
        "ring\u{7}ring\n",
    );
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(
        err.contains("invalid password: SASLprep (RFC 4013) refuses it: prohibited character"),
        "{err}"
    );
    assert!(!err.contains("ring"), "{err}");

    let server = Server::start(dir.path(), &["-c", &cfg]);
    let lines = scram_logins(
        &server,
        &[
            [
                "composed",
                "SCRAM-SHA-256",
                "saskia@example.com",
                "p\u{e4}ssw\u{f6}rd",
            ],
            [
                "decomposed",
                "SCRAM-SHA-256",
                "saskia@example.com",
                "pa\u{308}sswo\u{308}rd",
            ],
            ["plain", "PLAIN", "saskia@example.com", "p\u{e4}ssw\u{f6}rd"],
            ["space", "SCRAM-SHA-256", "nils@example.com", "two words"],
            ["nbsp", "PLAIN", "nils@example.com", "two\u{a0}words"],
            [
                "reverse",
                "SCRAM-SHA-256",
                "omar@example.com",
                "pa\u{308}ssw\u{f6}rd",
            ],
        ],
    );
    assert_eq!(
        lines,
        [
            "composed imap OK",
            "composed pop3 +OK",
            "decomposed imap OK",
            "decomposed pop3 +OK",
            "plain imap OK",
            "plain pop3 +OK",
            "space imap OK",
            "space pop3 +OK",
            "nbsp imap OK",
            "nbsp pop3 +OK",
            "reverse imap OK",
            "reverse pop3 +OK",
        ]
    );
}
