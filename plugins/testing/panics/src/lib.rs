//! A test auth plugin that panics on request, so tests can check that a
//! panic inside a plugin is caught at the boundary and the host keeps
//! running:
//!
//! - settings `panic_in_init = true`: `init` panics;
//! - a login as `panic@...`, or a lookup of any `panic@...`: panics;
//! - a login as `slow@...`: answers after `slow_ms` milliseconds (settings,
//!   default 2000), as a hung backend would;
//! - anyone else logs in with the password `secret`.
//!
//! ```
//! use mailroom_core::Credentials;
//! use mailroom_plugin::{AuthPlugin, Plugin};
//! use mailroom_plugin_test_panics::Panicky;
//!
//! let p = Panicky::init("").unwrap();
//! let c = Credentials { authzid: None, authcid: "a@x.org".into(), password: "secret".into() };
//! assert_eq!(p.authenticate(&c).unwrap().user, "a@x.org");
//! ```

use mailroom_core::{Credentials, Principal};
use mailroom_plugin::{AuthPlugin, Plugin, PluginFailure, parse_settings};

#[derive(serde::Deserialize)]
struct Settings {
    #[serde(default)]
    panic_in_init: bool,
    #[serde(default = "default_slow_ms")]
    slow_ms: u64,
}

fn default_slow_ms() -> u64 {
    2000
}

/// The panicking auth plugin.
#[derive(Debug)]
pub struct Panicky {
    slow: std::time::Duration,
}

impl Plugin for Panicky {
    fn init(settings: &str) -> Result<Self, PluginFailure> {
        let settings: Settings = parse_settings(settings)?;
        if settings.panic_in_init {
            panic!("test plugin: asked to panic in init");
        }
        Ok(Panicky {
            slow: std::time::Duration::from_millis(settings.slow_ms),
        })
    }
}

impl AuthPlugin for Panicky {
    fn authenticate(&self, c: &Credentials) -> Result<Principal, PluginFailure> {
        if c.authcid.starts_with("panic@") {
            panic!("test plugin: asked to panic in authenticate");
        }
        if c.authcid.starts_with("slow@") {
            std::thread::sleep(self.slow);
        }
        if c.password == "secret" {
            Ok(Principal::user(c.authcid.clone()))
        } else {
            Err(PluginFailure::auth_failed("wrong password"))
        }
    }

    fn lookup(&self, user: &str) -> Result<Option<Principal>, PluginFailure> {
        if user.starts_with("panic@") {
            panic!("test plugin: asked to panic in lookup");
        }
        Ok(Some(Principal::user(user)))
    }
}

mailroom_plugin::export_auth_plugin!(Panicky);
