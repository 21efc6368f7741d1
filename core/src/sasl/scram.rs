//! SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677) with
//! `tls-exporter` channel binding (RFC 9266): the stored verifier, the
//! parsers of the client's two messages, the server's checks and a small
//! client (for tests and for tools that log in to a Mailroom server).
//!
//! The messages, byte by byte (RFC 5802 §7; `,` separates attributes):
//!
//! ```text
//! client-first  = gs2-header client-first-bare
//! gs2-header    = ("n" / "y" / "p=" cb-name) "," ["a=" saslname] ","
//! client-first-bare = "n=" saslname "," "r=" c-nonce ["," extensions]
//! server-first  = "r=" c-nonce s-nonce "," "s=" base64(salt) "," "i=" iterations
//! client-final  = "c=" base64(gs2-header cbind-data) "," "r=" nonce ["," extensions] "," "p=" base64(proof)
//! server-final  = "v=" base64(ServerSignature) / "e=" error
//! ```
//!
//! In a `saslname`, `,` is written `=2C` and `=` is written `=3D`; any other
//! `=` is an error. Passwords go through SASLprep ([`super::saslprep`],
//! RFC 5802 §2.2's `Normalize`) before PBKDF2, on both sides: a verifier
//! made from `pa\u{308}ss` answers a client that typed `päss`. The server
//! prepares the user name of client-first before looking it up; the client
//! here prepares it before sending it. Printable ASCII, what SASLprep leaves
//! unchanged, derives the same keys as before preparation was added.
//!
//! ```
//! use mailroom_core::sasl::scram::{ScramClient, ScramCredentials};
//!
//! let stored = ScramCredentials::derive("pencil", b"salt of 16 bytes", 4096);
//! let text = stored.to_text();
//! assert_eq!(ScramCredentials::parse(&text), Some(stored));
//! let client = ScramClient::new("user", "pencil", None);
//! assert!(client.client_first().starts_with("n,,n=user,r="));
//! ```

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::base64;

/// The one channel-binding type offered (RFC 9266).
pub const CB_TLS_EXPORTER: &str = "tls-exporter";
/// The exporter label of RFC 9266 §2.
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";
/// The iteration count given to new verifiers (the minimum RFC 7677 §4 asks for).
pub const DEFAULT_ITERATIONS: u32 = 4096;
/// The fewest iterations a stored verifier may have.
pub const MIN_ITERATIONS: u32 = 4096;
/// The most iterations a stored verifier may have (each login costs the
/// client this many HMACs).
pub const MAX_ITERATIONS: u32 = 10_000_000;
/// The longest nonce accepted from a client.
pub const MAX_NONCE: usize = 256;
/// The longest salt a stored verifier may have.
pub const MAX_SALT: usize = 256;

type HmacSha256 = Hmac<Sha256>;

/// Why a SCRAM message was refused. `Display` gives the RFC 5802 `e=`
/// error value where there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScramError {
    /// The message does not follow the grammar.
    #[error("invalid-encoding: {0}")]
    Malformed(&'static str),
    /// The client asked for a mandatory extension (`m=`).
    #[error("extensions-not-supported")]
    ExtensionsNotSupported,
    /// The client's nonce in client-final is not the combined nonce.
    #[error("invalid-proof: nonce mismatch")]
    NonceMismatch,
    /// `c=` is not the gs2 header and channel-binding data of this connection.
    #[error("channel-bindings-dont-match")]
    ChannelBindingMismatch,
    /// The client supports channel binding and believes the server does not
    /// (`y`), but the server does: a downgrade.
    #[error("server-does-support-channel-binding")]
    Downgrade,
    /// A channel-binding type other than `tls-exporter`, or binding asked
    /// for under the non-PLUS mechanism (or not asked for under PLUS).
    #[error("unsupported-channel-binding-type")]
    UnsupportedChannelBinding,
    /// The proof is wrong (or the user does not exist).
    #[error("invalid-proof")]
    InvalidProof,
    /// Server-side: the server signature is wrong.
    #[error("server signature mismatch")]
    BadServerSignature,
    /// The server answered with `e=`.
    #[error("server error: {0}")]
    ServerError(String),
}

/// What a user's password leaves in the users file for SCRAM: the salt, the
/// iteration count, `StoredKey = H(HMAC(SaltedPassword, "Client Key"))` and
/// `ServerKey = HMAC(SaltedPassword, "Server Key")`. `Debug` hides the keys.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredentials {
    /// The salt.
    pub salt: Vec<u8>,
    /// The PBKDF2 iteration count.
    pub iterations: u32,
    /// `StoredKey`.
    pub stored_key: [u8; 32],
    /// `ServerKey`.
    pub server_key: [u8; 32],
}

impl fmt::Debug for ScramCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredentials")
            .field("iterations", &self.iterations)
            .field("keys", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// `HMAC-SHA-256(key, data)`.
pub fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length: the error branch cannot be taken.
    match HmacSha256::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().into()
        }
        Err(_) => [0; 32],
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// `SaltedPassword := Hi(Normalize(password), salt, i)` (RFC 5802 §3),
/// `Normalize` being SASLprep for a presented string
/// ([`super::saslprep::prepare_query`]; a stored password was checked with
/// [`super::saslprep::prepare_stored`] when it was set, which prepares it
/// the same way).
fn salted_password(password: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    let password = super::saslprep::prepare_query(password);
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut out);
    out
}

/// Compares in time that depends only on the length.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl ScramCredentials {
    /// Derives the verifier of `password` (RFC 5802 §3, the password
    /// SASLprepared).
    pub fn derive(password: &str, salt: &[u8], iterations: u32) -> ScramCredentials {
        let salted = salted_password(password, salt, iterations);
        ScramCredentials {
            salt: salt.to_vec(),
            iterations,
            stored_key: sha256(&hmac(&salted, b"Client Key")),
            server_key: hmac(&salted, b"Server Key"),
        }
    }

    /// A new verifier with a random 16-byte salt and
    /// [`DEFAULT_ITERATIONS`].
    pub fn generate(password: &str) -> ScramCredentials {
        let salt: [u8; 16] = rand::random();
        ScramCredentials::derive(password, &salt, DEFAULT_ITERATIONS)
    }

    /// The text form kept in a users file:
    /// `SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>`
    /// (the layout PostgreSQL uses for its SCRAM verifiers).
    pub fn to_text(&self) -> String {
        format!(
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            base64::encode(&self.salt),
            base64::encode(&self.stored_key),
            base64::encode(&self.server_key)
        )
    }

    /// Parses [`ScramCredentials::to_text`]'s form; `None` if it is not
    /// exactly that, or the iteration count or salt length is out of range.
    pub fn parse(text: &str) -> Option<ScramCredentials> {
        let rest = text.strip_prefix("SCRAM-SHA-256$")?;
        let (params, keys) = rest.split_once('$')?;
        let (iterations, salt) = params.split_once(':')?;
        let (stored, server) = keys.split_once(':')?;
        if iterations.is_empty() || !iterations.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let iterations: u32 = iterations.parse().ok()?;
        let salt = base64::decode(salt)?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations)
            || salt.is_empty()
            || salt.len() > MAX_SALT
        {
            return None;
        }
        Some(ScramCredentials {
            salt,
            iterations,
            stored_key: base64::decode(stored)?.try_into().ok()?,
            server_key: base64::decode(server)?.try_into().ok()?,
        })
    }
}

/// The channel-binding flag of a gs2 header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CbFlag {
    /// `n`: the client does not support channel binding.
    None,
    /// `y`: the client supports it but thinks the server does not.
    ClientSupports,
    /// `p=name`: the client binds to channel-binding type `name`.
    Binding(String),
}

/// A parsed client-first message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    /// The channel-binding flag.
    pub cb_flag: CbFlag,
    /// `a=`: the identity to act as.
    pub authzid: Option<String>,
    /// `n=`: the user whose password this is.
    pub username: String,
    /// `r=`: the client's nonce.
    pub nonce: String,
    /// The gs2 header as sent (with its trailing comma), for `c=`.
    pub gs2_header: String,
    /// client-first-message-bare as sent, for the AuthMessage.
    pub bare: String,
}

/// A parsed client-final message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFinal {
    /// `c=`, decoded: the gs2 header and any channel-binding data.
    pub channel_binding: Vec<u8>,
    /// `r=`: the combined nonce.
    pub nonce: String,
    /// `p=`, decoded.
    pub proof: [u8; 32],
    /// client-final-message-without-proof as sent, for the AuthMessage.
    pub without_proof: String,
}

/// Decodes a `saslname` (`=2C` → `,`, `=3D` → `=`).
fn saslname(s: &str) -> Result<String, ScramError> {
    if s.is_empty() {
        return Err(ScramError::Malformed("empty name"));
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramError::Malformed("bad escape in name")),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Encodes a `saslname`.
pub fn encode_saslname(s: &str) -> String {
    s.replace('=', "=3D").replace(',', "=2C")
}

/// A printable nonce: `%x21-2B / %x2D-7E`.
fn valid_nonce(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 2 * MAX_NONCE
        && s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// An `x=` attribute of a message, or a malformed error.
fn attr<'a>(part: Option<&'a str>, key: char, what: &'static str) -> Result<&'a str, ScramError> {
    part.and_then(|p| p.strip_prefix(key))
        .and_then(|p| p.strip_prefix('='))
        .ok_or(ScramError::Malformed(what))
}

/// Parses a client-first message.
pub fn parse_client_first(msg: &[u8]) -> Result<ClientFirst, ScramError> {
    let msg = std::str::from_utf8(msg).map_err(|_| ScramError::Malformed("not UTF-8"))?;
    let mut parts = msg.splitn(3, ',');
    let flag = parts.next().unwrap_or_default();
    let cb_flag = match flag {
        "n" => CbFlag::None,
        "y" => CbFlag::ClientSupports,
        _ => match flag.strip_prefix("p=") {
            Some(name)
                if !name.is_empty()
                    && name.len() <= 64
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') =>
            {
                CbFlag::Binding(name.to_owned())
            }
            _ => return Err(ScramError::Malformed("bad channel-binding flag")),
        },
    };
    let authz = parts.next().ok_or(ScramError::Malformed("no gs2 header"))?;
    let authzid = if authz.is_empty() {
        None
    } else {
        Some(saslname(attr(Some(authz), 'a', "bad authzid")?)?)
    };
    let bare = parts
        .next()
        .ok_or(ScramError::Malformed("no client-first-message-bare"))?;
    let gs2_header = &msg[..msg.len() - bare.len()];
    let mut attrs = bare.split(',');
    let first = attrs.next();
    if first.is_some_and(|p| p.starts_with("m=")) {
        return Err(ScramError::ExtensionsNotSupported);
    }
    let username = saslname(attr(first, 'n', "no user name")?)?;
    let nonce = attr(attrs.next(), 'r', "no nonce")?;
    if !valid_nonce(nonce) || nonce.len() > MAX_NONCE {
        return Err(ScramError::Malformed("bad nonce"));
    }
    check_extensions(attrs)?;
    Ok(ClientFirst {
        cb_flag,
        authzid,
        username,
        nonce: nonce.to_owned(),
        gs2_header: gs2_header.to_owned(),
        bare: bare.to_owned(),
    })
}

/// Optional extensions are `attr=value` with a letter other than the ones
/// of the grammar; they are ignored.
fn check_extensions<'a>(attrs: impl Iterator<Item = &'a str>) -> Result<(), ScramError> {
    for a in attrs {
        let b = a.as_bytes();
        if b.len() < 2 || !b[0].is_ascii_alphabetic() || b[1] != b'=' {
            return Err(ScramError::Malformed("bad attribute"));
        }
    }
    Ok(())
}

/// Parses a client-final message.
pub fn parse_client_final(msg: &[u8]) -> Result<ClientFinal, ScramError> {
    let msg = std::str::from_utf8(msg).map_err(|_| ScramError::Malformed("not UTF-8"))?;
    let (without_proof, proof) = msg
        .rsplit_once(',')
        .ok_or(ScramError::Malformed("no proof"))?;
    let proof = attr(Some(proof), 'p', "no proof")?;
    let proof: [u8; 32] = base64::decode(proof)
        .and_then(|p| p.try_into().ok())
        .ok_or(ScramError::Malformed("bad proof"))?;
    let mut attrs = without_proof.split(',');
    let cb = attr(attrs.next(), 'c', "no channel binding")?;
    let channel_binding = base64::decode(cb).ok_or(ScramError::Malformed("bad channel binding"))?;
    let nonce = attr(attrs.next(), 'r', "no nonce")?;
    if !valid_nonce(nonce) {
        return Err(ScramError::Malformed("bad nonce"));
    }
    check_extensions(attrs)?;
    Ok(ClientFinal {
        channel_binding,
        nonce: nonce.to_owned(),
        proof,
        without_proof: without_proof.to_owned(),
    })
}

/// What the server knows about the connection for channel binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    /// The mechanism is the `-PLUS` one.
    pub plus: bool,
    /// The connection's `tls-exporter` value, when it has one (TLS 1.3).
    pub exporter: Option<[u8; 32]>,
    /// Whether the `-PLUS` mechanism is offered on this connection (a
    /// client that says `y` is then refused).
    pub plus_offered: bool,
}

/// The server side of one exchange after client-first: what it needs to
/// check client-final.
#[derive(Clone)]
pub struct ServerFirst {
    /// server-first-message, to send.
    pub message: String,
    client_first: ClientFirst,
    nonce: String,
    credentials: ScramCredentials,
    /// The user is unknown: the credentials are made up and no proof passes.
    fake: bool,
    cbind_data: Option<[u8; 32]>,
}

impl fmt::Debug for ServerFirst {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerFirst")
            .field("user", &self.client_first.username)
            .finish_non_exhaustive()
    }
}

/// A verified client-final: what to send and who logged in.
#[derive(Debug, Clone)]
pub struct Verified {
    /// server-final-message, to send.
    pub server_final: String,
    /// The authenticated user.
    pub authcid: String,
    /// The identity to act as, if given.
    pub authzid: Option<String>,
}

impl ServerFirst {
    /// Checks client-first against the connection and answers it.
    /// `credentials` are the user's, or `None` for an unknown user: then a
    /// salt made up from `fake_key` and the name is sent, so that the answer
    /// does not tell whether the user exists, and the proof always fails.
    pub fn new(
        client_first: ClientFirst,
        binding: Binding,
        credentials: Option<ScramCredentials>,
        fake_key: &[u8; 32],
    ) -> Result<ServerFirst, ScramError> {
        let cbind_data = match (&client_first.cb_flag, binding.plus) {
            (CbFlag::Binding(name), true) if name == CB_TLS_EXPORTER => match binding.exporter {
                Some(e) => Some(e),
                None => return Err(ScramError::UnsupportedChannelBinding),
            },
            (CbFlag::Binding(_), _) | (_, true) => {
                return Err(ScramError::UnsupportedChannelBinding);
            }
            (CbFlag::ClientSupports, false) if binding.plus_offered => {
                return Err(ScramError::Downgrade);
            }
            _ => None,
        };
        let fake = credentials.is_none();
        let credentials = credentials.unwrap_or_else(|| {
            let salt = hmac(fake_key, client_first.username.as_bytes());
            ScramCredentials {
                salt: salt[..16].to_vec(),
                iterations: DEFAULT_ITERATIONS,
                stored_key: hmac(fake_key, b"stored"),
                server_key: hmac(fake_key, b"server"),
            }
        });
        let server_nonce: [u8; 18] = rand::random();
        let nonce = format!("{}{}", client_first.nonce, base64::encode(&server_nonce));
        let message = format!(
            "r={nonce},s={},i={}",
            base64::encode(&credentials.salt),
            credentials.iterations
        );
        Ok(ServerFirst {
            message,
            client_first,
            nonce,
            credentials,
            fake,
            cbind_data,
        })
    }

    /// The user named in client-first.
    pub fn username(&self) -> &str {
        &self.client_first.username
    }

    /// Checks client-final: nonce, channel binding, proof.
    pub fn verify(&self, client_final: &ClientFinal) -> Result<Verified, ScramError> {
        if client_final.nonce != self.nonce {
            return Err(ScramError::NonceMismatch);
        }
        let mut expected = self.client_first.gs2_header.as_bytes().to_vec();
        if let Some(data) = &self.cbind_data {
            expected.extend_from_slice(data);
        }
        if !ct_eq(&expected, &client_final.channel_binding) {
            return Err(ScramError::ChannelBindingMismatch);
        }
        let auth_message = format!(
            "{},{},{}",
            self.client_first.bare, self.message, client_final.without_proof
        );
        let signature = hmac(&self.credentials.stored_key, auth_message.as_bytes());
        let mut client_key = client_final.proof;
        for (k, s) in client_key.iter_mut().zip(signature) {
            *k ^= s;
        }
        if !ct_eq(&sha256(&client_key), &self.credentials.stored_key) || self.fake {
            return Err(ScramError::InvalidProof);
        }
        let server_signature = hmac(&self.credentials.server_key, auth_message.as_bytes());
        Ok(Verified {
            server_final: format!("v={}", base64::encode(&server_signature)),
            authcid: self.client_first.username.clone(),
            authzid: self.client_first.authzid.clone(),
        })
    }
}

/// A SCRAM-SHA-256(-PLUS) client: [`ScramClient::client_first`], then
/// [`ScramClient::client_final`] with the server's first message, then
/// [`ScramClient::verify_server_final`].
#[derive(Clone)]
pub struct ScramClient {
    user: String,
    password: String,
    /// The `tls-exporter` value to bind to (`-PLUS`), if any.
    exporter: Option<Vec<u8>>,
    nonce: String,
    server_key: Option<[u8; 32]>,
    auth_message: String,
}

impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramClient")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl ScramClient {
    /// A client for `user`; `exporter` set means SCRAM-SHA-256-PLUS. The
    /// user name and the password are SASLprepared (RFC 5802 §5.1).
    pub fn new(user: &str, password: &str, exporter: Option<Vec<u8>>) -> ScramClient {
        let nonce: [u8; 18] = rand::random();
        ScramClient {
            user: super::saslprep::prepare_query(user).into_owned(),
            password: password.to_owned(),
            exporter,
            nonce: base64::encode(&nonce),
            server_key: None,
            auth_message: String::new(),
        }
    }

    fn gs2_header(&self) -> &'static str {
        if self.exporter.is_some() {
            "p=tls-exporter,,"
        } else {
            "n,,"
        }
    }

    fn bare(&self) -> String {
        format!("n={},r={}", encode_saslname(&self.user), self.nonce)
    }

    /// client-first-message.
    pub fn client_first(&self) -> String {
        format!("{}{}", self.gs2_header(), self.bare())
    }

    /// client-final-message for the server's first message.
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<String, ScramError> {
        let text =
            std::str::from_utf8(server_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        if let Some(e) = text.strip_prefix("e=") {
            return Err(ScramError::ServerError(e.to_owned()));
        }
        let mut attrs = text.split(',');
        let nonce = attr(attrs.next(), 'r', "no nonce")?;
        let salt = base64::decode(attr(attrs.next(), 's', "no salt")?)
            .ok_or(ScramError::Malformed("bad salt"))?;
        let iterations: u32 = attr(attrs.next(), 'i', "no iteration count")?
            .parse()
            .map_err(|_| ScramError::Malformed("bad iteration count"))?;
        if !nonce.starts_with(&self.nonce) || !(1..=MAX_ITERATIONS).contains(&iterations) {
            return Err(ScramError::Malformed("bad server-first-message"));
        }
        let mut cb = self.gs2_header().as_bytes().to_vec();
        if let Some(e) = &self.exporter {
            cb.extend_from_slice(e);
        }
        let without_proof = format!("c={},r={nonce}", base64::encode(&cb));
        self.auth_message = format!("{},{text},{without_proof}", self.bare());
        let salted = salted_password(&self.password, &salt, iterations);
        let client_key = hmac(&salted, b"Client Key");
        let signature = hmac(&sha256(&client_key), self.auth_message.as_bytes());
        let mut proof = client_key;
        for (p, s) in proof.iter_mut().zip(signature) {
            *p ^= s;
        }
        self.server_key = Some(hmac(&salted, b"Server Key"));
        Ok(format!("{without_proof},p={}", base64::encode(&proof)))
    }

    /// Checks server-final-message.
    pub fn verify_server_final(&self, server_final: &[u8]) -> Result<(), ScramError> {
        let text =
            std::str::from_utf8(server_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        if let Some(e) = text.strip_prefix("e=") {
            return Err(ScramError::ServerError(e.to_owned()));
        }
        let v = text
            .strip_prefix("v=")
            .and_then(base64::decode)
            .ok_or(ScramError::Malformed("bad server-final-message"))?;
        let key = self.server_key.ok_or(ScramError::BadServerSignature)?;
        if ct_eq(&v, &hmac(&key, self.auth_message.as_bytes())) {
            Ok(())
        } else {
            Err(ScramError::BadServerSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 §3's example exchange.
    #[test]
    fn rfc7677_vector() {
        let stored = ScramCredentials::derive(
            "pencil",
            &base64::decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap(),
            4096,
        );
        let first = parse_client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap();
        assert_eq!(first.gs2_header, "n,,");
        assert_eq!(first.username, "user");
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let sf = ServerFirst {
            message: server_first.to_owned(),
            client_first: first,
            nonce: "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".to_owned(),
            credentials: stored,
            fake: false,
            cbind_data: None,
        };
        let fin = parse_client_final(
            b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        )
        .unwrap();
        let v = sf.verify(&fin).unwrap();
        assert_eq!(
            v.server_final,
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn client_and_server_agree_and_bind() {
        let creds = ScramCredentials::generate("s3cret, really");
        let key = [7u8; 32];
        for exporter in [None, Some([9u8; 32])] {
            let mut client = ScramClient::new(
                "a=b,c@example.com",
                "s3cret, really",
                exporter.map(Vec::from),
            );
            let first = parse_client_first(client.client_first().as_bytes()).unwrap();
            assert_eq!(first.username, "a=b,c@example.com");
            let binding = Binding {
                plus: exporter.is_some(),
                exporter,
                plus_offered: true,
            };
            let sf = ServerFirst::new(first, binding, Some(creds.clone()), &key).unwrap();
            let fin = client.client_final(sf.message.as_bytes()).unwrap();
            let v = sf
                .verify(&parse_client_final(fin.as_bytes()).unwrap())
                .unwrap();
            client
                .verify_server_final(v.server_final.as_bytes())
                .unwrap();
        }
    }

    /// A verifier of the decomposed password answers a client that typed
    /// it composed, and one with a no-break space a client that typed a
    /// space (SASLprep on both sides).
    #[test]
    fn passwords_are_saslprepared() {
        let key = [5u8; 32];
        for (stored, typed) in [
            ("pa\u{0308}ssw\u{00F6}rd", "p\u{00E4}sswo\u{0308}rd"),
            ("two\u{00A0}words", "two words"),
            ("I\u{00AD}X", "\u{2168}"),
        ] {
            let creds = ScramCredentials::generate(stored);
            let mut client = ScramClient::new("u\u{00AD}", typed, None);
            let first = parse_client_first(client.client_first().as_bytes()).unwrap();
            assert_eq!(first.username, "u");
            let binding = Binding {
                plus: false,
                exporter: None,
                plus_offered: false,
            };
            let sf = ServerFirst::new(first, binding, Some(creds), &key).unwrap();
            let fin = client.client_final(sf.message.as_bytes()).unwrap();
            let v = sf
                .verify(&parse_client_final(fin.as_bytes()).unwrap())
                .unwrap();
            client
                .verify_server_final(v.server_final.as_bytes())
                .unwrap();
        }
    }

    #[test]
    fn refusals() {
        let creds = ScramCredentials::generate("pw");
        let key = [1u8; 32];
        let plus = |exporter| Binding {
            plus: true,
            exporter,
            plus_offered: true,
        };
        // Wrong password.
        let mut c = ScramClient::new("u", "wrong", None);
        let sf = ServerFirst::new(
            parse_client_first(c.client_first().as_bytes()).unwrap(),
            Binding {
                plus: false,
                exporter: None,
                plus_offered: false,
            },
            Some(creds.clone()),
            &key,
        )
        .unwrap();
        let fin = c.client_final(sf.message.as_bytes()).unwrap();
        assert_eq!(
            sf.verify(&parse_client_final(fin.as_bytes()).unwrap())
                .unwrap_err(),
            ScramError::InvalidProof
        );
        // Channel binding to another connection's exporter.
        let mut c = ScramClient::new("u", "pw", Some(vec![2; 32]));
        let sf = ServerFirst::new(
            parse_client_first(c.client_first().as_bytes()).unwrap(),
            plus(Some([3; 32])),
            Some(creds.clone()),
            &key,
        )
        .unwrap();
        let fin = c.client_final(sf.message.as_bytes()).unwrap();
        assert_eq!(
            sf.verify(&parse_client_final(fin.as_bytes()).unwrap())
                .unwrap_err(),
            ScramError::ChannelBindingMismatch
        );
        // "y" while PLUS is offered: a downgrade.
        let first = parse_client_first(b"y,,n=u,r=abc").unwrap();
        assert_eq!(
            ServerFirst::new(
                first.clone(),
                Binding {
                    plus: false,
                    exporter: Some([0; 32]),
                    plus_offered: true
                },
                None,
                &key
            )
            .unwrap_err(),
            ScramError::Downgrade
        );
        // PLUS without binding, binding without PLUS, another binding type.
        for (msg, plus_mech) in [
            (&b"n,,n=u,r=abc"[..], true),
            (b"p=tls-exporter,,n=u,r=abc", false),
            (b"p=tls-unique,,n=u,r=abc", true),
        ] {
            let b = Binding {
                plus: plus_mech,
                exporter: Some([0; 32]),
                plus_offered: true,
            };
            assert_eq!(
                ServerFirst::new(parse_client_first(msg).unwrap(), b, None, &key).unwrap_err(),
                ScramError::UnsupportedChannelBinding
            );
        }
        // An unknown user never passes, even with the fake keys' own proof.
        let mut c = ScramClient::new("nobody", "pw", None);
        let sf = ServerFirst::new(
            parse_client_first(c.client_first().as_bytes()).unwrap(),
            Binding {
                plus: false,
                exporter: None,
                plus_offered: false,
            },
            None,
            &key,
        )
        .unwrap();
        let fin = c.client_final(sf.message.as_bytes()).unwrap();
        assert!(
            sf.verify(&parse_client_final(fin.as_bytes()).unwrap())
                .is_err()
        );
    }

    #[test]
    fn grammar() {
        assert_eq!(
            parse_client_first(b"n,a=x=3Dy,n=u=2Cv,r=n1")
                .unwrap()
                .authzid
                .as_deref(),
            Some("x=y")
        );
        assert_eq!(
            parse_client_first(b"n,,m=ext,n=u,r=n1").unwrap_err(),
            ScramError::ExtensionsNotSupported
        );
        for bad in [
            &b""[..],
            b"n",
            b"n,,",
            b"x,,n=u,r=n",
            b"n,,n=,r=n",
            b"n,,n=u=,r=n",
            b"n,,n=u",
            b"n,,n=u,r=",
            b"n,b=x,n=u,r=n",
            b"n,,n=u,r=n,bogus",
        ] {
            assert!(parse_client_first(bad).is_err(), "{bad:?}");
        }
        for bad in [
            &b""[..],
            b"c=biws,r=n",
            b"c=biws,r=n,p=AAAA",
            b"c=!!,r=n,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            b"r=n,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        ] {
            assert!(parse_client_final(bad).is_err(), "{bad:?}");
        }
        assert!(ScramCredentials::parse("SCRAM-SHA-256$10:c2FsdA==$AA==:AA==").is_none());
    }
}
