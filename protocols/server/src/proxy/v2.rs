//! PROXY protocol version 2: a binary header.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{Decoded, MAX_HEADER, ProxyError, ProxyHeader, V2_SIGNATURE, agrees};

/// Signature, version/command, family/transport, length.
const FIXED: usize = 16;

pub(super) fn decode(input: &[u8]) -> Result<Decoded, ProxyError> {
    if !agrees(input, &V2_SIGNATURE) {
        return Err(ProxyError::Missing);
    }
    let Some(&version_command) = input.get(12) else {
        return Ok(Decoded::Incomplete);
    };
    if version_command >> 4 != 2 {
        return Err(ProxyError::BadV2("version is not 2"));
    }
    let local = match version_command & 0x0f {
        0 => true,
        1 => false,
        _ => return Err(ProxyError::BadV2("unknown command")),
    };
    let Some(&family_transport) = input.get(13) else {
        return Ok(Decoded::Incomplete);
    };
    let family = family_transport >> 4;
    let transport = family_transport & 0x0f;
    if family > 3 {
        return Err(ProxyError::BadV2("unknown address family"));
    }
    if transport > 1 {
        return Err(ProxyError::BadV2("not a stream transport"));
    }
    let (Some(&hi), Some(&lo)) = (input.get(14), input.get(15)) else {
        return Ok(Decoded::Incomplete);
    };
    let length = FIXED + usize::from(u16::from_be_bytes([hi, lo]));
    if length > MAX_HEADER {
        return Err(ProxyError::TooLong);
    }
    let needed = match family {
        1 => 12,
        2 => 36,
        3 => 216,
        _ => 0,
    };
    if length - FIXED < needed && !local {
        return Err(ProxyError::BadV2("length too short for the addresses"));
    }
    if input.len() < length {
        return Ok(Decoded::Incomplete);
    }
    let body = &input[FIXED..length];
    let addresses = if local || transport == 0 {
        None
    } else {
        match family {
            1 => {
                let ip = |at: usize| {
                    IpAddr::V4(Ipv4Addr::new(
                        body[at],
                        body[at + 1],
                        body[at + 2],
                        body[at + 3],
                    ))
                };
                let port = |at: usize| u16::from_be_bytes([body[at], body[at + 1]]);
                Some((
                    SocketAddr::new(ip(0), port(8)),
                    SocketAddr::new(ip(4), port(10)),
                ))
            }
            2 => {
                let ip = |at: usize| {
                    let mut octets = [0u8; 16];
                    octets.copy_from_slice(&body[at..at + 16]);
                    IpAddr::V6(Ipv6Addr::from(octets))
                };
                let port = |at: usize| u16::from_be_bytes([body[at], body[at + 1]]);
                Some((
                    SocketAddr::new(ip(0), port(32)),
                    SocketAddr::new(ip(16), port(34)),
                ))
            }
            // UNSPEC and UNIX: no IP address to use.
            _ => None,
        }
    };
    Ok(Decoded::Complete {
        header: ProxyHeader {
            version: 2,
            addresses,
        },
        length,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::decode as top;

    fn header(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | command);
        h.push(family);
        h.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
        h.extend_from_slice(body);
        h
    }

    #[test]
    fn inet_inet6_local_unspec_unix() {
        let mut body = vec![192, 0, 2, 9, 198, 51, 100, 1];
        body.extend_from_slice(&40000u16.to_be_bytes());
        body.extend_from_slice(&995u16.to_be_bytes());
        body.extend_from_slice(&[0x03, 0, 4, 1, 2, 3, 4]); // a TLV, skipped
        let bytes = [header(1, 0x11, &body), b"+OK".to_vec()].concat();
        let Ok(Decoded::Complete { header: h, length }) = top(&bytes) else {
            panic!()
        };
        assert_eq!(length, bytes.len() - 3);
        assert_eq!(h.source(), Some("192.0.2.9:40000".parse().unwrap()));
        assert_eq!(h.destination(), Some("198.51.100.1:995".parse().unwrap()));
        assert_eq!(h.version(), 2);

        let mut body = vec![0u8; 36];
        body[15] = 1;
        body[31] = 2;
        body[32..34].copy_from_slice(&7u16.to_be_bytes());
        let Ok(Decoded::Complete { header: h, .. }) = top(&header(1, 0x21, &body)) else {
            panic!()
        };
        assert_eq!(h.source(), Some("[::1]:7".parse().unwrap()));

        for (command, family, body) in [
            (0, 0x00, vec![]),
            (0, 0x11, vec![]),
            (1, 0x00, vec![1, 2]),
            (1, 0x31, vec![0; 216]),
        ] {
            let Ok(Decoded::Complete { header: h, .. }) = top(&header(command, family, &body))
            else {
                panic!("{command} {family}")
            };
            assert_eq!(h.source(), None);
        }
    }

    #[test]
    fn bad_headers() {
        let mut v1 = header(1, 0x11, &[0; 12]);
        v1[12] = 0x11;
        assert_eq!(top(&v1), Err(ProxyError::BadV2("version is not 2")));
        assert!(top(&header(2, 0x11, &[0; 12])).is_err());
        assert!(top(&header(1, 0x41, &[0; 12])).is_err());
        assert!(top(&header(1, 0x12, &[0; 12])).is_err(), "datagram");
        assert!(top(&header(1, 0x11, &[0; 11])).is_err(), "short");
        assert!(top(&header(1, 0x21, &[0; 12])).is_err(), "short");
        assert_eq!(
            top(&header(1, 0x11, &[0; MAX_HEADER])),
            Err(ProxyError::TooLong)
        );
        assert_eq!(top(b"\r\n\r\n\0\r\nQUIX"), Err(ProxyError::Missing));
    }
}
