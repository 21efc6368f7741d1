//! The HAProxy PROXY protocol, versions 1 and 2: the header a load balancer
//! sends before the client's first byte, carrying the client's real address.
//!
//! A listener with [`ProxyProtocol`] enabled expects every connection from a
//! trusted address to start with one header (v1 or v2, whichever comes);
//! a connection from any other address, a missing header or a bad one is
//! refused and logged. The address in the header then stands for the client
//! everywhere: the per-IP connection limit, the login throttle, the logs.
//!
//! [`decode`] is the parser: incremental (a prefix of a valid header is
//! [`Decoded::Incomplete`], never an error; a prefix no header starts with
//! is an error at once), bounded ([`MAX_HEADER`] bytes at most, whatever
//! the header claims) and it never looks past the header's end, so the
//! bytes that follow (a TLS ClientHello, pipelined commands) are left to
//! the protocol.
//!
//! # Version 1 (text)
//!
//! One line of at most 107 bytes, CRLF included:
//!
//! ```text
//! "PROXY" SP "TCP4" SP src-ipv4 SP dst-ipv4 SP src-port SP dst-port CRLF
//! "PROXY" SP "TCP6" SP src-ipv6 SP dst-ipv6 SP src-port SP dst-port CRLF
//! "PROXY" SP "UNKNOWN" *(any byte but CR and LF) CRLF
//! ```
//!
//! Ports are decimal, 0 to 65535, digits only. `UNKNOWN` means the proxy
//! does not know the client: the connection's own address is used.
//!
//! # Version 2 (binary)
//!
//! | bytes | field |
//! |---|---|
//! | 0–11 | signature `0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A` |
//! | 12 | high nibble: version, must be `2`; low nibble: command, `0` LOCAL or `1` PROXY |
//! | 13 | high nibble: family, `0` UNSPEC, `1` INET, `2` INET6, `3` UNIX; low nibble: transport, `0` UNSPEC, `1` STREAM (`2` DGRAM is refused) |
//! | 14–15 | length of the rest, big-endian |
//! | 16– | INET: source address (4), destination address (4), source port (2), destination port (2); INET6: 16, 16, 2, 2; UNIX: two 108-byte paths; then TLVs, skipped |
//!
//! LOCAL (a health check from the proxy itself), UNSPEC and UNIX carry no
//! client address: the connection's own is used.
//!
//! ```
//! use mailroom_server::proxy::{Decoded, decode};
//!
//! let bytes = b"PROXY TCP4 192.0.2.7 198.51.100.1 50000 993\r\n\x16\x03\x01";
//! assert_eq!(decode(&bytes[..20]).unwrap(), Decoded::Incomplete);
//! let Decoded::Complete { header, length } = decode(bytes).unwrap() else { panic!() };
//! assert_eq!(length, 45); // the TLS record after it is not the header's
//! assert_eq!(header.source().unwrap().to_string(), "192.0.2.7:50000");
//! assert!(decode(b"GET / HTTP/1.1\r\n").is_err());
//! ```

mod v1;
mod v2;

use std::net::SocketAddr;

use ipnet::IpNet;

/// The most bytes a header may take (version 1: 107; version 2: 16 plus
/// its addresses and TLVs). A proxy that sends more (very large TLVs) is
/// refused rather than buffered without bound.
pub const MAX_HEADER: usize = 4096;

/// The 12 bytes every version 2 header starts with.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// A complete PROXY header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHeader {
    version: u8,
    addresses: Option<(SocketAddr, SocketAddr)>,
}

impl ProxyHeader {
    /// 1 or 2.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The client's address as the proxy saw it, or `None` when the header
    /// carries none (v1 `UNKNOWN`, v2 LOCAL, UNSPEC or UNIX).
    pub fn source(&self) -> Option<SocketAddr> {
        self.addresses.map(|(s, _)| s)
    }

    /// The address the client connected to on the proxy, if given.
    pub fn destination(&self) -> Option<SocketAddr> {
        self.addresses.map(|(_, d)| d)
    }
}

/// What [`decode`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// The bytes so far are the start of a header: read more.
    Incomplete,
    /// A whole header, `length` bytes long; what follows is the protocol's.
    Complete {
        /// The header.
        header: ProxyHeader,
        /// How many bytes of the input it took.
        length: usize,
    },
}

/// A connection did not start with a valid PROXY header. Always the peer's
/// fault (the proxy or a client that bypassed it); retrying the same bytes
/// cannot help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The first bytes are neither `PROXY ` nor the version 2 signature.
    #[error("no PROXY protocol header")]
    Missing,
    /// A version 1 line that breaks the grammar; the reason says where.
    #[error("bad PROXY v1 header: {0}")]
    BadV1(&'static str),
    /// A version 2 header with a bad version, command, family or length.
    #[error("bad PROXY v2 header: {0}")]
    BadV2(&'static str),
    /// The header is longer than [`MAX_HEADER`] (or a v1 line than 107 bytes).
    #[error("PROXY header too long")]
    TooLong,
}

/// Parses the PROXY header at the start of `input` (see the module docs).
///
/// # Errors
///
/// [`ProxyError`] as soon as `input` cannot be the start of a valid header.
pub fn decode(input: &[u8]) -> Result<Decoded, ProxyError> {
    match input.first() {
        None => Ok(Decoded::Incomplete),
        Some(b'P') => v1::decode(input),
        Some(b'\r') => v2::decode(input),
        Some(_) => Err(ProxyError::Missing),
    }
}

/// PROXY protocol settings of a listener: the addresses allowed to send a
/// header (the load balancers). A connection from anywhere else is refused:
/// a client that could set its own address could dodge every per-IP bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyProtocol {
    trusted: Vec<IpNet>,
}

impl ProxyProtocol {
    /// Trusts headers from addresses in `trusted` (networks such as
    /// `10.0.0.0/8`; a single address is a `/32` or `/128`).
    pub fn trusting(trusted: impl IntoIterator<Item = IpNet>) -> ProxyProtocol {
        ProxyProtocol {
            trusted: trusted.into_iter().collect(),
        }
    }

    /// The trusted networks.
    pub fn trusted(&self) -> &[IpNet] {
        &self.trusted
    }

    /// Whether a connection from `ip` may send a header.
    pub fn trusts(&self, ip: std::net::IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted.iter().any(|net| net.contains(&ip))
    }
}

/// Whether `prefix` is a prefix of `whole` or `whole` of it, compared over
/// their common length.
fn agrees(prefix: &[u8], whole: &[u8]) -> bool {
    let n = prefix.len().min(whole.len());
    prefix[..n] == whole[..n]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_is_by_network_and_canonical() {
        let p =
            ProxyProtocol::trusting(["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()]);
        assert!(p.trusts("10.1.2.3".parse().unwrap()));
        assert!(p.trusts("::ffff:10.1.2.3".parse().unwrap()));
        assert!(p.trusts("::1".parse().unwrap()));
        assert!(!p.trusts("11.0.0.1".parse().unwrap()));
        assert!(!ProxyProtocol::trusting([]).trusts("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn first_byte_decides() {
        assert_eq!(decode(b""), Ok(Decoded::Incomplete));
        assert_eq!(decode(b"P"), Ok(Decoded::Incomplete));
        assert_eq!(decode(b"\r"), Ok(Decoded::Incomplete));
        assert_eq!(decode(b"a001 LOGIN"), Err(ProxyError::Missing));
        assert_eq!(decode(&[0x16, 3, 1]), Err(ProxyError::Missing));
    }
}
