//! SASL for every protocol: which mechanisms a connection offers, and the
//! server side of an exchange ([`Exchange`]) that IMAP AUTHENTICATE and
//! POP3 AUTH drive step by step, each with its own framing (`+ base64`).
//!
//! Mechanisms: PLAIN (RFC 4616), LOGIN, SCRAM-SHA-256 and
//! SCRAM-SHA-256-PLUS (RFC 5802, 7677; `tls-exporter` channel binding,
//! RFC 9266), OAUTHBEARER (RFC 7628) and XOAUTH2. Which are offered comes
//! from [`Authenticator::mechanisms`] and the connection ([`Security`]):
//! PLAIN, LOGIN and the bearer mechanisms send a secret and need the
//! plaintext policy's consent (TLS, by default); SCRAM sends none and is
//! offered on any connection; `-PLUS` needs a TLS 1.3 connection (its
//! exporter); the bearer mechanisms need a
//! [`Authenticator::token_validator`].
//!
//! It lives in core, not a crate of its own, because the
//! [`Authenticator`] trait hands out its types ([`ScramCredentials`],
//! [`TokenValidator`]) and every protocol crate already depends on core.
//!
//! Bounds: a client message is at most [`MAX_MESSAGE`] bytes decoded and an
//! exchange at most [`MAX_STEPS`] client messages; a client's `*` cancels
//! (the protocol answers it).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use mailroom_core::sasl::{Exchange, Security, Step};
//! use mailroom_core::{Authenticator, Credentials, Mechanism, Principal, Result};
//!
//! #[derive(Debug)]
//! struct One;
//! #[async_trait::async_trait]
//! impl Authenticator for One {
//!     async fn authenticate(&self, c: &Credentials) -> Result<Principal> {
//!         if c.authcid == "alice" && c.password == "pw" { Ok(Principal::user("alice")) }
//!         else { Err(mailroom_core::Error::AuthFailed) }
//!     }
//!     async fn lookup(&self, _: &str) -> Result<Option<Principal>> { Ok(None) }
//! }
//!
//! let security = Security { plaintext_allowed: true, exporter: None };
//! let mut exchange = Exchange::start(&One, Mechanism::Plain, security).unwrap();
//! match exchange.step(&One, b"\0alice\0pw").await {
//!     Step::Success { principal, .. } => assert_eq!(principal.user, "alice"),
//!     other => panic!("{other:?}"),
//! }
//! # });
//! ```

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

pub mod bearer;
pub mod saslprep;
pub mod scram;

pub use bearer::TokenValidator;
pub use scram::ScramCredentials;

use crate::acl::Principal;
use crate::auth::{Authenticator, Credentials, Mechanism};
use crate::error::Error;

/// The longest client message accepted, decoded.
pub const MAX_MESSAGE: usize = 6 * 1024;
/// The most client messages in one exchange (SCRAM needs three).
pub const MAX_STEPS: u32 = 4;

/// What a connection offers for authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Security {
    /// The plaintext policy allows mechanisms that send a secret
    /// (PLAIN, LOGIN, OAUTHBEARER, XOAUTH2).
    pub plaintext_allowed: bool,
    /// The connection's `tls-exporter` channel-binding value (TLS 1.3).
    pub exporter: Option<[u8; 32]>,
}

/// A connection's `tls-exporter` value, set by the driver once TLS is up
/// and read by the session: one per connection, shared by both.
#[derive(Debug, Clone, Default)]
pub struct ExporterSlot(Arc<OnceLock<[u8; 32]>>);

impl ExporterSlot {
    /// An empty slot.
    pub fn new() -> ExporterSlot {
        ExporterSlot::default()
    }

    /// Sets the value (the first set wins: a connection does TLS once).
    pub fn set(&self, value: [u8; 32]) {
        let _ = self.0.set(value);
    }

    /// The value, once TLS is up.
    pub fn get(&self) -> Option<[u8; 32]> {
        self.0.get().copied()
    }
}

/// The mechanisms `auth` supports that this connection offers, in
/// [`Authenticator::mechanisms`]'s order.
pub fn offered(auth: &dyn Authenticator, security: Security) -> Vec<Mechanism> {
    auth.mechanisms()
        .into_iter()
        .filter(|m| match m {
            Mechanism::Plain | Mechanism::Login => security.plaintext_allowed,
            Mechanism::ScramSha256 => true,
            Mechanism::ScramSha256Plus => security.exporter.is_some(),
            Mechanism::OAuthBearer | Mechanism::XOAuth2 => {
                security.plaintext_allowed && auth.token_validator().is_some()
            }
        })
        .collect()
}

/// One step's outcome.
#[derive(Debug)]
#[non_exhaustive]
pub enum Step {
    /// Send this challenge and call [`Exchange::step`] with the answer.
    Challenge(Vec<u8>),
    /// Authenticated.
    Success {
        /// Who.
        principal: Principal,
        /// The name the client gave, for the throttle.
        user: String,
    },
    /// Credentials, proof, token or channel binding refused: answer NO /
    /// -ERR and count a failed login for `user`.
    Refused {
        /// The name the client gave, if it got that far.
        user: Option<String>,
        /// Why, for the log (never a secret).
        reason: String,
    },
    /// The message does not follow the mechanism's grammar, or the exchange
    /// went on too long: a protocol error (BAD).
    Malformed(&'static str),
    /// The authenticator failed (not a judgement on the credentials).
    Unavailable(Error),
}

#[derive(Debug)]
enum State {
    Plain,
    LoginUser,
    LoginPassword(String),
    ScramFirst,
    ScramFinal(Box<scram::ServerFirst>),
    ScramVerified {
        principal: Principal,
        user: String,
    },
    Bearer,
    /// The error challenge was sent; the next message ends the exchange.
    BearerFailed {
        user: Option<String>,
        reason: String,
    },
    Done,
}

/// The server side of one SASL exchange.
#[derive(Debug)]
pub struct Exchange {
    mechanism: Mechanism,
    security: Security,
    plus_offered: bool,
    state: State,
    steps: u32,
}

/// Process-wide key for the made-up salts of unknown SCRAM users (the
/// same name gets the same salt for the life of the process).
fn fake_key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(rand::random)
}

impl Exchange {
    /// Starts an exchange; `None` if the connection does not offer
    /// `mechanism`.
    pub fn start(
        auth: &dyn Authenticator,
        mechanism: Mechanism,
        security: Security,
    ) -> Option<Exchange> {
        let offered = offered(auth, security);
        if !offered.contains(&mechanism) {
            return None;
        }
        let state = match mechanism {
            Mechanism::Plain => State::Plain,
            Mechanism::Login => State::LoginUser,
            Mechanism::ScramSha256 | Mechanism::ScramSha256Plus => State::ScramFirst,
            Mechanism::OAuthBearer | Mechanism::XOAuth2 => State::Bearer,
        };
        Some(Exchange {
            mechanism,
            security,
            plus_offered: offered.contains(&Mechanism::ScramSha256Plus),
            state,
            steps: 0,
        })
    }

    /// The mechanism.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The challenge to send when the client gave no initial response
    /// (`Username:` for LOGIN, empty for the others).
    pub fn first_challenge(&self) -> Vec<u8> {
        match self.state {
            State::LoginUser => b"Username:".to_vec(),
            _ => Vec::new(),
        }
    }

    /// Takes the client's next message (decoded from base64).
    pub async fn step(&mut self, auth: &dyn Authenticator, msg: &[u8]) -> Step {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            self.state = State::Done;
            return Step::Malformed("too many SASL steps");
        }
        if msg.len() > MAX_MESSAGE {
            self.state = State::Done;
            return Step::Malformed("SASL message too long");
        }
        match std::mem::replace(&mut self.state, State::Done) {
            State::Plain => match Credentials::from_sasl_plain(msg) {
                Some(c) => password_login(auth, c).await,
                None => Step::Malformed("malformed PLAIN message"),
            },
            State::LoginUser => match std::str::from_utf8(msg) {
                Ok(user) if !user.is_empty() && !user.contains('\0') => {
                    self.state = State::LoginPassword(user.to_owned());
                    Step::Challenge(b"Password:".to_vec())
                }
                _ => Step::Malformed("malformed user name"),
            },
            State::LoginPassword(authcid) => match std::str::from_utf8(msg) {
                Ok(password) if !password.contains('\0') => {
                    let c = Credentials {
                        authzid: None,
                        authcid,
                        password: password.to_owned(),
                    };
                    password_login(auth, c).await
                }
                _ => Step::Malformed("malformed password"),
            },
            State::ScramFirst => self.scram_first(auth, msg).await,
            State::ScramFinal(server_first) => self.scram_final(auth, &server_first, msg).await,
            State::ScramVerified { principal, user } => {
                if msg.is_empty() {
                    Step::Success { principal, user }
                } else {
                    Step::Malformed("expected an empty response after server-final")
                }
            }
            State::Bearer => self.bearer(auth, msg).await,
            State::BearerFailed { user, reason } => Step::Refused { user, reason },
            State::Done => Step::Malformed("the exchange is over"),
        }
    }

    async fn scram_first(&mut self, auth: &dyn Authenticator, msg: &[u8]) -> Step {
        let mut first = match scram::parse_client_first(msg) {
            Ok(f) => f,
            Err(scram::ScramError::Malformed(m)) => return Step::Malformed(m),
            Err(e) => {
                return Step::Refused {
                    user: None,
                    reason: e.to_string(),
                };
            }
        };
        // RFC 5802 §5.1: the user name is SASLprepared (the AuthMessage
        // keeps client-first-bare as sent).
        if let Cow::Owned(prepared) = saslprep::prepare_query(&first.username) {
            first.username = prepared;
        }
        let credentials = match auth.scram_credentials(&first.username).await {
            Ok(c) => c,
            Err(Error::AuthFailed | Error::NoSuchUser) => None,
            Err(e) => return Step::Unavailable(e),
        };
        let binding = scram::Binding {
            plus: self.mechanism == Mechanism::ScramSha256Plus,
            exporter: self.security.exporter,
            plus_offered: self.plus_offered,
        };
        let user = first.username.clone();
        match scram::ServerFirst::new(first, binding, credentials, fake_key()) {
            Ok(sf) => {
                let challenge = sf.message.clone().into_bytes();
                self.state = State::ScramFinal(Box::new(sf));
                Step::Challenge(challenge)
            }
            Err(e) => Step::Refused {
                user: Some(user),
                reason: e.to_string(),
            },
        }
    }

    async fn scram_final(
        &mut self,
        auth: &dyn Authenticator,
        server_first: &scram::ServerFirst,
        msg: &[u8],
    ) -> Step {
        let user = server_first.username().to_owned();
        let fin = match scram::parse_client_final(msg) {
            Ok(f) => f,
            Err(scram::ScramError::Malformed(m)) => return Step::Malformed(m),
            Err(e) => {
                return Step::Refused {
                    user: Some(user),
                    reason: e.to_string(),
                };
            }
        };
        let verified = match server_first.verify(&fin) {
            Ok(v) => v,
            Err(e) => {
                return Step::Refused {
                    user: Some(user),
                    reason: e.to_string(),
                };
            }
        };
        match auth
            .authorize(&verified.authcid, verified.authzid.as_deref())
            .await
        {
            Ok(principal) => {
                self.state = State::ScramVerified { principal, user };
                Step::Challenge(verified.server_final.into_bytes())
            }
            Err(e) => judged(Some(user), e),
        }
    }

    async fn bearer(&mut self, auth: &dyn Authenticator, msg: &[u8]) -> Step {
        let xoauth2 = self.mechanism == Mechanism::XOAuth2;
        let parsed = if xoauth2 {
            bearer::parse_xoauth2(msg)
        } else {
            bearer::parse_oauthbearer(msg)
        };
        let message = match parsed {
            Ok(m) => m,
            Err(e) => return Step::Malformed(e.0),
        };
        let Some(validator) = auth.token_validator() else {
            return Step::Unavailable(Error::Unsupported("bearer tokens"));
        };
        let result = match validator.validate(&message.token).await {
            Ok(subject) => auth.authorize(&subject, message.user.as_deref()).await,
            Err(e) => Err(e),
        };
        let user = message.user.clone();
        match result {
            Ok(principal) => Step::Success {
                user: user.unwrap_or_else(|| principal.user.clone()),
                principal,
            },
            Err(Error::AuthFailed | Error::NoSuchUser) => {
                // RFC 7628 §3.2.2: an error challenge, then the client's
                // dummy answer, then the failure.
                self.state = State::BearerFailed {
                    user,
                    reason: "invalid bearer token".to_owned(),
                };
                Step::Challenge(if xoauth2 {
                    bearer::xoauth2_error()
                } else {
                    bearer::oauthbearer_error()
                })
            }
            Err(e) => Step::Unavailable(e),
        }
    }
}

/// PLAIN and LOGIN: the user name is SASLprepared (RFC 4616 §2); the
/// password is prepared where it is compared
/// ([`crate::password::verify_password`]).
async fn password_login(auth: &dyn Authenticator, mut credentials: Credentials) -> Step {
    if let Cow::Owned(prepared) = saslprep::prepare_query(&credentials.authcid) {
        credentials.authcid = prepared;
    }
    let user = credentials.authcid.clone();
    match auth.authenticate(&credentials).await {
        Ok(principal) => Step::Success { principal, user },
        Err(e) => judged(Some(user), e),
    }
}

fn judged(user: Option<String>, e: Error) -> Step {
    match e {
        Error::AuthFailed | Error::NoSuchUser | Error::InvalidInput(_) => Step::Refused {
            user,
            reason: e.to_string(),
        },
        e => Step::Unavailable(e),
    }
}

#[cfg(test)]
mod tests;
