//! PROXY protocol version 1: one text line.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{Decoded, ProxyError, ProxyHeader, agrees};

/// The longest version 1 line, CRLF included (the specification's bound:
/// `PROXY TCP6` with two full-length IPv6 addresses and two 5-digit ports).
pub(super) const MAX_LINE: usize = 107;

pub(super) fn decode(input: &[u8]) -> Result<Decoded, ProxyError> {
    if !agrees(input, b"PROXY ") {
        return Err(ProxyError::Missing);
    }
    let window = &input[..input.len().min(MAX_LINE)];
    let Some(cr) = window.iter().position(|&b| b == b'\r' || b == b'\n') else {
        if input.len() >= MAX_LINE {
            return Err(ProxyError::TooLong);
        }
        return check_prefix(input).map(|()| Decoded::Incomplete);
    };
    if window[cr] == b'\n' {
        return Err(ProxyError::BadV1("LF without CR"));
    }
    match window.get(cr + 1) {
        None if input.len() < MAX_LINE => {
            return check_prefix(&input[..cr]).map(|()| Decoded::Incomplete);
        }
        None => return Err(ProxyError::TooLong),
        Some(b'\n') => {}
        Some(_) => return Err(ProxyError::BadV1("CR without LF")),
    }
    let header = parse_line(&input[..cr])?;
    Ok(Decoded::Complete {
        header,
        length: cr + 2,
    })
}

/// Rejects a line start no valid line has (the protocol word, the
/// characters of the fields), so garbage is refused without waiting for a
/// CRLF that may never come.
fn check_prefix(line: &[u8]) -> Result<(), ProxyError> {
    if line.len() < 6 {
        return Ok(()); // agrees with "PROXY " already checked
    }
    let rest = &line[6..];
    let protocols: [&[u8]; 3] = [b"TCP4 ", b"TCP6 ", b"UNKNOWN"];
    let Some(proto) = protocols.iter().find(|p| agrees(rest, p)) else {
        return Err(ProxyError::BadV1("unknown protocol"));
    };
    if *proto == b"UNKNOWN" || rest.len() <= proto.len() {
        return Ok(());
    }
    let fields = &rest[proto.len()..];
    let ok = if proto.starts_with(b"TCP4") {
        fields
            .iter()
            .all(|b| b.is_ascii_digit() || *b == b'.' || *b == b' ')
    } else {
        fields
            .iter()
            .all(|b| b.is_ascii_hexdigit() || *b == b':' || *b == b'.' || *b == b' ')
    };
    if ok {
        Ok(())
    } else {
        Err(ProxyError::BadV1("unexpected character"))
    }
}

fn parse_line(line: &[u8]) -> Result<ProxyHeader, ProxyError> {
    let rest = line
        .strip_prefix(b"PROXY ")
        .ok_or(ProxyError::BadV1("not a PROXY line"))?;
    // After UNKNOWN anything up to the CRLF is ignored (the specification).
    if let Some(tail) = rest.strip_prefix(b"UNKNOWN") {
        if !tail.is_empty() && !tail.starts_with(b" ") {
            return Err(ProxyError::BadV1("unknown protocol"));
        }
        return Ok(ProxyHeader {
            version: 1,
            addresses: None,
        });
    }
    let rest = std::str::from_utf8(rest).map_err(|_| ProxyError::BadV1("not ASCII"))?;
    let mut parts = rest.split(' ');
    let (Some(proto), Some(src), Some(dst), Some(sport), Some(dport), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(ProxyError::BadV1("wrong number of fields"));
    };
    let (src, dst): (IpAddr, IpAddr) = match proto {
        "TCP4" => (
            IpAddr::V4(
                src.parse::<Ipv4Addr>()
                    .map_err(|_| ProxyError::BadV1("bad IPv4 address"))?,
            ),
            IpAddr::V4(
                dst.parse::<Ipv4Addr>()
                    .map_err(|_| ProxyError::BadV1("bad IPv4 address"))?,
            ),
        ),
        "TCP6" => (
            IpAddr::V6(
                src.parse::<Ipv6Addr>()
                    .map_err(|_| ProxyError::BadV1("bad IPv6 address"))?,
            ),
            IpAddr::V6(
                dst.parse::<Ipv6Addr>()
                    .map_err(|_| ProxyError::BadV1("bad IPv6 address"))?,
            ),
        ),
        _ => return Err(ProxyError::BadV1("unknown protocol")),
    };
    Ok(ProxyHeader {
        version: 1,
        addresses: Some((
            SocketAddr::new(src, port(sport)?),
            SocketAddr::new(dst, port(dport)?),
        )),
    })
}

fn port(s: &str) -> Result<u16, ProxyError> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ProxyError::BadV1("bad port"));
    }
    s.parse().map_err(|_| ProxyError::BadV1("bad port"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::decode as top;

    fn complete(input: &[u8]) -> (ProxyHeader, usize) {
        match top(input) {
            Ok(Decoded::Complete { header, length }) => (header, length),
            other => panic!("{other:?} for {:?}", String::from_utf8_lossy(input)),
        }
    }

    #[test]
    fn tcp4_tcp6_unknown() {
        let (h, n) = complete(b"PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\r\nA001");
        assert_eq!(n, 42);
        assert_eq!(h.source(), Some("192.0.2.1:56324".parse().unwrap()));
        assert_eq!(h.destination(), Some("192.0.2.2:443".parse().unwrap()));
        let (h, _) = complete(b"PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n");
        assert_eq!(h.source(), Some("[2001:db8::1]:1".parse().unwrap()));
        let (h, n) = complete(b"PROXY UNKNOWN\r\n");
        assert_eq!((h.source(), n), (None, 15));
        let (h, _) = complete(b"PROXY UNKNOWN ffff::1 x y z\r\n");
        assert_eq!(h.source(), None);
        assert_eq!(h.version(), 1);
    }

    #[test]
    fn the_longest_line_fits() {
        let line = b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
        assert_eq!(complete(line).1, line.len());
        // UNKNOWN may carry anything up to the bound, CRLF included
        let mut line = b"PROXY UNKNOWN ".to_vec();
        line.resize(MAX_LINE - 2, b'x');
        line.extend_from_slice(b"\r\n");
        assert_eq!(complete(&line).1, MAX_LINE);
        line.insert(20, b'x');
        assert_eq!(top(&line), Err(ProxyError::TooLong));
    }

    #[test]
    fn bad_lines() {
        let bad: &[&[u8]] = &[
            b"PROXY TCP4 192.0.2.1 192.0.2.2 56324\r\n",
            b"PROXY TCP4 192.0.2.1 192.0.2.2 56324 443 9\r\n",
            b"PROXY TCP4 192.0.2.1 192.0.2.2 65536 443\r\n",
            b"PROXY TCP4 192.0.2.1 192.0.2.2 +1 443\r\n",
            b"PROXY TCP4 2001:db8::1 192.0.2.2 1 443\r\n",
            b"PROXY TCP6 192.0.2.1 2001:db8::1 1 2\r\n",
            b"PROXY TCP4  192.0.2.1 192.0.2.2 1 2\r\n",
            b"PROXY UDP4 192.0.2.1 192.0.2.2 1 2\r\n",
            b"PROXY UNKNOWNX\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\rX",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 \r\n",
            b"PROXY\r\n",
            b"PROXX TCP4",
            b"PROXY TCP4 1.2.3.x",
        ];
        for b in bad {
            assert!(top(b).is_err(), "{:?}", String::from_utf8_lossy(b));
        }
        let long = [b"PROXY UNKNOWN ".as_slice(), &[b'x'; 200]].concat();
        assert_eq!(top(&long), Err(ProxyError::TooLong));
    }
}
