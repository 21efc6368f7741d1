//! Exchange tests and property tests of the SASL message parsers.

use async_trait::async_trait;
use proptest::prelude::*;

use super::*;
use crate::error::Result;

#[derive(Debug)]
struct Tokens;

#[async_trait]
impl TokenValidator for Tokens {
    async fn validate(&self, token: &str) -> Result<String> {
        match token {
            "good" => Ok("alice".to_owned()),
            _ => Err(Error::AuthFailed),
        }
    }
}

#[derive(Debug)]
struct Auth {
    scram: ScramCredentials,
}

#[async_trait]
impl Authenticator for Auth {
    fn mechanisms(&self) -> Vec<Mechanism> {
        Mechanism::ALL.to_vec()
    }
    async fn authenticate(&self, c: &Credentials) -> Result<Principal> {
        if c.authcid == "alice" && c.password == "pw" {
            Ok(Principal::user("alice"))
        } else {
            Err(Error::AuthFailed)
        }
    }
    async fn lookup(&self, user: &str) -> Result<Option<Principal>> {
        Ok((user == "alice").then(|| Principal::user("alice")))
    }
    async fn scram_credentials(&self, user: &str) -> Result<Option<ScramCredentials>> {
        Ok((user == "alice").then(|| self.scram.clone()))
    }
    fn token_validator(&self) -> Option<&dyn TokenValidator> {
        Some(&Tokens)
    }
}

fn auth() -> Auth {
    Auth {
        scram: ScramCredentials::generate("pw"),
    }
}

const CLEAR: Security = Security {
    plaintext_allowed: false,
    exporter: None,
};
const TLS13: Security = Security {
    plaintext_allowed: true,
    exporter: Some([5; 32]),
};

#[test]
fn offered_depends_on_the_connection() {
    let a = auth();
    assert_eq!(offered(&a, CLEAR), vec![Mechanism::ScramSha256]);
    assert_eq!(offered(&a, TLS13), Mechanism::ALL.to_vec());
    assert!(Exchange::start(&a, Mechanism::Plain, CLEAR).is_none());
    assert!(Exchange::start(&a, Mechanism::ScramSha256Plus, CLEAR).is_none());
}

async fn scram(a: &Auth, password: &str, client_exporter: Option<[u8; 32]>) -> Step {
    let mech = if client_exporter.is_some() {
        Mechanism::ScramSha256Plus
    } else {
        Mechanism::ScramSha256
    };
    let mut ex = Exchange::start(a, mech, TLS13).unwrap();
    let mut client = scram::ScramClient::new("alice", password, client_exporter.map(Vec::from));
    let Step::Challenge(sf) = ex.step(a, client.client_first().as_bytes()).await else {
        panic!("no server-first");
    };
    let fin = client.client_final(&sf).unwrap();
    match ex.step(a, fin.as_bytes()).await {
        Step::Challenge(v) => {
            client.verify_server_final(&v).unwrap();
            ex.step(a, b"").await
        }
        other => other,
    }
}

#[tokio::test]
async fn scram_exchanges() {
    let a = auth();
    assert!(matches!(scram(&a, "pw", None).await, Step::Success { .. }));
    assert!(matches!(
        scram(&a, "pw", Some([5; 32])).await,
        Step::Success { .. }
    ));
    assert!(matches!(
        scram(&a, "nope", None).await,
        Step::Refused { user: Some(u), .. } if u == "alice"
    ));
    match scram(&a, "pw", Some([6; 32])).await {
        Step::Refused { reason, .. } => assert!(reason.contains("channel-bindings-dont-match")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn bearer_exchanges() {
    let a = auth();
    let mut ex = Exchange::start(&a, Mechanism::OAuthBearer, TLS13).unwrap();
    let ok = ex.step(&a, b"n,a=alice,\x01auth=Bearer good\x01\x01").await;
    assert!(matches!(ok, Step::Success { principal, .. } if principal.user == "alice"));
    // A bad token: the error challenge, then the refusal.
    let mut ex = Exchange::start(&a, Mechanism::XOAuth2, TLS13).unwrap();
    let Step::Challenge(_) = ex.step(&a, b"user=alice\x01auth=Bearer bad\x01\x01").await else {
        panic!("no error challenge");
    };
    assert!(matches!(ex.step(&a, b"").await, Step::Refused { .. }));
    // A good token for someone else.
    let mut ex = Exchange::start(&a, Mechanism::OAuthBearer, TLS13).unwrap();
    let Step::Challenge(_) = ex.step(&a, b"n,a=bob,\x01auth=Bearer good\x01\x01").await else {
        panic!("no error challenge");
    };
    assert!(matches!(ex.step(&a, b"\x01").await, Step::Refused { .. }));
}

#[tokio::test]
async fn login_and_bounds() {
    let a = auth();
    let mut ex = Exchange::start(&a, Mechanism::Login, TLS13).unwrap();
    assert_eq!(ex.first_challenge(), b"Username:");
    assert!(matches!(ex.step(&a, b"alice").await, Step::Challenge(_)));
    assert!(matches!(ex.step(&a, b"pw").await, Step::Success { .. }));
    assert!(matches!(ex.step(&a, b"").await, Step::Malformed(_)));
    let mut ex = Exchange::start(&a, Mechanism::Plain, TLS13).unwrap();
    let long = vec![b'a'; MAX_MESSAGE + 1];
    assert!(matches!(ex.step(&a, &long).await, Step::Malformed(_)));
}

proptest! {
    #[test]
    fn scram_parsers_never_panic(msg in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = scram::parse_client_first(&msg);
        let _ = scram::parse_client_final(&msg);
        let _ = bearer::parse_oauthbearer(&msg);
        let _ = bearer::parse_xoauth2(&msg);
    }

    #[test]
    fn client_first_round_trips(
        user in "[^\\x00]{1,40}",
        authz in proptest::option::of("[^\\x00]{1,20}"),
        nonce in "[!-+\\--~]{1,64}",
    ) {
        let header = match &authz {
            Some(a) => format!("n,a={},", scram::encode_saslname(a)),
            None => "n,,".to_owned(),
        };
        let msg = format!("{header}n={},r={nonce}", scram::encode_saslname(&user));
        let parsed = scram::parse_client_first(msg.as_bytes()).unwrap();
        prop_assert_eq!(parsed.username, user);
        prop_assert_eq!(parsed.authzid, authz);
        prop_assert_eq!(parsed.nonce, nonce);
        prop_assert_eq!(parsed.gs2_header, header);
    }

    #[test]
    fn mutated_final_is_never_accepted(flip in 0usize..200, bit in 0u8..8) {
        let creds = ScramCredentials::derive("pw", b"0123456789abcdef", 4096);
        let mut client = scram::ScramClient::new("u", "pw", None);
        let first = scram::parse_client_first(client.client_first().as_bytes()).unwrap();
        let b = scram::Binding { plus: false, exporter: None, plus_offered: false };
        let sf = scram::ServerFirst::new(first, b, Some(creds), &[0; 32]).unwrap();
        let mut fin = client.client_final(sf.message.as_bytes()).unwrap().into_bytes();
        let i = flip % fin.len();
        fin[i] ^= 1 << bit;
        if let Ok(parsed) = scram::parse_client_final(&fin) {
            // Base64 may decode a flipped padding bit to the same bytes.
            let same = parsed.proof == scram::parse_client_final(
                client.client_final(sf.message.as_bytes()).unwrap().as_bytes()).unwrap().proof;
            prop_assert!(sf.verify(&parsed).is_err() || same);
        }
    }
}
