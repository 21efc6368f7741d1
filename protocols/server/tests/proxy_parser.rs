//! Property tests of the PROXY protocol parser: every valid v1 and v2
//! header (built here from the specification's layouts) decodes to the
//! addresses it was built from, at every split of the input; arbitrary
//! bytes go through the fuzz harness's checks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fuzz_support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use mailroom_server::proxy::{Decoded, V2_SIGNATURE, decode};
use proptest::prelude::*;

fn v1(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let proto = if source.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {proto} {} {} {} {}\r\n",
        source.ip(),
        destination.ip(),
        source.port(),
        destination.port()
    )
    .into_bytes()
}

fn v2(source: SocketAddr, destination: SocketAddr, tlvs: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    let family = match (source.ip(), destination.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            body.extend_from_slice(&s.octets());
            body.extend_from_slice(&d.octets());
            0x11
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            body.extend_from_slice(&s.octets());
            body.extend_from_slice(&d.octets());
            0x21
        }
        _ => unreachable!("same family"),
    };
    body.extend_from_slice(&source.port().to_be_bytes());
    body.extend_from_slice(&destination.port().to_be_bytes());
    body.extend_from_slice(tlvs);
    let mut h = V2_SIGNATURE.to_vec();
    h.push(0x21);
    h.push(family);
    h.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
    h.extend_from_slice(&body);
    h
}

fn pair() -> impl Strategy<Value = (SocketAddr, SocketAddr)> {
    prop_oneof![
        (any::<u32>(), any::<u32>(), any::<u16>(), any::<u16>()).prop_map(|(s, d, sp, dp)| (
            SocketAddr::new(Ipv4Addr::from(s).into(), sp),
            SocketAddr::new(Ipv4Addr::from(d).into(), dp)
        )),
        (any::<u128>(), any::<u128>(), any::<u16>(), any::<u16>()).prop_map(|(s, d, sp, dp)| (
            SocketAddr::new(Ipv6Addr::from(s).into(), sp),
            SocketAddr::new(Ipv6Addr::from(d).into(), dp)
        )),
    ]
}

proptest! {
    #[test]
    fn valid_headers_decode_at_every_split(
        (source, destination) in pair(),
        version2 in any::<bool>(),
        tlvs in proptest::collection::vec(any::<u8>(), 0..300),
        after in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let header = if version2 { v2(source, destination, &tlvs) } else { v1(source, destination) };
        let input = [header.clone(), after].concat();
        for cut in 0..header.len() {
            prop_assert_eq!(decode(&input[..cut]), Ok(Decoded::Incomplete), "cut {}", cut);
        }
        for end in header.len()..=input.len() {
            let Ok(Decoded::Complete { header: h, length }) = decode(&input[..end]) else {
                panic!("not complete at {end}");
            };
            prop_assert_eq!(length, header.len());
            prop_assert_eq!(h.source(), Some(source));
            prop_assert_eq!(h.destination(), Some(destination));
            prop_assert_eq!(h.version(), if version2 { 2 } else { 1 });
        }
    }

    #[test]
    fn arbitrary_bytes_pass_the_fuzz_checks(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        fuzz_support::harness::run(&data);
    }

    #[test]
    fn mutated_headers_pass_the_fuzz_checks(
        (source, destination) in pair(),
        version2 in any::<bool>(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut header = if version2 { v2(source, destination, &[]) } else { v1(source, destination) };
        let i = at.index(header.len());
        header[i] = byte;
        fuzz_support::harness::run(&header);
    }
}
