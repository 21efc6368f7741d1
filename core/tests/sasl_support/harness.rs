//! The checks run on every input of the `sasl` fuzz target and of its
//! corpus replay: the SASL message parsers (SCRAM client-first and
//! client-final, OAUTHBEARER, XOAUTH2) never panic on any bytes, and what
//! they accept is consistent with the input: the gs2 header and the bare
//! message are the input split in two, client-final-without-proof is the
//! input's prefix, names and tokens are within their bounds. The input as a
//! client-first message also goes through the server's first step (never a
//! panic, and a challenge that starts with the client's nonce).

use mailroom_core::sasl::bearer::{MAX_TOKEN, parse_oauthbearer, parse_xoauth2};
use mailroom_core::sasl::scram::{
    Binding, MAX_NONCE, ScramCredentials, ServerFirst, parse_client_final, parse_client_first,
};

/// Parses `data` every way and checks the results (panics on a violation).
pub(crate) fn run(data: &[u8]) {
    if let Ok(first) = parse_client_first(data) {
        let joined = format!("{}{}", first.gs2_header, first.bare);
        assert_eq!(joined.as_bytes(), data, "gs2 header + bare is the input");
        assert!(!first.username.is_empty());
        assert!(!first.nonce.is_empty() && first.nonce.len() <= MAX_NONCE);
        assert!(first.gs2_header.ends_with(','));
        let creds = ScramCredentials::derive("pw", b"0123456789abcdef", 4096);
        for (plus, exporter) in [(false, None), (true, Some([1u8; 32]))] {
            let binding = Binding {
                plus,
                exporter,
                plus_offered: true,
            };
            if let Ok(sf) = ServerFirst::new(first.clone(), binding, Some(creds.clone()), &[0; 32])
            {
                assert!(sf.message.starts_with(&format!("r={}", first.nonce)));
            }
        }
    }
    if let Ok(fin) = parse_client_final(data) {
        assert!(data.starts_with(fin.without_proof.as_bytes()));
        assert!(fin.without_proof.starts_with("c="));
    }
    for m in [parse_oauthbearer(data), parse_xoauth2(data)]
        .into_iter()
        .flatten()
    {
        assert!(!m.token.is_empty() && m.token.len() <= MAX_TOKEN);
        assert!(m.user.as_deref().is_none_or(|u| !u.is_empty()));
    }
}
