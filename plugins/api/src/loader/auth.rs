//! The raw calls of an auth plugin.

use std::fmt;
use std::sync::Arc;

use mailroom_core::sasl::ScramCredentials;
use mailroom_core::sasl::scram::{MAX_ITERATIONS, MAX_SALT, MIN_ITERATIONS};
use mailroom_core::{Credentials, Principal, Roles};

use super::{Instance, PluginInfo, PluginLibrary, ScramFunctions};
use crate::abi::{
    AuthFunctions, AuthRequest, AuthenticateFn, LookupFn, OwnedBuf, PluginKind, PrincipalOut,
    ScramOut, StrRef, roles, status,
};
use crate::error::PluginError;

/// The longest user or domain name accepted from a plugin, in bytes.
const MAX_NAME_BYTES: usize = 1024;

/// An initialized auth plugin, called synchronously (the calls block: see
/// [`crate::PluginAuthenticator`] for the async wrapper).
pub struct AuthPluginHandle {
    authenticate: AuthenticateFn,
    lookup: LookupFn,
    scram: Option<ScramFunctions>,
    instance: Instance,
}

impl fmt::Debug for AuthPluginHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthPluginHandle")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl AuthPluginHandle {
    /// Checks the auth function table of `library` (loaded as
    /// [`PluginKind::Auth`]), then calls the plugin's `init` with `settings`.
    pub fn new(
        library: Arc<PluginLibrary>,
        settings: &str,
    ) -> Result<AuthPluginHandle, PluginError> {
        if library.info().kind != PluginKind::Auth {
            return Err(PluginError::KindMismatch {
                path: library.info().path.clone(),
                plugin: library.label().to_owned(),
                expected: PluginKind::Auth.name().to_owned(),
                found: library.info().kind.name().to_owned(),
            });
        }
        // SAFETY: `load` checked that the plugin declares the auth kind for
        // this ABI and layout, so `functions` points to its static
        // `AuthFunctions`, alive while the library is loaded.
        let table = unsafe { library.functions.cast::<AuthFunctions>().as_ref() };
        let missing = |function| PluginError::MissingFunction {
            path: library.info().path.clone(),
            plugin: library.label().to_owned(),
            function,
        };
        let authenticate = table.authenticate.ok_or_else(|| missing("authenticate"))?;
        let lookup = table.lookup.ok_or_else(|| missing("lookup"))?;
        let scram = library.scram;
        let instance = Instance::new(library, settings)?;
        Ok(AuthPluginHandle {
            authenticate,
            lookup,
            scram,
            instance,
        })
    }

    /// Whether the plugin exports a usable SCRAM extension (see
    /// [`crate::abi::AuthScramExtension`]).
    pub fn offers_scram(&self) -> bool {
        self.scram.is_some()
    }

    /// The SCRAM-SHA-256 verifier of `user` (blocks); `None` for an
    /// unknown user or one without a verifier, and for a plugin without
    /// the SCRAM extension.
    pub fn scram_credentials(&self, user: &str) -> Result<Option<ScramCredentials>, PluginError> {
        let Some(scram) = self.scram else {
            return Ok(None);
        };
        let library = self.instance.library();
        let function = "scram_credentials";
        let mut out = ScramOut::NONE;
        let mut error = OwnedBuf::NONE;
        // SAFETY: the function comes from the checked extension; the
        // instance is alive (borrowed by `self`); the name is borrowed for
        // the call; `out` and `error` are slots owned here.
        let code = unsafe {
            (scram.scram_credentials)(
                self.instance.as_ptr(),
                StrRef::new(user),
                &mut out,
                &mut error,
            )
        };
        let salt = library.take_buffer(out.salt, MAX_SALT, function);
        match code {
            status::OK => {}
            status::NOT_FOUND => {
                library.take_buffer(error, 0, function).ok();
                return Ok(None);
            }
            other => return Err(library.failure(function, other, error)),
        }
        library.take_buffer(error, usize::MAX, function)?;
        let salt = salt?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| library.invalid(function, "an empty salt".into()))?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&out.iterations) {
            return Err(library.invalid(
                function,
                format!("an iteration count of {}", out.iterations),
            ));
        }
        Ok(Some(ScramCredentials {
            salt,
            iterations: out.iterations,
            stored_key: out.stored_key,
            server_key: out.server_key,
        }))
    }

    /// The principal of `authcid`, authenticated by SCRAM, acting as
    /// `authzid` (blocks). A plugin without the SCRAM extension is not
    /// asked: `authcid` may then act only as itself, if
    /// [`AuthPluginHandle::lookup`] finds it.
    pub fn authorize(
        &self,
        authcid: &str,
        authzid: Option<&str>,
    ) -> Result<Principal, PluginError> {
        let library = self.instance.library();
        let Some(scram) = self.scram else {
            if authzid.is_some_and(|z| z != authcid) {
                return Err(library.refused("authorize", "may act only as itself"));
            }
            return self
                .lookup(authcid)?
                .ok_or_else(|| library.refused("authorize", "no such user"));
        };
        let mut out = PrincipalOut::EMPTY;
        let mut error = OwnedBuf::NONE;
        // SAFETY: as in `scram_credentials`: checked function, live
        // instance, borrowed names, slots owned here.
        let code = unsafe {
            (scram.authorize)(
                self.instance.as_ptr(),
                StrRef::new(authcid),
                StrRef::optional(authzid),
                &mut out,
                &mut error,
            )
        };
        self.principal("authorize", code, out, error)?
            .ok_or_else(|| library.invalid("authorize", "NOT_FOUND".into()))
    }

    /// What the plugin says about itself.
    pub fn info(&self) -> &PluginInfo {
        self.instance.library().info()
    }

    /// Verifies credentials (blocks).
    pub fn authenticate(&self, credentials: &Credentials) -> Result<Principal, PluginError> {
        let request = AuthRequest {
            authcid: StrRef::new(&credentials.authcid),
            authzid: StrRef::optional(credentials.authzid.as_deref()),
            password: StrRef::new(&credentials.password),
        };
        let mut out = PrincipalOut::EMPTY;
        let mut error = OwnedBuf::NONE;
        // SAFETY: the function comes from the checked table; the instance
        // is alive (borrowed by `self`); the request and its strings are
        // borrowed for the call; `out` and `error` are slots owned here.
        let code =
            unsafe { (self.authenticate)(self.instance.as_ptr(), &request, &mut out, &mut error) };
        self.principal("authenticate", code, out, error)
            .and_then(|p| {
                p.ok_or_else(|| {
                    self.instance
                        .library()
                        .invalid("authenticate", "NOT_FOUND".into())
                })
            })
    }

    /// Looks a user up without credentials (blocks).
    pub fn lookup(&self, user: &str) -> Result<Option<Principal>, PluginError> {
        let mut out = PrincipalOut::EMPTY;
        let mut error = OwnedBuf::NONE;
        // SAFETY: as in `authenticate`: checked function, live instance,
        // borrowed name, slots owned here.
        let code = unsafe {
            (self.lookup)(
                self.instance.as_ptr(),
                StrRef::new(user),
                &mut out,
                &mut error,
            )
        };
        self.principal("lookup", code, out, error)
    }

    /// Turns a call's outputs into a principal (`None` for NOT_FOUND),
    /// freeing every buffer the plugin handed out whatever the status.
    fn principal(
        &self,
        function: &'static str,
        code: u32,
        out: PrincipalOut,
        error: OwnedBuf,
    ) -> Result<Option<Principal>, PluginError> {
        let library = self.instance.library();
        let user = library.take_string(out.user, MAX_NAME_BYTES, function);
        let domain = library.take_string(out.domain, MAX_NAME_BYTES, function);
        match code {
            status::OK => {}
            status::NOT_FOUND => {
                library.take_buffer(error, 0, function).ok();
                return Ok(None);
            }
            other => return Err(library.failure(function, other, error)),
        }
        library.take_buffer(error, usize::MAX, function)?;
        let user = user?.filter(|u| !u.is_empty() && !u.chars().any(char::is_control));
        let user = user
            .ok_or_else(|| library.invalid(function, "an empty or unprintable user name".into()))?;
        let domain = domain?;
        if out.roles & !(roles::DOMAIN_ADMIN | roles::SERVER_ADMIN) != 0 {
            return Err(library.invalid(function, format!("unknown role bits {:#x}", out.roles)));
        }
        Ok(Some(Principal {
            user,
            domain,
            roles: Roles {
                domain_admin: out.roles & roles::DOMAIN_ADMIN != 0,
                server_admin: out.roles & roles::SERVER_ADMIN != 0,
            },
        }))
    }
}
