//! Why the plugin ABI is sound: the rules both sides follow.
//!
//! Rust has no stable ABI: two crates compiled by different `rustc`
//! versions (or the same version with other flags) may lay out a
//! `struct`, a `Vec`, a `String` or a trait object differently, and may
//! each link their own copy of `std` with its own global allocator and
//! panic runtime. A plugin is such a separately compiled crate. So nothing
//! Rust-specific crosses the boundary:
//!
//! 1. **Only C layouts cross.** Every type in [`crate::abi`] is
//!    `#[repr(C)]` with fixed-width integers, raw pointers, and
//!    `Option<extern "C" fn>` (guaranteed to be a nullable function
//!    pointer). No `String`, `Vec`, `Box`, trait object, `Result` or
//!    `enum` with data crosses. Enumerations cross as `u32` codes and the
//!    receiver checks them: an unknown code is an error, never a
//!    transmute.
//! 2. **One declaration, read in two steps.** The plugin exports one static,
//!    whose first fields (magic, ABI version, kind, names) are frozen for
//!    all versions. The loader reads only those until the version and the
//!    kind match; it never reads the rest of a declaration of another
//!    version, and never calls any function of a plugin that failed a
//!    check. Within one version, [`crate::abi::LAYOUT_FINGERPRINT`] (sizes,
//!    alignments and field offsets of every boundary type) catches a
//!    plugin built from a `mailroom-plugin` whose types changed without a
//!    version bump.
//! 3. **Who allocates frees.** Borrowed inputs ([`crate::abi::StrRef`])
//!    are valid for the duration of one call and never kept by the callee.
//!    Outputs the plugin allocates ([`crate::abi::OwnedBuf`], report rows)
//!    are copied by the host and handed back to the plugin's own
//!    `free_buffer` / `free_report`: each allocator only ever frees its own
//!    allocations. Out-parameters are slots the host owns; the host
//!    initializes them to "none", and frees whatever the plugin put there
//!    whatever the status.
//! 4. **No unwinding across the boundary.** Every exported function runs
//!    its body under `catch_unwind` and turns a panic into
//!    [`crate::abi::status::PANICKED`] with the panic message; a panic
//!    payload is dropped under `catch_unwind` too. (Since Rust 1.81 a
//!    panic escaping an `extern "C"` function aborts the process: these
//!    guards are what keep the host alive.) A plugin built with
//!    `panic = "abort"` could not be guarded, so its declaration says so
//!    ([`crate::abi::flags::UNWINDS`] unset) and the loader refuses it.
//! 5. **Instances are opaque and thread-safe.** `init` returns a pointer to
//!    a `Box<T>` the host never dereferences; it passes it back on every
//!    call and to `destroy` once, after the last call. The export traits
//!    require `T: Send + Sync`, which is what lets the host call one
//!    instance from several threads at once.
//! 6. **The library outlives everything that points into it.** An
//!    instance holds an `Arc` of its library; the library is unloaded only
//!    after the last instance is destroyed, and the function pointers and
//!    strings copied out of the declaration are used only while it is
//!    loaded. The library is opened with `RTLD_NOW | RTLD_LOCAL`.
//! 7. **Inputs are checked on both sides.** The plugin side validates UTF-8
//!    and null pointers before building Rust values; the host bounds every
//!    buffer it copies (names, messages, report rows) and validates UTF-8,
//!    so a broken plugin yields [`crate::PluginError::InvalidOutput`], not
//!    undefined behaviour.
//!
//! What remains trusted: the plugin is native code in the host's process.
//! A plugin that writes through wild pointers or deadlocks can still harm
//! the host; the ABI makes a *correct* plugin built with another compiler
//! safe to load, a plugin of another version impossible to call, and a
//! panicking plugin survivable (a timeout bounds a hanging one).
//!
//! # Why not `abi_stable`
//!
//! `abi_stable` derives checked layouts for rich Rust types, but it is
//! unmaintained (no release for years at the time of writing) and pulls in
//! a large dependency tree and proc-macros for what here is a dozen plain
//! structs. The hand-written table is small enough to audit, and its one
//! check the crate would have added (layouts) is the fingerprint.
//!
//! # `unsafe` in this crate
//!
//! Only the modules [`crate::abi`], `export` (the plugin-side shims behind
//! the export macros) and `loader` allow `unsafe`; each block carries a
//! `// SAFETY:` comment (and `clippy::undocumented_unsafe_blocks` checks
//! that). Plugin authors write none: the export macros expand to the one
//! `#[unsafe(no_mangle)]` static, with its justification.
