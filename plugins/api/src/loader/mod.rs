//! The host side: opening a plugin library, checking its declaration, and
//! the raw (blocking) calls into it.
//!
//! [`PluginLibrary::load`] opens the file and checks, in this order and
//! before calling any plugin function: the declaration symbol exists, the
//! magic bytes, the ABI version (a mismatch names both versions), the kind,
//! the layout fingerprint, that the plugin unwinds on panic, and that every
//! function pointer is present. Only then may [`AuthPluginHandle::new`] or
//! [`BillingPluginHandle::new`] call `init`.

#![allow(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod auth;
mod billing;

use std::ffi::c_void;
use std::fmt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::Arc;

pub use auth::AuthPluginHandle;
pub use billing::BillingPluginHandle;

use crate::abi::{
    ABI_VERSION, API_VERSION, AuthScramExtension, AuthorizeFn, DECLARATION_SYMBOL,
    DeclarationHeader, DestroyFn, FreeBufferFn, InitFn, LAYOUT_FINGERPRINT, MAGIC, OwnedBuf,
    PluginDeclaration, PluginKind, SCRAM_EXTENSION_VERSION, SCRAM_LAYOUT_FINGERPRINT, SCRAM_MAGIC,
    SCRAM_SYMBOL, ScramCredentialsFn, Status, StrRef, flags, status,
};
use crate::error::{FailureKind, PluginError};

/// The longest name or version string read from a declaration.
const MAX_HEADER_STRING: usize = 256;
/// The longest error message accepted from a plugin.
const MAX_ERROR_BYTES: usize = 64 * 1024;

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// The file it was loaded from.
    pub path: PathBuf,
    /// Its package name.
    pub name: String,
    /// Its package version.
    pub version: String,
    /// Its kind.
    pub kind: PluginKind,
    /// The `mailroom-plugin` version it was built with.
    pub api_version: String,
}

impl PluginInfo {
    /// `name version`, for messages.
    pub fn label(&self) -> String {
        format!("{} {}", self.name, self.version)
    }
}

/// A loaded plugin library whose declaration passed every check. Nothing in
/// it has been called yet; the kind's handle calls `init`.
pub struct PluginLibrary {
    info: PluginInfo,
    label: String,
    functions: NonNull<c_void>,
    init: InitFn,
    destroy: DestroyFn,
    free_buffer: FreeBufferFn,
    /// The SCRAM extension of an auth plugin, if it has a usable one.
    pub(crate) scram: Option<ScramFunctions>,
    // Never read, only kept open. Declared last: dropped (unloaded) after
    // everything that points into it.
    _library: libloading::Library,
}

// SAFETY: the pointers point to immutable statics inside `library`, which
// lives as long as `self`; the plugin's functions may be called from any
// thread (the export macros require `Send + Sync` plugin types).
unsafe impl Send for PluginLibrary {}
// SAFETY: as for `Send`: only immutable data and thread-safe functions.
unsafe impl Sync for PluginLibrary {}

impl fmt::Debug for PluginLibrary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginLibrary")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// The functions of a checked SCRAM extension.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScramFunctions {
    pub(crate) scram_credentials: ScramCredentialsFn,
    pub(crate) authorize: AuthorizeFn,
}

/// Checks an auth plugin's SCRAM extension: magic, version, layout
/// fingerprint, functions; the reason it is not used otherwise.
///
/// # Safety
/// `ptr` must point to a readable static that starts with the extension's
/// frozen fields (magic, version, fingerprint), and that is a whole
/// [`AuthScramExtension`] if those are this host's.
unsafe fn check_scram_extension(
    ptr: NonNull<AuthScramExtension>,
) -> Result<ScramFunctions, String> {
    let start = ptr.cast::<u8>();
    // SAFETY: the caller's contract: the first 8 bytes are readable.
    let magic = unsafe { start.cast::<[u8; 8]>().read_unaligned() };
    if magic != SCRAM_MAGIC {
        return Err("its SCRAM extension does not start with the magic bytes".into());
    }
    // SAFETY: the frozen start: the version at offset 8, readable.
    let version = unsafe { start.add(8).cast::<u32>().read_unaligned() };
    if version != SCRAM_EXTENSION_VERSION {
        return Err(format!(
            "its SCRAM extension is version {version}, this server reads version {SCRAM_EXTENSION_VERSION}"
        ));
    }
    // SAFETY: same version: the static is a whole `AuthScramExtension`.
    let extension = unsafe { ptr.as_ref() };
    if extension.layout_fingerprint != SCRAM_LAYOUT_FINGERPRINT {
        return Err(format!(
            "its SCRAM extension has layout fingerprint {:#x}, this server's is {SCRAM_LAYOUT_FINGERPRINT:#x}",
            extension.layout_fingerprint
        ));
    }
    match (extension.scram_credentials, extension.authorize) {
        (Some(scram_credentials), Some(authorize)) => Ok(ScramFunctions {
            scram_credentials,
            authorize,
        }),
        _ => Err("its SCRAM extension lacks a function".into()),
    }
}

/// Reads a header string (a static inside the plugin), bounded and lossy.
///
/// # Safety
/// `s` must be absent or point to `len` readable bytes.
unsafe fn header_string(s: StrRef) -> String {
    if s.len > MAX_HEADER_STRING {
        return "<overlong>".to_owned();
    }
    // SAFETY: the caller's contract.
    match unsafe { s.bytes() } {
        Some(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        None => "<unnamed>".to_owned(),
    }
}

/// What [`check_declaration`] read from a declaration that passed.
struct Checked {
    info: PluginInfo,
    label: String,
    functions: NonNull<c_void>,
    init: InitFn,
    destroy: DestroyFn,
    free_buffer: FreeBufferFn,
}

/// Checks a declaration, in order: magic, ABI version, kind, layout
/// fingerprint, unwinding, function pointers. Reads nothing past the frozen
/// header unless the version and kind match.
///
/// # Safety
/// `header_ptr` must point to a readable static that starts with a
/// [`DeclarationHeader`] whose strings are readable, and that is a whole
/// [`PluginDeclaration`] if its `abi_version` is [`ABI_VERSION`].
unsafe fn check_declaration(
    path: &Path,
    header_ptr: NonNull<DeclarationHeader>,
    kind: PluginKind,
) -> Result<Checked, PluginError> {
    let not_a_plugin = |reason| PluginError::NotAPlugin {
        path: path.to_owned(),
        reason,
    };
    // SAFETY: the caller's contract: a readable frozen header. The
    // magic is checked before any other field is trusted.
    let header = unsafe { header_ptr.as_ref() };
    if header.magic != MAGIC {
        return Err(not_a_plugin(
            "the declaration does not start with the magic bytes",
        ));
    }
    // SAFETY: the header's strings point to statics in the library
    // (frozen header layout, checked magic).
    let (name, version, api_version) = unsafe {
        (
            header_string(header.plugin_name),
            header_string(header.plugin_version),
            header_string(header.api_version),
        )
    };
    let label = format!("{name} {version}");
    if header.abi_version != ABI_VERSION {
        return Err(PluginError::AbiMismatch {
            path: path.to_owned(),
            plugin: label,
            plugin_abi: header.abi_version,
            plugin_api: api_version,
            host_abi: ABI_VERSION,
            host_api: API_VERSION.to_owned(),
        });
    }
    if header.kind != kind.code() {
        return Err(PluginError::KindMismatch {
            path: path.to_owned(),
            plugin: label,
            expected: kind.name().to_owned(),
            found: PluginKind::from_code(header.kind).map_or_else(
                || format!("unknown (kind {})", header.kind),
                |k| k.name().to_owned(),
            ),
        });
    }

    // SAFETY: same ABI version, so the static is a whole
    // `PluginDeclaration` of this layout (the header is its first field).
    let declaration = unsafe { header_ptr.cast::<PluginDeclaration>().as_ref() };
    if declaration.layout_fingerprint != LAYOUT_FINGERPRINT {
        return Err(PluginError::LayoutMismatch {
            path: path.to_owned(),
            plugin: label,
            abi: ABI_VERSION,
            plugin_fingerprint: declaration.layout_fingerprint,
            host_fingerprint: LAYOUT_FINGERPRINT,
        });
    }
    if declaration.flags & flags::UNWINDS == 0 {
        return Err(PluginError::AbortsOnPanic {
            path: path.to_owned(),
            plugin: label,
        });
    }
    let missing = |function| PluginError::MissingFunction {
        path: path.to_owned(),
        plugin: label.clone(),
        function,
    };
    let init = declaration.init.ok_or_else(|| missing("init"))?;
    let destroy = declaration.destroy.ok_or_else(|| missing("destroy"))?;
    let free_buffer = declaration
        .free_buffer
        .ok_or_else(|| missing("free_buffer"))?;
    let functions =
        NonNull::new(declaration.functions.cast_mut()).ok_or_else(|| missing("functions"))?;
    Ok(Checked {
        info: PluginInfo {
            path: path.to_owned(),
            name,
            version,
            kind,
            api_version,
        },
        label,
        functions,
        init,
        destroy,
        free_buffer,
    })
}

impl PluginLibrary {
    /// Opens the plugin at `path` and checks that it is a `kind` plugin for
    /// this ABI. Calls nothing in it.
    ///
    /// Loading a library runs its initialisers: configure only plugin files
    /// you trust, as with any dynamic loader.
    pub fn load(path: impl AsRef<Path>, kind: PluginKind) -> Result<PluginLibrary, PluginError> {
        let path = path.as_ref();
        let path_text = path.to_str().ok_or_else(|| PluginError::PathNotUtf8 {
            path: path.to_owned(),
        })?;
        use libloading::os::unix::{RTLD_LOCAL, RTLD_NOW};
        // SAFETY: dlopen runs the library's initialisers, which is the trust
        // an operator places in a plugin by configuring it. RTLD_NOW binds
        // every symbol now, so a missing dependency fails here rather than
        // in the middle of a call; RTLD_LOCAL keeps the plugin's symbols
        // out of the global namespace (two plugins cannot clash).
        let library: libloading::Library =
            unsafe { libloading::os::unix::Library::open(Some(path_text), RTLD_NOW | RTLD_LOCAL) }
                .map_err(|source| PluginError::Open {
                    path: path.to_owned(),
                    source,
                })?
                .into();
        // SAFETY: this only looks up the symbol's address (typed as a
        // pointer to it); nothing is read until `check_declaration`.
        let address = unsafe { library.get::<*const DeclarationHeader>(DECLARATION_SYMBOL) }
            .map(|symbol| *symbol)
            .map_err(|_| PluginError::NotAPlugin {
                path: path.to_owned(),
                reason: "no `mailroom_plugin_declaration` symbol",
            })?;
        let header = NonNull::new(address.cast_mut()).ok_or_else(|| PluginError::NotAPlugin {
            path: path.to_owned(),
            reason: "null declaration",
        })?;
        // SAFETY: a symbol named `mailroom_plugin_declaration` is, by this
        // ABI, a static that starts with the frozen `DeclarationHeader`;
        // `library` stays loaded while it is read.
        let checked = unsafe { check_declaration(path, header, kind) }?;
        let scram = if kind == PluginKind::Auth {
            // SAFETY: only looks up the optional symbol's address.
            let address = unsafe { library.get::<*const AuthScramExtension>(SCRAM_SYMBOL) }
                .ok()
                .map(|symbol| *symbol)
                .and_then(|a| NonNull::new(a.cast_mut()));
            match address {
                None => {
                    tracing::info!(plugin = %checked.label, "auth plugin without the SCRAM extension: SCRAM not offered");
                    None
                }
                // SAFETY: a symbol named `mailroom_plugin_auth_scram` is, by
                // this ABI, a static that starts with the extension's frozen
                // fields; `library` stays loaded while it is read.
                Some(ptr) => match unsafe { check_scram_extension(ptr) } {
                    Ok(functions) => Some(functions),
                    Err(reason) => {
                        tracing::warn!(plugin = %checked.label, %reason, "SCRAM extension not used: SCRAM not offered");
                        None
                    }
                },
            }
        } else {
            None
        };
        Ok(PluginLibrary {
            scram,
            info: checked.info,
            label: checked.label,
            functions: checked.functions,
            init: checked.init,
            destroy: checked.destroy,
            free_buffer: checked.free_buffer,
            _library: library,
        })
    }

    /// What the plugin says about itself.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// `name version`.
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// Copies a buffer the plugin handed out (at most `limit` bytes) and
    /// gives it back to the plugin to free.
    pub(crate) fn take_buffer(
        &self,
        buffer: OwnedBuf,
        limit: usize,
        function: &'static str,
    ) -> Result<Option<Vec<u8>>, PluginError> {
        if buffer.is_none() {
            return Ok(None);
        }
        let copied = if buffer.len > limit {
            Err(self.invalid(
                function,
                format!("a buffer of {} bytes (limit {limit})", buffer.len),
            ))
        } else {
            // SAFETY: a non-null buffer from the plugin holds `len` readable
            // bytes until it is freed, which happens just below.
            Ok(unsafe { buffer.bytes() }.map(<[u8]>::to_vec))
        };
        // SAFETY: given back exactly once to the plugin that allocated it.
        unsafe { (self.free_buffer)(buffer) };
        copied
    }

    /// [`PluginLibrary::take_buffer`] as UTF-8 text.
    pub(crate) fn take_string(
        &self,
        buffer: OwnedBuf,
        limit: usize,
        function: &'static str,
    ) -> Result<Option<String>, PluginError> {
        match self.take_buffer(buffer, limit, function)? {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| self.invalid(function, "a string that is not UTF-8".into())),
        }
    }

    /// The error for a status other than the function's successes; frees `error`.
    pub(crate) fn failure(
        &self,
        function: &'static str,
        code: Status,
        error: OwnedBuf,
    ) -> PluginError {
        let message = match self.take_buffer(error, MAX_ERROR_BYTES, function) {
            Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            Ok(None) => String::new(),
            Err(e) => return e,
        };
        if code == status::PANICKED {
            return PluginError::Panicked {
                plugin: self.label.clone(),
                function,
                message,
            };
        }
        match FailureKind::from_status(code) {
            Some(kind) => PluginError::Call {
                plugin: self.label.clone(),
                function,
                kind,
                message,
            },
            None => self.invalid(function, format!("unknown status {code}")),
        }
    }

    /// A refusal made by the host on the plugin's behalf (as if the plugin
    /// had answered AUTH_FAILED).
    pub(crate) fn refused(&self, function: &'static str, message: &str) -> PluginError {
        PluginError::Call {
            plugin: self.label.clone(),
            function,
            kind: FailureKind::AuthFailed,
            message: message.to_owned(),
        }
    }

    pub(crate) fn invalid(&self, function: &'static str, reason: String) -> PluginError {
        PluginError::InvalidOutput {
            plugin: self.label.clone(),
            function,
            reason,
        }
    }
}

/// One initialized plugin instance; destroyed (through the plugin) on drop,
/// before its library can be unloaded.
pub(crate) struct Instance {
    raw: NonNull<c_void>,
    library: Arc<PluginLibrary>,
}

// SAFETY: the instance is a `Box<T>` with `T: Send + Sync` (required by the
// export macros' traits), so it may be shared and used from any thread.
unsafe impl Send for Instance {}
// SAFETY: as for `Send`.
unsafe impl Sync for Instance {}

impl Instance {
    /// Calls the plugin's `init` with `settings`.
    pub(crate) fn new(
        library: Arc<PluginLibrary>,
        settings: &str,
    ) -> Result<Instance, PluginError> {
        let mut raw: *mut c_void = std::ptr::null_mut();
        let mut error = OwnedBuf::NONE;
        // SAFETY: the declaration passed every check in `load`; the
        // arguments are valid for the call (settings borrowed, the two out
        // slots owned here).
        let code = unsafe { (library.init)(StrRef::new(settings), &mut raw, &mut error) };
        if code != status::OK {
            return Err(library.failure("init", code, error));
        }
        let leftover = library.take_buffer(error, MAX_ERROR_BYTES, "init");
        let raw =
            NonNull::new(raw).ok_or_else(|| library.invalid("init", "a null instance".into()))?;
        // Built before `leftover` is checked, so an error still destroys it.
        let instance = Instance { raw, library };
        leftover?;
        Ok(instance)
    }

    pub(crate) fn as_ptr(&self) -> *const c_void {
        self.raw.as_ptr()
    }

    pub(crate) fn library(&self) -> &PluginLibrary {
        &self.library
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // SAFETY: `raw` came from this library's `init` and is destroyed
        // once; no call is running (calls borrow `self`).
        unsafe { (self.library.destroy)(self.raw.as_ptr()) };
    }
}

impl fmt::Debug for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instance")
            .field("plugin", &self.library.label)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::AuthFunctions;
    use crate::export::{AuthExports, declaration};
    use mailroom_core::{Credentials, Principal};

    struct Nobody;
    impl crate::Plugin for Nobody {
        fn init(_: &str) -> Result<Self, crate::PluginFailure> {
            Ok(Nobody)
        }
    }
    impl crate::AuthPlugin for Nobody {
        fn authenticate(&self, _: &Credentials) -> Result<Principal, crate::PluginFailure> {
            Err(crate::PluginFailure::auth_failed("nobody"))
        }
        fn lookup(&self, _: &str) -> Result<Option<Principal>, crate::PluginFailure> {
            Ok(None)
        }
    }
    static FUNCTIONS: AuthFunctions = AuthExports::<Nobody>::FUNCTIONS;

    fn good() -> PluginDeclaration {
        declaration::<Nobody>(
            ABI_VERSION,
            LAYOUT_FINGERPRINT,
            PluginKind::Auth,
            "nobody",
            "1.0.0",
            (&raw const FUNCTIONS).cast(),
        )
    }

    fn check(d: &PluginDeclaration, kind: PluginKind) -> Result<Checked, PluginError> {
        // SAFETY: a whole declaration of this ABI, alive for the call.
        unsafe { check_declaration(Path::new("/p.so"), NonNull::from(&d.header), kind) }
    }

    #[test]
    fn every_check_in_turn() {
        let ok = check(&good(), PluginKind::Auth).map(|c| c.info);
        assert_eq!(
            ok.as_ref().map(|i| i.label()).ok(),
            Some("nobody 1.0.0".to_owned()),
            "{ok:?}"
        );

        let mut d = good();
        d.header.magic = *b"NOTMAGIC";
        assert!(matches!(
            check(&d, PluginKind::Auth),
            Err(PluginError::NotAPlugin { .. })
        ));

        let mut d = good();
        d.header.abi_version = 7;
        let err = check(&d, PluginKind::Auth).map(|_| ());
        assert!(
            matches!(
                &err,
                Err(PluginError::AbiMismatch {
                    plugin_abi: 7,
                    host_abi: ABI_VERSION,
                    ..
                })
            ),
            "{err:?}"
        );

        let err = check(&good(), PluginKind::Billing).map(|_| ());
        assert!(
            matches!(&err, Err(PluginError::KindMismatch { .. })),
            "{err:?}"
        );
        let mut d = good();
        d.header.kind = 99;
        let err = check(&d, PluginKind::Auth)
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert!(
            matches!(&err, Err(m) if m.contains("unknown (kind 99)")),
            "{err:?}"
        );

        let mut d = good();
        d.layout_fingerprint ^= 1;
        let err = check(&d, PluginKind::Auth).map(|_| ());
        assert!(
            matches!(&err, Err(PluginError::LayoutMismatch { .. })),
            "{err:?}"
        );

        let mut d = good();
        d.flags = 0;
        let err = check(&d, PluginKind::Auth).map(|_| ());
        assert!(
            matches!(&err, Err(PluginError::AbortsOnPanic { .. })),
            "{err:?}"
        );

        let mut d = good();
        d.init = None;
        let err = check(&d, PluginKind::Auth).map(|_| ());
        assert!(
            matches!(
                &err,
                Err(PluginError::MissingFunction {
                    function: "init",
                    ..
                })
            ),
            "{err:?}"
        );

        let mut d = good();
        d.functions = std::ptr::null();
        let err = check(&d, PluginKind::Auth).map(|_| ());
        assert!(
            matches!(
                &err,
                Err(PluginError::MissingFunction {
                    function: "functions",
                    ..
                })
            ),
            "{err:?}"
        );
    }

    fn check_scram(e: &AuthScramExtension) -> Result<ScramFunctions, String> {
        // SAFETY: a whole extension of this version, alive for the call.
        unsafe { check_scram_extension(NonNull::from(e)) }
    }

    /// A SCRAM extension is used only if its magic, version, fingerprint
    /// and functions are this host's; otherwise the reason is given (and
    /// the plugin loads without SCRAM).
    #[test]
    fn scram_extension_checks() {
        use crate::export::AuthScramExports;
        let good = || AuthScramExports::<Nobody>::EXTENSION;
        assert!(check_scram(&good()).is_ok());
        let mut e = good();
        e.magic = *b"NOTMAGIC";
        assert!(check_scram(&e).unwrap_err().contains("magic"));
        let mut e = good();
        e.version = SCRAM_EXTENSION_VERSION + 1;
        let err = check_scram(&e).unwrap_err();
        assert!(
            err.contains(&format!(
                "version {}, this server reads version {SCRAM_EXTENSION_VERSION}",
                SCRAM_EXTENSION_VERSION + 1
            )),
            "{err}"
        );
        let mut e = good();
        e.layout_fingerprint ^= 1;
        assert!(check_scram(&e).unwrap_err().contains("layout fingerprint"));
        let mut e = good();
        e.authorize = None;
        assert!(check_scram(&e).unwrap_err().contains("lacks a function"));
    }

    #[test]
    fn the_mismatch_message_names_both_versions() {
        let mut d = good();
        d.header.abi_version = ABI_VERSION + 1;
        let msg = check(&d, PluginKind::Auth)
            .map(|_| ())
            .map_err(|e| e.to_string());
        let want_plugin = format!("built for plugin ABI version {}", ABI_VERSION + 1);
        let want_host = format!("this server speaks ABI version {ABI_VERSION}");
        assert!(
            matches!(&msg, Err(m) if m.contains(&want_plugin) && m.contains(&want_host)),
            "{msg:?}"
        );
    }

    #[test]
    fn a_library_without_a_declaration_is_not_a_plugin() {
        // libc is loaded in every process and is certainly not a plugin.
        let err = PluginLibrary::load("libc.so.6", PluginKind::Auth).map(|_| ());
        assert!(
            matches!(&err, Err(PluginError::NotAPlugin { reason, .. }) if reason.contains("symbol")),
            "{err:?}"
        );
    }

    #[test]
    fn a_missing_file_is_an_open_error() {
        let err = PluginLibrary::load("/nonexistent/libnothing.so", PluginKind::Auth).map(|_| ());
        assert!(matches!(err, Err(PluginError::Open { .. })), "{err:?}");
    }
}
