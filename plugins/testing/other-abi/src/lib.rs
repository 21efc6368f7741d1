//! A test plugin that declares an ABI version one above this host's, as a
//! plugin built against a future `mailroom-plugin` would. The loader must
//! refuse it with an error naming both versions, and never call it: its
//! functions would fail the test if they were ever reached.
//!
//! ```
//! use mailroom_plugin::Plugin;
//! assert!(mailroom_plugin_test_other_abi::NeverCalled::init("").is_err());
//! ```

use mailroom_core::{Credentials, Principal};
use mailroom_plugin::{AuthPlugin, Plugin, PluginFailure};

/// An auth plugin whose every function fails loudly.
#[derive(Debug)]
pub struct NeverCalled;

impl Plugin for NeverCalled {
    fn init(_: &str) -> Result<Self, PluginFailure> {
        Err(PluginFailure::failed(
            "init of a plugin of another ABI version was called",
        ))
    }
}

impl AuthPlugin for NeverCalled {
    fn authenticate(&self, _: &Credentials) -> Result<Principal, PluginFailure> {
        Err(PluginFailure::failed("called"))
    }
    fn lookup(&self, _: &str) -> Result<Option<Principal>, PluginFailure> {
        Err(PluginFailure::failed("called"))
    }
}

mailroom_plugin::__export_plugin!(
    abi_version = mailroom_plugin::abi::ABI_VERSION + 1,
    layout_fingerprint = 0,
    kind = mailroom_plugin::abi::PluginKind::Auth,
    plugin = NeverCalled,
    functions: mailroom_plugin::abi::AuthFunctions =
        mailroom_plugin::export::AuthExports::<NeverCalled>::FUNCTIONS
);
