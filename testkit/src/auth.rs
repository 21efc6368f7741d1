//! A fixed user directory for tests.

use async_trait::async_trait;
use mailroom_core::sasl::ScramCredentials;
use mailroom_core::{Authenticator, Credentials, Error, Mechanism, Principal, Result, Roles};
use md5::{Digest, Md5};

/// A user directory fixed at compile time, built in a `const`:
///
/// ```
/// use mailroom_testkit::StaticAuthenticator;
///
/// const AUTH: StaticAuthenticator =
///     StaticAuthenticator::new(&["alice@example.com", "admin@example.com"])
///         .password("secret")
///         .admins(&["admin@example.com"]);
/// # let _ = AUTH;
/// ```
///
/// - `authenticate` accepts a listed user with the shared password, when one
///   is set, and an authzid that is absent or names the same user;
/// - `lookup` finds the listed users (or anyone, after
///   [`lookup_anyone`](StaticAuthenticator::lookup_anyone)) and fails with a
///   temporary [`Error::Busy`] for the names given to
///   [`unavailable`](StaticAuthenticator::unavailable);
/// - [`admins`](StaticAuthenticator::admins) are domain and server admins;
/// - after [`apop`](StaticAuthenticator::apop) it also checks POP3 APOP
///   digests (it knows the plaintext password, so it can); without it,
///   like an authenticator that keeps only hashes, it cannot.
#[derive(Debug, Clone, Copy)]
pub struct StaticAuthenticator {
    users: &'static [&'static str],
    password: Option<&'static str>,
    admins: &'static [&'static str],
    lookup_anyone: bool,
    unavailable: &'static [&'static str],
    apop: bool,
    scram: bool,
}

impl StaticAuthenticator {
    /// A directory of `users`. Without [`password`](Self::password) nobody
    /// can log in: lookups (as LMTP does them) still find the users.
    pub const fn new(users: &'static [&'static str]) -> StaticAuthenticator {
        StaticAuthenticator {
            users,
            password: None,
            admins: &[],
            lookup_anyone: false,
            unavailable: &[],
            apop: false,
            scram: false,
        }
    }

    /// The password of every user.
    pub const fn password(mut self, password: &'static str) -> StaticAuthenticator {
        self.password = Some(password);
        self
    }

    /// Users (also listed in `new`) with the domain and server admin roles.
    pub const fn admins(mut self, admins: &'static [&'static str]) -> StaticAuthenticator {
        self.admins = admins;
        self
    }

    /// `lookup` finds every name, listed or not.
    pub const fn lookup_anyone(mut self) -> StaticAuthenticator {
        self.lookup_anyone = true;
        self
    }

    /// Looking these names up fails with a temporary error, as a directory
    /// that is down would.
    pub const fn unavailable(mut self, names: &'static [&'static str]) -> StaticAuthenticator {
        self.unavailable = names;
        self
    }

    /// Offers APOP (RFC 1939 §7): [`Authenticator::supports_apop`] is true
    /// when a password is set, and `authenticate_apop` accepts
    /// `MD5(timestamp ‖ password)` for a listed user.
    pub const fn apop(mut self) -> StaticAuthenticator {
        self.apop = true;
        self
    }

    /// Offers SCRAM-SHA-256 and SCRAM-SHA-256-PLUS besides PLAIN and LOGIN,
    /// with verifiers derived from the password (fixed salt, 4096 rounds).
    pub const fn scram(mut self) -> StaticAuthenticator {
        self.scram = true;
        self
    }

    fn principal(&self, user: &str) -> Principal {
        let mut p = Principal::user(user);
        if self.admins.contains(&user) {
            p.roles = Roles {
                domain_admin: true,
                server_admin: true,
            };
        }
        p
    }
}

#[async_trait]
impl Authenticator for StaticAuthenticator {
    async fn authenticate(&self, c: &Credentials) -> Result<Principal> {
        let known = self.users.contains(&c.authcid.as_str());
        let password_ok = self.password.is_some_and(|p| p == c.password);
        let authzid_ok = c.authzid.as_ref().is_none_or(|z| *z == c.authcid);
        if known && password_ok && authzid_ok {
            Ok(self.principal(&c.authcid))
        } else {
            Err(Error::AuthFailed)
        }
    }

    async fn lookup(&self, user: &str) -> Result<Option<Principal>> {
        if self.unavailable.contains(&user) {
            return Err(Error::Busy("directory unavailable".into()));
        }
        Ok((self.lookup_anyone || self.users.contains(&user)).then(|| self.principal(user)))
    }

    fn supports_apop(&self) -> bool {
        self.apop && self.password.is_some()
    }

    fn mechanisms(&self) -> Vec<Mechanism> {
        let mut m = vec![Mechanism::Plain, Mechanism::Login];
        if self.scram {
            m.extend([Mechanism::ScramSha256, Mechanism::ScramSha256Plus]);
        }
        m
    }

    async fn scram_credentials(&self, user: &str) -> Result<Option<ScramCredentials>> {
        Ok(match self.password {
            Some(p) if self.scram && self.users.contains(&user) => {
                Some(ScramCredentials::derive(p, b"testkit salt", 4096))
            }
            _ => None,
        })
    }

    async fn authenticate_apop(
        &self,
        user: &str,
        timestamp: &str,
        digest: &[u8; 16],
    ) -> Result<Principal> {
        if !self.supports_apop() {
            return Err(Error::Unsupported("APOP"));
        }
        let known = self.users.contains(&user);
        let expected = apop_digest(timestamp, self.password.unwrap_or_default());
        // Compute and compare in full whether or not the user exists, so the
        // answer takes as long either way.
        if constant_time_eq(&expected, digest) & known {
            Ok(self.principal(user))
        } else {
            Err(Error::AuthFailed)
        }
    }
}

/// The APOP digest of RFC 1939 §7, `MD5(timestamp ‖ secret)`, as a client
/// computes it from the greeting's timestamp (angle brackets included).
///
/// ```
/// let digest = mailroom_testkit::apop_digest("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf");
/// assert_eq!(digest[..2], [0xc4, 0xc9]);
/// ```
pub fn apop_digest(timestamp: &str, secret: &str) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update(timestamp.as_bytes());
    md5.update(secret.as_bytes());
    md5.finalize().into()
}

/// Compares every byte, whatever the first difference (no early exit that
/// would tell a guesser how many leading bytes were right).
fn constant_time_eq(a: &[u8; 16], b: &[u8; 16]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTH: StaticAuthenticator = StaticAuthenticator::new(&["a@x.example", "root@x.example"])
        .password("pw")
        .admins(&["root@x.example"])
        .unavailable(&["down@x.example"]);

    fn creds(authzid: Option<&str>, authcid: &str, password: &str) -> Credentials {
        Credentials {
            authzid: authzid.map(str::to_owned),
            authcid: authcid.to_owned(),
            password: password.to_owned(),
        }
    }

    #[tokio::test]
    async fn authenticates_listed_users_with_the_password_only() {
        let p = AUTH.authenticate(&creds(None, "a@x.example", "pw")).await;
        assert_eq!(p.unwrap(), Principal::user("a@x.example"));
        for bad in [
            creds(None, "a@x.example", "nope"),
            creds(None, "b@x.example", "pw"),
            creds(Some("root@x.example"), "a@x.example", "pw"),
        ] {
            assert!(matches!(
                AUTH.authenticate(&bad).await,
                Err(Error::AuthFailed)
            ));
        }
        let same = creds(Some("a@x.example"), "a@x.example", "pw");
        assert!(AUTH.authenticate(&same).await.is_ok());
    }

    #[tokio::test]
    async fn admins_get_roles_and_lookups_follow_the_policy() {
        let root = AUTH
            .authenticate(&creds(None, "root@x.example", "pw"))
            .await;
        let roles = root.unwrap().roles;
        assert!(roles.server_admin && roles.domain_admin);
        assert_eq!(AUTH.lookup("b@x.example").await.unwrap(), None);
        assert!(matches!(
            AUTH.lookup("down@x.example").await,
            Err(Error::Busy(_))
        ));
        let anyone = AUTH.lookup_anyone();
        assert_eq!(
            anyone.lookup("b@x.example").await.unwrap(),
            Some(Principal::user("b@x.example"))
        );
    }

    /// RFC 1939 §7's example: timestamp `<1896.697170952@dbc.mtview.ca.us>`,
    /// secret `tanstaaf`, digest `c4c9334bac560ecc979e58001b3e22fb`.
    const RFC1939_TIMESTAMP: &str = "<1896.697170952@dbc.mtview.ca.us>";
    const RFC1939_DIGEST: [u8; 16] = [
        0xc4, 0xc9, 0x33, 0x4b, 0xac, 0x56, 0x0e, 0xcc, 0x97, 0x9e, 0x58, 0x00, 0x1b, 0x3e, 0x22,
        0xfb,
    ];

    #[test]
    fn apop_digest_matches_the_rfc_1939_example() {
        assert_eq!(apop_digest(RFC1939_TIMESTAMP, "tanstaaf"), RFC1939_DIGEST);
        assert_ne!(apop_digest(RFC1939_TIMESTAMP, "tanstaaF"), RFC1939_DIGEST);
        assert!(constant_time_eq(&RFC1939_DIGEST, &RFC1939_DIGEST));
        let mut last_differs = RFC1939_DIGEST;
        last_differs[15] ^= 1;
        assert!(!constant_time_eq(&RFC1939_DIGEST, &last_differs));
    }

    #[tokio::test]
    async fn apop_only_when_enabled_and_only_with_the_right_digest() {
        const MROSE: StaticAuthenticator =
            StaticAuthenticator::new(&["mrose"]).password("tanstaaf");
        assert!(!MROSE.supports_apop());
        assert!(matches!(
            MROSE
                .authenticate_apop("mrose", RFC1939_TIMESTAMP, &RFC1939_DIGEST)
                .await,
            Err(Error::Unsupported(_))
        ));
        let apop = MROSE.apop();
        assert!(apop.supports_apop());
        assert!(!StaticAuthenticator::new(&["mrose"]).apop().supports_apop());
        let ok = apop
            .authenticate_apop("mrose", RFC1939_TIMESTAMP, &RFC1939_DIGEST)
            .await;
        assert_eq!(ok.unwrap(), Principal::user("mrose"));
        for (user, timestamp, digest) in [
            ("mrose", RFC1939_TIMESTAMP, [0u8; 16]),
            ("mrose", "<1896.697170953@dbc.mtview.ca.us>", RFC1939_DIGEST),
            ("eve", RFC1939_TIMESTAMP, RFC1939_DIGEST),
        ] {
            assert!(matches!(
                apop.authenticate_apop(user, timestamp, &digest).await,
                Err(Error::AuthFailed)
            ));
        }
    }

    #[tokio::test]
    async fn without_a_password_nobody_logs_in() {
        let lookups_only = StaticAuthenticator::new(&["a@x.example"]);
        assert!(
            lookups_only
                .authenticate(&creds(None, "a@x.example", ""))
                .await
                .is_err()
        );
        assert!(lookups_only.lookup("a@x.example").await.unwrap().is_some());
    }
}
