//! The binary interface: every type that crosses the boundary between a host
//! and a plugin, byte for byte.
//!
//! Nothing here is Rust-specific on the wire: every type is `#[repr(C)]`,
//! every function is `extern "C"`, every integer has a fixed width. Why this
//! is sound, and the rules both sides follow, are in [`crate::soundness`].
//!
//! # The declaration
//!
//! A plugin exports one required symbol, [`DECLARATION_SYMBOL`]
//! (`mailroom_plugin_declaration`), a static [`PluginDeclaration`]. Its
//! first fields, the [`DeclarationHeader`], are frozen for every ABI version
//! past and future, so a host can always read them, even from a plugin built
//! for another version:
//!
//! | offset (64-bit) | field | type | meaning |
//! |---|---|---|---|
//! | 0 | `magic` | `[u8; 8]` | `MLRMPLUG` ([`MAGIC`]) |
//! | 8 | `abi_version` | `u32` | [`ABI_VERSION`] the plugin was built for |
//! | 12 | `kind` | `u32` | [`PluginKind`] (1 auth, 2 billing) |
//! | 16 | `api_version` | [`StrRef`] | `mailroom-plugin` crate version it was built with |
//! | 32 | `plugin_name` | [`StrRef`] | the plugin's package name |
//! | 48 | `plugin_version` | [`StrRef`] | the plugin's package version |
//!
//! The loader reads only these until `abi_version` equals its own and
//! `kind` is the one it wants; then it reads the rest: a
//! [`LAYOUT_FINGERPRINT`] that must equal the host's, [`flags`], the
//! lifecycle functions and a pointer to the kind's function table
//! ([`AuthFunctions`] or [`BillingFunctions`]).
//!
//! # The SCRAM extension (optional, auth plugins)
//!
//! An auth plugin may also export [`SCRAM_SYMBOL`]
//! (`mailroom_plugin_auth_scram`), a static [`AuthScramExtension`]: a
//! function that hands the host a user's SCRAM-SHA-256 verifier (salt,
//! iteration count, StoredKey, ServerKey; never a password), and one that
//! authorizes a user whom the host authenticated by SCRAM. With it the host
//! offers SCRAM-SHA-256 and -PLUS for the plugin's users. The extension is
//! versioned apart from the declaration, so adding it changed neither
//! [`ABI_VERSION`] nor [`LAYOUT_FINGERPRINT`]: a plugin built before it
//! (or without it) loads as before and offers no SCRAM. Its frozen start:
//!
//! | offset (64-bit) | field | type | meaning |
//! |---|---|---|---|
//! | 0 | `magic` | `[u8; 8]` | `MLRMSCRM` ([`SCRAM_MAGIC`]) |
//! | 8 | `version` | `u32` | [`SCRAM_EXTENSION_VERSION`] |
//! | 16 | `layout_fingerprint` | `u64` | [`SCRAM_LAYOUT_FINGERPRINT`] |
//!
//! The host reads the rest only if all three are its own; otherwise it
//! logs why and loads the plugin without SCRAM.
//!
//! # Status codes
//!
//! Every call returns a [`Status`] (`u32`, see [`status`]); any other value
//! is treated by the host as a broken plugin. On a status other than
//! [`status::OK`], [`status::NOT_FOUND`] and [`status::DUPLICATE`] the
//! plugin may leave a UTF-8 message in the `error` out-buffer.

#![allow(unsafe_code)]

use std::ffi::c_void;
use std::mem::{align_of, offset_of, size_of};

/// The version of this binary interface. A host refuses a plugin built for
/// any other version, before calling anything in it.
pub const ABI_VERSION: u32 = 1;

/// The symbol every plugin exports: a static [`PluginDeclaration`] (an
/// auth plugin may also export [`SCRAM_SYMBOL`]).
pub const DECLARATION_SYMBOL: &str = "mailroom_plugin_declaration";

/// The first eight bytes of every declaration.
pub const MAGIC: [u8; 8] = *b"MLRMPLUG";

/// The `mailroom-plugin` crate version, recorded in every declaration so a
/// version mismatch can name both sides.
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a plugin call returns (see [`status`]).
pub type Status = u32;

/// The values of [`Status`].
pub mod status {
    use super::Status;

    /// Success.
    pub const OK: Status = 0;
    /// Lookup: no such entry (not an error).
    pub const NOT_FOUND: Status = 1;
    /// Billing: the event id was recorded before; nothing changed (not an error).
    pub const DUPLICATE: Status = 2;
    /// Credentials were wrong, or the account cannot log in. The message, if
    /// any, is for the log, never for the client.
    pub const AUTH_FAILED: Status = 3;
    /// The input was not acceptable (malformed name, unknown event kind).
    pub const INVALID_INPUT: Status = 4;
    /// A temporary failure (database busy, disk full): retrying may work.
    pub const TEMPORARY: Status = 5;
    /// A permanent failure inside the plugin (bad settings, corrupt database).
    pub const FAILED: Status = 6;
    /// The plugin panicked; the panic was caught at the boundary.
    pub const PANICKED: Status = 7;
}

/// Bits of [`PluginDeclaration::flags`].
pub mod flags {
    /// The plugin was built with `panic = "unwind"`, so its shims can catch
    /// a panic. A plugin without it would abort the host on a panic; the
    /// loader refuses it.
    pub const UNWINDS: u32 = 1;
}

/// Which interface a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PluginKind {
    /// An authenticator ([`AuthFunctions`]).
    Auth,
    /// An archive billing sink ([`BillingFunctions`]).
    Billing,
}

impl PluginKind {
    /// The number stored in [`DeclarationHeader::kind`].
    pub const fn code(self) -> u32 {
        match self {
            PluginKind::Auth => 1,
            PluginKind::Billing => 2,
        }
    }

    /// The kind for a stored number, if known.
    pub const fn from_code(code: u32) -> Option<PluginKind> {
        match code {
            1 => Some(PluginKind::Auth),
            2 => Some(PluginKind::Billing),
            _ => None,
        }
    }

    /// The name used in configuration files (`auth`, `billing`).
    pub const fn name(self) -> &'static str {
        match self {
            PluginKind::Auth => "auth",
            PluginKind::Billing => "billing",
        }
    }
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A borrowed UTF-8 string: the callee may read `len` bytes at `ptr` for the
/// duration of the call (or forever, in a declaration). A null `ptr` means
/// "absent" (an optional string that is not there); an empty string has a
/// non-null `ptr` and `len` 0.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct StrRef {
    /// The first byte.
    pub ptr: *const u8,
    /// The length in bytes.
    pub len: usize,
}

impl StrRef {
    /// An absent string.
    pub const ABSENT: StrRef = StrRef {
        ptr: std::ptr::null(),
        len: 0,
    };

    /// Borrows `s` (the result must not outlive it).
    pub const fn new(s: &str) -> StrRef {
        StrRef {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// Borrows `s`, or [`StrRef::ABSENT`].
    pub fn optional(s: Option<&str>) -> StrRef {
        s.map_or(StrRef::ABSENT, StrRef::new)
    }

    /// Whether this is [`StrRef::ABSENT`].
    pub fn is_absent(&self) -> bool {
        self.ptr.is_null()
    }

    /// The bytes, or `None` if absent.
    ///
    /// # Safety
    /// Unless absent, `ptr` must point to `len` initialized bytes that stay
    /// valid and unchanged for `'a`.
    pub unsafe fn bytes<'a>(self) -> Option<&'a [u8]> {
        if self.ptr.is_null() {
            return None;
        }
        // SAFETY: non-null, and the caller guarantees `len` readable bytes
        // that live for 'a.
        Some(unsafe { std::slice::from_raw_parts(self.ptr, self.len) })
    }
}

/// A byte buffer allocated by the plugin (a `Vec<u8>` taken apart) and
/// handed to the host, which copies it and gives it back through
/// [`PluginDeclaration::free_buffer`]. Only the plugin's allocator ever
/// frees it. A null `ptr` means "no buffer".
#[repr(C)]
#[derive(Debug)]
pub struct OwnedBuf {
    /// The first byte (the `Vec`'s pointer).
    pub ptr: *mut u8,
    /// The number of initialized bytes.
    pub len: usize,
    /// The allocation's capacity, needed to rebuild the `Vec` to free it.
    pub capacity: usize,
}

impl OwnedBuf {
    /// No buffer.
    pub const NONE: OwnedBuf = OwnedBuf {
        ptr: std::ptr::null_mut(),
        len: 0,
        capacity: 0,
    };

    /// Whether this is [`OwnedBuf::NONE`].
    pub fn is_none(&self) -> bool {
        self.ptr.is_null()
    }

    /// Takes `bytes` apart; only [`OwnedBuf::into_vec`] in the same binary
    /// (the plugin) may put it back together.
    pub fn from_vec(bytes: Vec<u8>) -> OwnedBuf {
        let mut bytes = std::mem::ManuallyDrop::new(bytes);
        OwnedBuf {
            ptr: bytes.as_mut_ptr(),
            len: bytes.len(),
            capacity: bytes.capacity(),
        }
    }

    /// Rebuilds the `Vec` (to free it), or `None` for [`OwnedBuf::NONE`].
    ///
    /// # Safety
    /// `self` must come from [`OwnedBuf::from_vec`] in this same binary
    /// (same global allocator) and not have been rebuilt before.
    pub unsafe fn into_vec(self) -> Option<Vec<u8>> {
        if self.ptr.is_null() {
            return None;
        }
        // SAFETY: the parts come from a `Vec<u8>` of this allocator that
        // was never freed (the caller's contract).
        Some(unsafe { Vec::from_raw_parts(self.ptr, self.len, self.capacity) })
    }

    /// The bytes, or `None` for [`OwnedBuf::NONE`].
    ///
    /// # Safety
    /// Unless null, `ptr` must point to `len` initialized bytes that stay
    /// valid for `'a` (until the buffer is freed).
    pub unsafe fn bytes<'a>(&self) -> Option<&'a [u8]> {
        if self.ptr.is_null() {
            return None;
        }
        // SAFETY: non-null, and the caller guarantees `len` readable bytes.
        Some(unsafe { std::slice::from_raw_parts(self.ptr, self.len) })
    }
}

/// The frozen first part of every [`PluginDeclaration`], whatever its ABI
/// version (see the table in the [module docs](self)).
#[repr(C)]
#[derive(Debug)]
pub struct DeclarationHeader {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// The [`ABI_VERSION`] the plugin was built for.
    pub abi_version: u32,
    /// [`PluginKind::code`].
    pub kind: u32,
    /// The `mailroom-plugin` version the plugin was built with ([`API_VERSION`]).
    pub api_version: StrRef,
    /// The plugin's package name.
    pub plugin_name: StrRef,
    /// The plugin's package version.
    pub plugin_version: StrRef,
}

/// `init(settings, instance, error)`: parses the plugin's settings (a TOML
/// table, as text) and on [`status::OK`] stores a new instance in
/// `*instance`.
pub type InitFn = unsafe extern "C" fn(
    settings: StrRef,
    instance: *mut *mut c_void,
    error: *mut OwnedBuf,
) -> Status;
/// `destroy(instance)`: drops an instance made by `init`.
pub type DestroyFn = unsafe extern "C" fn(instance: *mut c_void);
/// `free_buffer(buffer)`: frees an [`OwnedBuf`] the plugin handed out.
pub type FreeBufferFn = unsafe extern "C" fn(buffer: OwnedBuf);

/// The one exported static of a plugin, ABI version [`ABI_VERSION`].
#[repr(C)]
#[derive(Debug)]
pub struct PluginDeclaration {
    /// The frozen header.
    pub header: DeclarationHeader,
    /// [`LAYOUT_FINGERPRINT`] of the `mailroom-plugin` the plugin was built with.
    pub layout_fingerprint: u64,
    /// Bits of [`flags`].
    pub flags: u32,
    /// Creates an instance from settings.
    pub init: Option<InitFn>,
    /// Destroys an instance.
    pub destroy: Option<DestroyFn>,
    /// Frees a buffer the plugin handed out.
    pub free_buffer: Option<FreeBufferFn>,
    /// The kind's function table: `*const AuthFunctions` or `*const BillingFunctions`.
    pub functions: *const c_void,
}

// SAFETY: a declaration is immutable static data: its raw pointers point to
// other immutable statics (strings, a function table) and are only read.
unsafe impl Sync for PluginDeclaration {}

/// Auth: the credentials of one login. `authzid` is absent unless the
/// client asked to act as someone else.
#[repr(C)]
#[derive(Debug)]
pub struct AuthRequest {
    /// The identity whose password this is.
    pub authcid: StrRef,
    /// The identity to act as, or absent.
    pub authzid: StrRef,
    /// The password.
    pub password: StrRef,
}

/// Bits of [`PrincipalOut::roles`].
pub mod roles {
    /// Administers its own domain.
    pub const DOMAIN_ADMIN: u32 = 1;
    /// Administers the whole server.
    pub const SERVER_ADMIN: u32 = 2;
}

/// Auth: a principal written by the plugin (buffers freed with
/// `free_buffer`). `domain` is [`OwnedBuf::NONE`] for a user without one.
#[repr(C)]
#[derive(Debug)]
pub struct PrincipalOut {
    /// The user name (`local@domain`).
    pub user: OwnedBuf,
    /// The domain (business), or none.
    pub domain: OwnedBuf,
    /// Bits of [`roles`].
    pub roles: u32,
}

impl PrincipalOut {
    /// An empty slot: no user, no domain, no roles.
    pub const EMPTY: PrincipalOut = PrincipalOut {
        user: OwnedBuf::NONE,
        domain: OwnedBuf::NONE,
        roles: 0,
    };
}

/// `authenticate(instance, request, principal, error)`: [`status::OK`] and
/// a principal, or [`status::AUTH_FAILED`].
pub type AuthenticateFn = unsafe extern "C" fn(
    instance: *const c_void,
    request: *const AuthRequest,
    principal: *mut PrincipalOut,
    error: *mut OwnedBuf,
) -> Status;
/// `lookup(instance, user, principal, error)`: [`status::OK`] and a
/// principal, or [`status::NOT_FOUND`].
pub type LookupFn = unsafe extern "C" fn(
    instance: *const c_void,
    user: StrRef,
    principal: *mut PrincipalOut,
    error: *mut OwnedBuf,
) -> Status;

/// The function table of an auth plugin.
#[repr(C)]
#[derive(Debug)]
pub struct AuthFunctions {
    /// Verifies credentials.
    pub authenticate: Option<AuthenticateFn>,
    /// Looks a user up without credentials (for delivery).
    pub lookup: Option<LookupFn>,
}

/// The optional symbol of an auth plugin that offers SCRAM: a static
/// [`AuthScramExtension`].
pub const SCRAM_SYMBOL: &str = "mailroom_plugin_auth_scram";

/// The first eight bytes of an [`AuthScramExtension`].
pub const SCRAM_MAGIC: [u8; 8] = *b"MLRMSCRM";

/// The version of [`AuthScramExtension`]; a host ignores an extension of
/// another version (the plugin then offers no SCRAM).
pub const SCRAM_EXTENSION_VERSION: u32 = 1;

/// Auth, SCRAM extension: a user's SCRAM-SHA-256 verifier, written by the
/// plugin (the salt freed with `free_buffer`).
#[repr(C)]
#[derive(Debug)]
pub struct ScramOut {
    /// The salt (1 to 256 bytes).
    pub salt: OwnedBuf,
    /// The PBKDF2 iteration count (4096 to 10,000,000).
    pub iterations: u32,
    /// `StoredKey = H(HMAC(SaltedPassword, "Client Key"))`.
    pub stored_key: [u8; 32],
    /// `ServerKey = HMAC(SaltedPassword, "Server Key")`.
    pub server_key: [u8; 32],
}

impl ScramOut {
    /// An empty slot.
    pub const NONE: ScramOut = ScramOut {
        salt: OwnedBuf::NONE,
        iterations: 0,
        stored_key: [0; 32],
        server_key: [0; 32],
    };
}

/// `scram_credentials(instance, user, out, error)`: [`status::OK`] and the
/// verifier of `user` in `*out`, or [`status::NOT_FOUND`] for an unknown
/// user, one without a verifier or one who may not log in (the host then
/// goes on with made-up values and fails the proof, so the client cannot
/// tell which).
pub type ScramCredentialsFn = unsafe extern "C" fn(
    instance: *const c_void,
    user: StrRef,
    out: *mut ScramOut,
    error: *mut OwnedBuf,
) -> Status;

/// `authorize(instance, authcid, authzid, principal, error)`: the principal
/// of `authcid`, whose SCRAM proof the host checked, acting as `authzid`
/// (absent: as itself); [`status::OK`] or [`status::AUTH_FAILED`].
pub type AuthorizeFn = unsafe extern "C" fn(
    instance: *const c_void,
    authcid: StrRef,
    authzid: StrRef,
    principal: *mut PrincipalOut,
    error: *mut OwnedBuf,
) -> Status;

/// The optional SCRAM extension of an auth plugin (see the
/// [module docs](self#the-scram-extension-optional-auth-plugins)).
#[repr(C)]
#[derive(Debug)]
pub struct AuthScramExtension {
    /// [`SCRAM_MAGIC`].
    pub magic: [u8; 8],
    /// [`SCRAM_EXTENSION_VERSION`].
    pub version: u32,
    /// [`SCRAM_LAYOUT_FINGERPRINT`].
    pub layout_fingerprint: u64,
    /// Hands out verifiers.
    pub scram_credentials: Option<ScramCredentialsFn>,
    /// Authorizes after a SCRAM proof.
    pub authorize: Option<AuthorizeFn>,
}

// SAFETY: immutable static data: a magic, numbers and function pointers.
unsafe impl Sync for AuthScramExtension {}

/// The values of [`ArchiveEventRepr::kind`].
pub mod event_kind {
    /// Archiving was enabled for the user.
    pub const ENABLED: u32 = 1;
    /// Archiving was disabled for the user.
    pub const DISABLED: u32 = 2;
    /// A message of `size` bytes was archived for the user.
    pub const MESSAGE_ARCHIVED: u32 = 3;
    /// A server admin's override was used on `mailbox`; `size` bytes were removed.
    pub const OVERRIDE_USED: u32 = 4;
}

/// Billing: one archive event, borrowed for the call.
#[repr(C)]
#[derive(Debug)]
pub struct ArchiveEventRepr {
    /// The idempotency key: the same event is always sent with the same id.
    pub event_id: StrRef,
    /// One of [`event_kind`].
    pub kind: u32,
    /// When it happened, seconds since 1970-01-01 UTC.
    pub at_unix: i64,
    /// The business (domain).
    pub domain: StrRef,
    /// The user (`local@domain`).
    pub user: StrRef,
    /// Bytes archived ([`event_kind::MESSAGE_ARCHIVED`]) or removed
    /// ([`event_kind::OVERRIDE_USED`]); 0 otherwise.
    pub size: u64,
    /// The archive mailbox concerned, or absent.
    pub mailbox: StrRef,
    /// Why (an override's reason), or absent.
    pub reason: StrRef,
}

/// Billing: one business's line of a monthly report.
#[repr(C)]
#[derive(Debug)]
pub struct ReportRowRepr {
    /// The business (domain); freed with the report.
    pub domain: OwnedBuf,
    /// Users whose archiving was on during at least one day of the month.
    pub archived_users: u64,
    /// The sum over users of the days archiving was on.
    pub user_days: u64,
    /// Messages archived during the month.
    pub messages: u64,
    /// Bytes archived during the month.
    pub bytes_archived: u64,
    /// Storage in millionths of a GB-month (10^9 bytes kept for the whole month).
    pub gb_month_millionths: u64,
    /// Overrides used during the month.
    pub overrides_used: u64,
    /// The charge in hundredths of the currency unit.
    pub charge_cents: u64,
}

/// Billing: a monthly report written by the plugin, freed as a whole with
/// [`BillingFunctions::free_report`] (rows and their domains included).
#[repr(C)]
#[derive(Debug)]
pub struct ReportOut {
    /// The currency code of the charges (`EUR`).
    pub currency: OwnedBuf,
    /// The rows (a `Vec<ReportRowRepr>` taken apart), or null.
    pub rows: *mut ReportRowRepr,
    /// The number of rows.
    pub len: usize,
    /// The capacity of the rows' allocation.
    pub capacity: usize,
}

impl ReportOut {
    /// No report.
    pub const NONE: ReportOut = ReportOut {
        currency: OwnedBuf::NONE,
        rows: std::ptr::null_mut(),
        len: 0,
        capacity: 0,
    };
}

/// `record(instance, event, error)`: [`status::OK`] when recorded now,
/// [`status::DUPLICATE`] when the id was recorded before; only after
/// either is the event durable.
pub type RecordFn = unsafe extern "C" fn(
    instance: *const c_void,
    event: *const ArchiveEventRepr,
    error: *mut OwnedBuf,
) -> Status;
/// `report(instance, year, month, report, error)`: the report of a month.
pub type ReportFn = unsafe extern "C" fn(
    instance: *const c_void,
    year: i32,
    month: u32,
    report: *mut ReportOut,
    error: *mut OwnedBuf,
) -> Status;
/// `free_report(report)`: frees a report the plugin handed out.
pub type FreeReportFn = unsafe extern "C" fn(report: ReportOut);

/// The function table of a billing plugin.
#[repr(C)]
#[derive(Debug)]
pub struct BillingFunctions {
    /// Records one event, idempotently.
    pub record: Option<RecordFn>,
    /// Reports a month.
    pub report: Option<ReportFn>,
    /// Frees a report.
    pub free_report: Option<FreeReportFn>,
}

const fn mix(mut hash: u64, value: usize) -> u64 {
    let bytes = (value as u64).to_le_bytes();
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// Folds a type's size, alignment and the offsets of the named fields (in
/// the order given) into the hash.
macro_rules! fold_layout {
    ($hash:ident; $($ty:ty { $($field:ident),* })*) => {
        $(
            $hash = mix($hash, size_of::<$ty>());
            $hash = mix($hash, align_of::<$ty>());
            $( $hash = mix($hash, offset_of!($ty, $field)); )*
        )*
    };
}

/// A hash (FNV-1a) of the ABI version, the pointer width and the size,
/// alignment and field offsets of every type that crosses the boundary. Two
/// builds agree on it exactly when they agree on the layout, so a plugin
/// built from a `mailroom-plugin` whose types changed without a version
/// bump is refused too.
pub const LAYOUT_FINGERPRINT: u64 = {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    h = mix(h, ABI_VERSION as usize);
    h = mix(h, size_of::<usize>());
    h = mix(h, cfg!(target_endian = "little") as usize);
    fold_layout!(h;
        StrRef { ptr, len }
        OwnedBuf { ptr, len, capacity }
        DeclarationHeader { magic, abi_version, kind, api_version, plugin_name, plugin_version }
        PluginDeclaration { header, layout_fingerprint, flags, init, destroy, free_buffer, functions }
        AuthRequest { authcid, authzid, password }
        PrincipalOut { user, domain, roles }
        AuthFunctions { authenticate, lookup }
        ArchiveEventRepr { event_id, kind, at_unix, domain, user, size, mailbox, reason }
        ReportRowRepr { domain, archived_users, user_days, messages, bytes_archived,
            gb_month_millionths, overrides_used, charge_cents }
        ReportOut { currency, rows, len, capacity }
        BillingFunctions { record, report, free_report }
    );
    h
};

/// [`LAYOUT_FINGERPRINT`]'s hash over the SCRAM extension's types (and
/// the ones it shares with the declaration), with its own version.
pub const SCRAM_LAYOUT_FINGERPRINT: u64 = {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    h = mix(h, SCRAM_EXTENSION_VERSION as usize);
    h = mix(h, size_of::<usize>());
    h = mix(h, cfg!(target_endian = "little") as usize);
    fold_layout!(h;
        StrRef { ptr, len }
        OwnedBuf { ptr, len, capacity }
        PrincipalOut { user, domain, roles }
        ScramOut { salt, iterations, stored_key, server_key }
        AuthScramExtension { magic, version, layout_fingerprint, scram_credentials, authorize }
    );
    h
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scram_extension_start_is_frozen() {
        assert_eq!(offset_of!(AuthScramExtension, magic), 0);
        assert_eq!(offset_of!(AuthScramExtension, version), 8);
        if size_of::<usize>() == 8 {
            assert_eq!(offset_of!(AuthScramExtension, layout_fingerprint), 16);
        }
        assert_ne!(SCRAM_LAYOUT_FINGERPRINT, LAYOUT_FINGERPRINT);
    }

    #[test]
    fn header_is_frozen() {
        // The table in the module docs, checked (64-bit targets).
        if size_of::<usize>() == 8 {
            assert_eq!(offset_of!(DeclarationHeader, magic), 0);
            assert_eq!(offset_of!(DeclarationHeader, abi_version), 8);
            assert_eq!(offset_of!(DeclarationHeader, kind), 12);
            assert_eq!(offset_of!(DeclarationHeader, api_version), 16);
            assert_eq!(offset_of!(DeclarationHeader, plugin_name), 32);
            assert_eq!(offset_of!(DeclarationHeader, plugin_version), 48);
            assert_eq!(size_of::<DeclarationHeader>(), 64);
        }
        assert_eq!(offset_of!(PluginDeclaration, header), 0);
    }

    #[test]
    fn option_fn_is_a_nullable_pointer() {
        assert_eq!(size_of::<Option<InitFn>>(), size_of::<usize>());
    }

    #[test]
    fn owned_buf_round_trip() {
        let buf = OwnedBuf::from_vec(b"hello".to_vec());
        // SAFETY: made just above by from_vec in this binary.
        assert_eq!(unsafe { buf.bytes() }, Some(&b"hello"[..]));
        // SAFETY: as above, rebuilt once.
        assert_eq!(unsafe { buf.into_vec() }, Some(b"hello".to_vec()));
        // SAFETY: NONE is null.
        assert_eq!(unsafe { OwnedBuf::NONE.into_vec() }, None);
    }

    #[test]
    fn kinds_round_trip() {
        for k in [PluginKind::Auth, PluginKind::Billing] {
            assert_eq!(PluginKind::from_code(k.code()), Some(k));
        }
        assert_eq!(PluginKind::from_code(0), None);
    }
}
