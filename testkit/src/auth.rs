//! A fixed user directory for tests.

use async_trait::async_trait;
use mailroom_core::{Authenticator, Credentials, Error, Principal, Result, Roles};

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
/// - [`admins`](StaticAuthenticator::admins) are domain and server admins.
#[derive(Debug, Clone, Copy)]
pub struct StaticAuthenticator {
    users: &'static [&'static str],
    password: Option<&'static str>,
    admins: &'static [&'static str],
    lookup_anyone: bool,
    unavailable: &'static [&'static str],
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
