//! mailroomd with the PROXY protocol on a listener (`proxy_protocol`,
//! `proxy_trusted`): the client's address from a v1 or v2 header is the one
//! the per-IP limit counts; a missing or bad header is refused and logged;
//! the config refuses `proxy_protocol` without trusted addresses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Server, run, stderr};

fn v2(source: [u8; 4], port: u16) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0, 12]);
    h.extend_from_slice(&source);
    h.extend_from_slice(&[198, 51, 100, 1]);
    h.extend_from_slice(&port.to_be_bytes());
    h.extend_from_slice(&143u16.to_be_bytes());
    h
}

/// Sends `header` and returns all the server says until it closes or 3 s pass.
fn greeting_after(addr: std::net::SocketAddr, header: &[u8]) -> (TcpStream, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(header).unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\n") {
        match s.read(&mut byte) {
            Ok(0) | Err(_) => break,
            Ok(_) => line.push(byte[0]),
        }
    }
    (s, String::from_utf8_lossy(&line).into_owned())
}

#[test]
fn proxied_addresses_reach_the_per_ip_limit_and_bad_headers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mailroomd.toml");
    std::fs::write(
        &cfg,
        "data_dir = \"data\"\n\n[imap]\nlisten = \"127.0.0.1:0\"\nproxy_protocol = true\n\
         proxy_trusted = [\"127.0.0.1\", \"10.0.0.0/8\"]\n\n[limits]\nmax_connections_per_ip = 1\n",
    )
    .unwrap();
    let server = Server::start(dir.path(), &["-c", cfg.to_str().unwrap()]);
    let addr = server.imap.unwrap();

    // v1: client 192.0.2.7 is served
    let (_a, greeting) = greeting_after(addr, b"PROXY TCP4 192.0.2.7 198.51.100.1 50000 143\r\n");
    assert!(greeting.starts_with("* OK"), "{greeting:?}");
    // v2, the same client again: its one connection is taken
    let (_b, greeting) = greeting_after(addr, &v2([192, 0, 2, 7], 50001));
    assert_eq!(
        greeting,
        "* BYE too many connections from your address, try later\r\n"
    );
    // another client behind the same balancer is served
    let (_c, greeting) = greeting_after(addr, &v2([192, 0, 2, 8], 40000));
    assert!(greeting.starts_with("* OK"), "{greeting:?}");

    // no header, a bad one: closed without a greeting
    let (_d, said) = greeting_after(addr, b"a1 CAPABILITY\r\n");
    assert_eq!(said, "");
    let (_e, said) = greeting_after(addr, b"PROXY TCP4 192.0.2.9 198.51.100.1 99999 143\r\n");
    assert_eq!(said, "");
    // the refusals are logged
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let log = server.stderr();
        if log.contains("bad PROXY header") && log.contains("192.0.2.7") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not logged:\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn proxy_protocol_needs_trusted_addresses() {
    let dir = tempfile::tempdir().unwrap();
    for (table, want) in [
        (
            "[pop3]\nlisten = \"127.0.0.1:0\"\nproxy_protocol = true\n",
            "[pop3] proxy_protocol = true needs proxy_trusted",
        ),
        (
            "[imaps]\nlisten = \"127.0.0.1:0\"\nproxy_protocol = true\nproxy_trusted = [\"nope\"]\n",
            "[imaps] proxy_trusted: \"nope\" is not an IP address or network",
        ),
        (
            "[imap]\nlisten = \"127.0.0.1:0\"\nproxy_trusted = [\"10.0.0.1\"]\n",
            "[imap] proxy_trusted is set but proxy_protocol is not true",
        ),
    ] {
        let cfg = dir.path().join("bad.toml");
        std::fs::write(&cfg, format!("data_dir = \"data\"\n\n{table}")).unwrap();
        let out = run(dir.path(), &["-c", cfg.to_str().unwrap()], "");
        assert!(!out.status.success());
        assert!(stderr(&out).contains(want), "{}", stderr(&out));
    }
}
