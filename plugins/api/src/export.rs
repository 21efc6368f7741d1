//! The plugin side: the traits a plugin implements, and the `extern "C"`
//! shims that [`export_auth_plugin!`](crate::export_auth_plugin) and
//! [`export_billing_plugin!`](crate::export_billing_plugin) put behind its
//! declaration.
//!
//! A plugin author writes safe Rust: implement [`Plugin`] and
//! [`AuthPlugin`] (or [`BillingPlugin`]) and invoke the macro once at the
//! crate root of a `crate-type = ["cdylib"]` crate. Every shim here
//! catches panics (a panic never unwinds into the host), checks its
//! pointers, validates UTF-8 and hands the plugin owned Rust values.

#![allow(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

use std::any::Any;
use std::ffi::c_void;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};

use mailroom_core::sasl::ScramCredentials;
use mailroom_core::{Credentials, Principal};

use crate::abi::{
    API_VERSION, ArchiveEventRepr, AuthFunctions, AuthRequest, AuthScramExtension,
    BillingFunctions, DeclarationHeader, MAGIC, OwnedBuf, PluginDeclaration, PluginKind,
    PrincipalOut, ReportOut, ReportRowRepr, SCRAM_EXTENSION_VERSION, SCRAM_LAYOUT_FINGERPRINT,
    SCRAM_MAGIC, ScramOut, Status, StrRef, event_kind, flags, roles, status,
};
use crate::billing::{ArchiveEvent, ArchiveEventKind, BillingMonth, BillingReport, Recorded};
use crate::error::PluginFailure;

/// The longest error message a shim hands to the host, in bytes (longer
/// ones are cut at a character boundary).
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// What every plugin implements: construction from its settings.
///
/// The host may call an instance from several threads at once, hence
/// `Send + Sync`.
pub trait Plugin: Send + Sync + Sized + 'static {
    /// Builds the plugin from its settings: the TOML table the operator
    /// wrote for it, as text (empty when there is none). See
    /// [`crate::parse_settings`].
    fn init(settings: &str) -> Result<Self, PluginFailure>;
}

/// An auth plugin.
pub trait AuthPlugin: Plugin {
    /// Verifies credentials; fails with [`PluginFailure::auth_failed`] on a
    /// wrong password or an unknown user alike.
    fn authenticate(&self, credentials: &Credentials) -> Result<Principal, PluginFailure>;

    /// Looks a user up by name, without credentials (for delivery).
    fn lookup(&self, user: &str) -> Result<Option<Principal>, PluginFailure>;

    /// The SCRAM-SHA-256 verifier of `user` (see
    /// [`mailroom_core::password`] to make one when a password is set), or
    /// `None` for an unknown user, one without a verifier, or one who may
    /// not log in. Only called when the plugin is exported with
    /// `export_auth_plugin!(Type, scram)`; defaults to `None`.
    fn scram_credentials(&self, user: &str) -> Result<Option<ScramCredentials>, PluginFailure> {
        let _ = user;
        Ok(None)
    }

    /// The principal of `authcid`, whose SCRAM proof the host checked,
    /// acting as `authzid` if given; fails with
    /// [`PluginFailure::auth_failed`]. Only called when exported with
    /// `scram`. The default lets a user act only as itself, through
    /// [`AuthPlugin::lookup`].
    fn authorize(&self, authcid: &str, authzid: Option<&str>) -> Result<Principal, PluginFailure> {
        if authzid.is_some_and(|z| z != authcid) {
            return Err(PluginFailure::auth_failed("may act only as itself"));
        }
        self.lookup(authcid)?
            .ok_or_else(|| PluginFailure::auth_failed("no such user"))
    }
}

/// A billing plugin.
pub trait BillingPlugin: Plugin {
    /// Records an event durably, once per [`ArchiveEvent::id`]. The event
    /// has passed [`ArchiveEvent::validate`].
    fn record(&self, event: &ArchiveEvent) -> Result<Recorded, PluginFailure>;

    /// The report of a month.
    fn report(&self, month: BillingMonth) -> Result<BillingReport, PluginFailure>;
}

fn write_error(error: *mut OwnedBuf, message: &str) {
    if error.is_null() {
        return;
    }
    let mut end = message.len().min(MAX_MESSAGE_BYTES);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let buf = OwnedBuf::from_vec(message.as_bytes()[..end].to_vec());
    // SAFETY: `error` is non-null and, by the ABI, points to an `OwnedBuf`
    // slot the host owns and does not touch during the call.
    unsafe { error.write(buf) };
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}

/// Runs `call`, catching a panic; turns a failure or a panic into its status
/// and a message in `error`.
fn guard(error: *mut OwnedBuf, call: impl FnOnce() -> Result<Status, PluginFailure>) -> Status {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(status)) => status,
        Ok(Err(failure)) => {
            write_error(error, failure.message());
            failure.kind().status()
        }
        Err(payload) => {
            let message = panic_message(&*payload);
            // A payload's destructor could panic again: never let that out.
            if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
                std::mem::forget(again);
            }
            write_error(error, &message);
            status::PANICKED
        }
    }
}

/// A string argument from the host, or `None` when absent.
///
/// # Safety
/// `s` must be absent or valid for reads for `'a` (the ABI: for the call).
unsafe fn str_arg<'a>(s: StrRef, what: &str) -> Result<Option<&'a str>, PluginFailure> {
    // SAFETY: the caller's contract.
    match unsafe { s.bytes() } {
        None => Ok(None),
        Some(bytes) => std::str::from_utf8(bytes)
            .map(Some)
            .map_err(|_| PluginFailure::invalid_input(format!("{what} is not UTF-8"))),
    }
}

/// The instance behind `instance`.
///
/// # Safety
/// `instance` must be null or come from [`init`]`::<T>` and not be destroyed
/// for `'a`.
unsafe fn instance_ref<'a, T: Plugin>(instance: *const c_void) -> Result<&'a T, PluginFailure> {
    if instance.is_null() {
        return Err(PluginFailure::invalid_input("null instance"));
    }
    // SAFETY: non-null and, by the caller's contract, a live `Box<T>`
    // made by `init::<T>`; `T: Sync`, so shared references on several
    // threads are fine.
    Ok(unsafe { &*instance.cast::<T>() })
}

unsafe extern "C" fn init<T: Plugin>(
    settings: StrRef,
    instance: *mut *mut c_void,
    error: *mut OwnedBuf,
) -> Status {
    guard(error, || {
        if instance.is_null() {
            return Err(PluginFailure::invalid_input("null instance slot"));
        }
        // SAFETY: the host passes settings valid for the call.
        let settings = unsafe { str_arg(settings, "settings") }?.unwrap_or("");
        let plugin = Box::new(T::init(settings)?);
        // SAFETY: non-null, and by the ABI a `*mut c_void` slot the host
        // owns for the call.
        unsafe { instance.write(Box::into_raw(plugin).cast()) };
        Ok(status::OK)
    })
}

unsafe extern "C" fn destroy<T: Plugin>(instance: *mut c_void) {
    if instance.is_null() {
        return;
    }
    let dropped = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `instance` came from `init::<T>` (`Box::into_raw`), and
        // the host destroys each instance once, after its last call.
        drop(unsafe { Box::from_raw(instance.cast::<T>()) });
    }));
    if let Err(payload) = dropped {
        std::mem::forget(payload);
    }
}

unsafe extern "C" fn free_buffer(buffer: OwnedBuf) {
    let freed = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the host gives back, once, a buffer this plugin made with
        // `OwnedBuf::from_vec` (same allocator).
        drop(unsafe { buffer.into_vec() });
    }));
    if let Err(payload) = freed {
        std::mem::forget(payload);
    }
}

fn owned_string(s: String) -> OwnedBuf {
    OwnedBuf::from_vec(s.into_bytes())
}

fn principal_out(principal: Principal) -> PrincipalOut {
    let mut bits = 0;
    if principal.roles.domain_admin {
        bits |= roles::DOMAIN_ADMIN;
    }
    if principal.roles.server_admin {
        bits |= roles::SERVER_ADMIN;
    }
    PrincipalOut {
        user: owned_string(principal.user),
        domain: principal.domain.map_or(OwnedBuf::NONE, owned_string),
        roles: bits,
    }
}

/// Runs `call` on the instance behind `instance` under [`guard`]: the
/// prologue every shim past `init` shares.
///
/// # Safety
/// `instance` as for [`instance_ref`]: the host passes the instance `init`
/// made, alive for the call.
unsafe fn on_instance<T: Plugin>(
    instance: *const c_void,
    error: *mut OwnedBuf,
    call: impl FnOnce(&T) -> Result<Status, PluginFailure>,
) -> Status {
    guard(error, || {
        // SAFETY: the caller's contract.
        let plugin = unsafe { instance_ref::<T>(instance) }?;
        call(plugin)
    })
}

/// [`on_instance`] for a shim that answers through the output slot `out`
/// (named `slot` in the error for a null one): `call`'s `Some` is written
/// there ([`status::OK`]), its `None` is [`status::NOT_FOUND`].
///
/// # Safety
/// As for [`on_instance`]; `out` must be null or, by the ABI, a slot the
/// host owns for the call.
unsafe fn answer<T: Plugin, V>(
    instance: *const c_void,
    out: *mut V,
    slot: &str,
    error: *mut OwnedBuf,
    call: impl FnOnce(&T) -> Result<Option<V>, PluginFailure>,
) -> Status {
    let body = |plugin: &T| {
        if out.is_null() {
            return Err(PluginFailure::invalid_input(format!("null {slot} slot")));
        }
        match call(plugin)? {
            None => Ok(status::NOT_FOUND),
            Some(value) => {
                // SAFETY: non-null, and by the caller's contract a slot the
                // host owns for the call.
                unsafe { out.write(value) };
                Ok(status::OK)
            }
        }
    };
    // SAFETY: the caller's contract.
    unsafe { on_instance(instance, error, body) }
}

unsafe extern "C" fn authenticate<T: AuthPlugin>(
    instance: *const c_void,
    request: *const AuthRequest,
    principal: *mut PrincipalOut,
    error: *mut OwnedBuf,
) -> Status {
    let call = |plugin: &T| {
        if request.is_null() {
            return Err(PluginFailure::invalid_input("null request"));
        }
        // SAFETY: non-null, and by the ABI an `AuthRequest` the host owns
        // for the call, whose strings are valid for the call.
        let (authcid, authzid, password) = unsafe {
            let request = &*request;
            (
                str_arg(request.authcid, "authcid")?,
                str_arg(request.authzid, "authzid")?,
                str_arg(request.password, "password")?,
            )
        };
        let credentials = Credentials {
            authzid: authzid.map(str::to_owned),
            authcid: authcid.unwrap_or_default().to_owned(),
            password: password.unwrap_or_default().to_owned(),
        };
        plugin
            .authenticate(&credentials)
            .map(principal_out)
            .map(Some)
    };
    // SAFETY: the host passes the instance `init` made, alive for the call,
    // and a `PrincipalOut` slot it owns for the call.
    unsafe { answer(instance, principal, "principal", error, call) }
}

unsafe extern "C" fn lookup<T: AuthPlugin>(
    instance: *const c_void,
    user: StrRef,
    principal: *mut PrincipalOut,
    error: *mut OwnedBuf,
) -> Status {
    let call = |plugin: &T| {
        // SAFETY: the host passes a user name valid for the call.
        let user = unsafe { str_arg(user, "user") }?.unwrap_or("");
        Ok(plugin.lookup(user)?.map(principal_out))
    };
    // SAFETY: the host passes the instance `init` made, alive for the call,
    // and a `PrincipalOut` slot it owns for the call.
    unsafe { answer(instance, principal, "principal", error, call) }
}

unsafe extern "C" fn scram_credentials<T: AuthPlugin>(
    instance: *const c_void,
    user: StrRef,
    out: *mut ScramOut,
    error: *mut OwnedBuf,
) -> Status {
    let call = |plugin: &T| {
        // SAFETY: the host passes a user name valid for the call.
        let user = unsafe { str_arg(user, "user") }?.unwrap_or("");
        Ok(plugin.scram_credentials(user)?.map(|c| ScramOut {
            salt: OwnedBuf::from_vec(c.salt),
            iterations: c.iterations,
            stored_key: c.stored_key,
            server_key: c.server_key,
        }))
    };
    // SAFETY: the host passes the instance `init` made, alive for the call,
    // and a `ScramOut` slot it owns for the call.
    unsafe { answer(instance, out, "verifier", error, call) }
}

unsafe extern "C" fn authorize<T: AuthPlugin>(
    instance: *const c_void,
    authcid: StrRef,
    authzid: StrRef,
    principal: *mut PrincipalOut,
    error: *mut OwnedBuf,
) -> Status {
    let call = |plugin: &T| {
        // SAFETY: the host passes names valid for the call.
        let (authcid, authzid) = unsafe {
            (
                str_arg(authcid, "authcid")?.unwrap_or(""),
                str_arg(authzid, "authzid")?,
            )
        };
        plugin
            .authorize(authcid, authzid)
            .map(principal_out)
            .map(Some)
    };
    // SAFETY: the host passes the instance `init` made, alive for the call,
    // and a `PrincipalOut` slot it owns for the call.
    unsafe { answer(instance, principal, "principal", error, call) }
}

/// Rebuilds an event from its borrowed form.
///
/// # Safety
/// The event's strings must be valid for the call.
unsafe fn archive_event(event: &ArchiveEventRepr) -> Result<ArchiveEvent, PluginFailure> {
    let text = |s: StrRef, what: &str| -> Result<String, PluginFailure> {
        // SAFETY: the caller's contract covers every string of the event.
        Ok(unsafe { str_arg(s, what) }?.unwrap_or("").to_owned())
    };
    let kind = match event.kind {
        event_kind::ENABLED => ArchiveEventKind::Enabled,
        event_kind::DISABLED => ArchiveEventKind::Disabled,
        event_kind::MESSAGE_ARCHIVED => ArchiveEventKind::MessageArchived { size: event.size },
        event_kind::OVERRIDE_USED => ArchiveEventKind::OverrideUsed {
            mailbox: text(event.mailbox, "mailbox")?,
            reason: text(event.reason, "reason")?,
            removed_bytes: event.size,
        },
        other => {
            return Err(PluginFailure::invalid_input(format!(
                "unknown event kind {other}"
            )));
        }
    };
    let event = ArchiveEvent {
        id: text(event.event_id, "event id")?,
        at_unix: event.at_unix,
        domain: text(event.domain, "domain")?,
        user: text(event.user, "user")?,
        kind,
    };
    event.validate().map_err(PluginFailure::invalid_input)?;
    Ok(event)
}

unsafe extern "C" fn record<T: BillingPlugin>(
    instance: *const c_void,
    event: *const ArchiveEventRepr,
    error: *mut OwnedBuf,
) -> Status {
    let call = |plugin: &T| {
        if event.is_null() {
            return Err(PluginFailure::invalid_input("null event"));
        }
        // SAFETY: non-null, and by the ABI an event the host owns for the
        // call, whose strings are valid for the call.
        let event = unsafe { archive_event(&*event) }?;
        Ok(match plugin.record(&event)? {
            Recorded::New => status::OK,
            Recorded::Duplicate => status::DUPLICATE,
        })
    };
    // SAFETY: the host passes the instance `init` made, alive for the call.
    unsafe { on_instance(instance, error, call) }
}

unsafe extern "C" fn report<T: BillingPlugin>(
    instance: *const c_void,
    year: i32,
    month: u32,
    out: *mut ReportOut,
    error: *mut OwnedBuf,
) -> Status {
    let call = |plugin: &T| {
        let month = u8::try_from(month)
            .ok()
            .and_then(|m| BillingMonth::new(year, m))
            .ok_or_else(|| PluginFailure::invalid_input(format!("no such month {year}-{month}")))?;
        let report = plugin.report(month)?;
        let rows: Vec<ReportRowRepr> = report
            .businesses
            .into_iter()
            .map(|b| ReportRowRepr {
                domain: owned_string(b.domain),
                archived_users: b.archived_users,
                user_days: b.user_days,
                messages: b.messages,
                bytes_archived: b.bytes_archived,
                gb_month_millionths: b.gb_month_millionths,
                overrides_used: b.overrides_used,
                charge_cents: b.charge_cents,
            })
            .collect();
        let mut rows = std::mem::ManuallyDrop::new(rows);
        Ok(Some(ReportOut {
            currency: owned_string(report.currency),
            rows: rows.as_mut_ptr(),
            len: rows.len(),
            capacity: rows.capacity(),
        }))
    };
    // SAFETY: the host passes the instance `init` made, alive for the call,
    // and a `ReportOut` slot it owns for the call.
    unsafe { answer(instance, out, "report", error, call) }
}

unsafe extern "C" fn free_report(report: ReportOut) {
    let freed = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the host gives back, once, a report this plugin made in
        // `report` (its currency buffer from `OwnedBuf::from_vec`).
        drop(unsafe { report.currency.into_vec() });
        if report.rows.is_null() {
            return;
        }
        // SAFETY: the rows are a `Vec<ReportRowRepr>` of this allocator
        // taken apart in `report`, given back once.
        let rows = unsafe { Vec::from_raw_parts(report.rows, report.len, report.capacity) };
        for row in rows {
            // SAFETY: each domain buffer was made by `OwnedBuf::from_vec`
            // in `report` and is freed only here.
            drop(unsafe { row.domain.into_vec() });
        }
    }));
    if let Err(payload) = freed {
        std::mem::forget(payload);
    }
}

/// The function table of an auth plugin `T` (used by
/// [`export_auth_plugin!`](crate::export_auth_plugin)).
#[derive(Debug)]
pub struct AuthExports<T>(PhantomData<T>);

impl<T: AuthPlugin> AuthExports<T> {
    /// The table.
    pub const FUNCTIONS: AuthFunctions = AuthFunctions {
        authenticate: Some(authenticate::<T>),
        lookup: Some(lookup::<T>),
    };
}

/// The SCRAM extension of an auth plugin `T` (used by
/// [`export_auth_plugin!`](crate::export_auth_plugin) with `scram`).
#[derive(Debug)]
pub struct AuthScramExports<T>(PhantomData<T>);

impl<T: AuthPlugin> AuthScramExports<T> {
    /// The extension.
    pub const EXTENSION: AuthScramExtension = AuthScramExtension {
        magic: SCRAM_MAGIC,
        version: SCRAM_EXTENSION_VERSION,
        layout_fingerprint: SCRAM_LAYOUT_FINGERPRINT,
        scram_credentials: Some(scram_credentials::<T>),
        authorize: Some(authorize::<T>),
    };
}

/// The function table of a billing plugin `T` (used by
/// [`export_billing_plugin!`](crate::export_billing_plugin)).
#[derive(Debug)]
pub struct BillingExports<T>(PhantomData<T>);

impl<T: BillingPlugin> BillingExports<T> {
    /// The table.
    pub const FUNCTIONS: BillingFunctions = BillingFunctions {
        record: Some(record::<T>),
        report: Some(report::<T>),
        free_report: Some(free_report),
    };
}

/// A declaration for plugin `T` (used by the export macros).
#[doc(hidden)]
pub const fn declaration<T: Plugin>(
    abi_version: u32,
    layout_fingerprint: u64,
    kind: PluginKind,
    plugin_name: &'static str,
    plugin_version: &'static str,
    functions: *const c_void,
) -> PluginDeclaration {
    PluginDeclaration {
        header: DeclarationHeader {
            magic: MAGIC,
            abi_version,
            kind: kind.code(),
            api_version: StrRef::new(API_VERSION),
            plugin_name: StrRef::new(plugin_name),
            plugin_version: StrRef::new(plugin_version),
        },
        layout_fingerprint,
        flags: if cfg!(panic = "unwind") {
            flags::UNWINDS
        } else {
            0
        },
        init: Some(init::<T>),
        destroy: Some(destroy::<T>),
        free_buffer: Some(free_buffer),
        functions,
    }
}

/// Exports an [`AuthPlugin`] as this `cdylib`'s plugin declaration. Invoke
/// it once, at the crate root.
///
/// ```
/// use mailroom_core::{Credentials, Principal};
/// use mailroom_plugin::{AuthPlugin, Plugin, PluginFailure};
///
/// struct OnlyAlice;
///
/// impl Plugin for OnlyAlice {
///     fn init(_settings: &str) -> Result<Self, PluginFailure> {
///         Ok(OnlyAlice)
///     }
/// }
///
/// impl AuthPlugin for OnlyAlice {
///     fn authenticate(&self, c: &Credentials) -> Result<Principal, PluginFailure> {
///         if c.authcid == "alice@example.com" && c.password == "secret" {
///             Ok(Principal::user("alice@example.com"))
///         } else {
///             Err(PluginFailure::auth_failed("wrong password or no such user"))
///         }
///     }
///     fn lookup(&self, user: &str) -> Result<Option<Principal>, PluginFailure> {
///         Ok((user == "alice@example.com").then(|| Principal::user(user)))
///     }
/// }
///
/// mailroom_plugin::export_auth_plugin!(OnlyAlice);
/// ```
///
/// `export_auth_plugin!(Type, scram)` also exports the SCRAM extension
/// ([`crate::abi::AuthScramExtension`]): the host then asks
/// [`AuthPlugin::scram_credentials`] and [`AuthPlugin::authorize`] and
/// offers SCRAM-SHA-256 (and -PLUS on TLS 1.3) for the plugin's users.
#[macro_export]
macro_rules! export_auth_plugin {
    ($plugin:ty) => {
        $crate::__export_plugin!(
            abi_version = $crate::abi::ABI_VERSION,
            layout_fingerprint = $crate::abi::LAYOUT_FINGERPRINT,
            kind = $crate::abi::PluginKind::Auth,
            plugin = $plugin,
            functions: $crate::abi::AuthFunctions = $crate::export::AuthExports::<$plugin>::FUNCTIONS
        );
    };
    ($plugin:ty, scram) => {
        $crate::export_auth_plugin!($plugin);
        const _: () = {
            /// The plugin's SCRAM extension, read by the Mailroom plugin loader.
            // SAFETY: `no_mangle` exports this static under the one name the
            // loader looks up for it (`mailroom_plugin_auth_scram`); a crate
            // invokes the export macro once, so nothing else has the name,
            // and the value is an extension built by `mailroom-plugin`.
            #[allow(unsafe_code, non_upper_case_globals)]
            #[unsafe(no_mangle)]
            pub static mailroom_plugin_auth_scram: $crate::abi::AuthScramExtension =
                $crate::export::AuthScramExports::<$plugin>::EXTENSION;
        };
    };
}

/// Exports a [`BillingPlugin`] as this `cdylib`'s plugin declaration.
/// Invoke it once, at the crate root (see
/// [`export_auth_plugin!`](crate::export_auth_plugin) for the shape).
#[macro_export]
macro_rules! export_billing_plugin {
    ($plugin:ty) => {
        $crate::__export_plugin!(
            abi_version = $crate::abi::ABI_VERSION,
            layout_fingerprint = $crate::abi::LAYOUT_FINGERPRINT,
            kind = $crate::abi::PluginKind::Billing,
            plugin = $plugin,
            functions: $crate::abi::BillingFunctions = $crate::export::BillingExports::<$plugin>::FUNCTIONS
        );
    };
}

/// The expansion behind the export macros. Hidden: only the tests use it
/// directly, to build a plugin that declares another ABI version.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_plugin {
    (
        abi_version = $abi:expr,
        layout_fingerprint = $fingerprint:expr,
        kind = $kind:expr,
        plugin = $plugin:ty,
        functions: $functions_ty:ty = $functions:expr
    ) => {
        const _: () = {
            static FUNCTIONS: $functions_ty = $functions;

            /// The plugin's declaration, read by the Mailroom plugin loader.
            // SAFETY: `no_mangle` exports this static under the one name the
            // loader looks up (`mailroom_plugin_declaration`); a crate
            // invokes the export macro once, so nothing else has the name,
            // and the value is a declaration built by `mailroom-plugin`.
            #[allow(unsafe_code, non_upper_case_globals)]
            #[unsafe(no_mangle)]
            pub static mailroom_plugin_declaration: $crate::abi::PluginDeclaration =
                $crate::export::declaration::<$plugin>(
                    $abi,
                    $fingerprint,
                    $kind,
                    env!("CARGO_PKG_NAME"),
                    env!("CARGO_PKG_VERSION"),
                    &raw const FUNCTIONS as *const ::std::ffi::c_void,
                );
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(buf: OwnedBuf) -> Option<String> {
        // SAFETY: made by this binary's `OwnedBuf::from_vec`, rebuilt once.
        unsafe { buf.into_vec() }.map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    #[test]
    fn guard_turns_panics_and_failures_into_statuses() {
        let mut err = OwnedBuf::NONE;
        assert_eq!(guard(&mut err, || Ok(status::OK)), status::OK);
        assert!(err.is_none());

        let s = guard(&mut err, || Err(PluginFailure::temporary("db busy")));
        assert_eq!(s, status::TEMPORARY);
        assert_eq!(
            take(std::mem::replace(&mut err, OwnedBuf::NONE)).as_deref(),
            Some("db busy")
        );

        let s = guard(&mut err, || panic!("boom {}", 42));
        assert_eq!(s, status::PANICKED);
        assert_eq!(
            take(std::mem::replace(&mut err, OwnedBuf::NONE)).as_deref(),
            Some("boom 42")
        );
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let mut err = OwnedBuf::NONE;
        let long = "é".repeat(MAX_MESSAGE_BYTES);
        guard(&mut err, || Err(PluginFailure::failed(long.clone())));
        let msg = take(err).unwrap_or_default();
        assert!(msg.len() <= MAX_MESSAGE_BYTES && msg.len() >= MAX_MESSAGE_BYTES - 1);
        assert!(msg.chars().all(|c| c == 'é'));
    }
}
