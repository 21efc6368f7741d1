//! Building a workspace `cdylib` (a plugin) from a test, and finding the
//! shared library cargo produced.
//!
//! A test cannot depend on a `cdylib` (cargo links only rlibs into test
//! binaries), and a build script cannot run cargo on the same target
//! directory (it would wait for the lock its own build holds). So the test
//! itself runs `cargo build -p PACKAGE --lib` at run time, with the cargo
//! that runs the tests (`$CARGO`), from the workspace root, inheriting the
//! environment (flags, profile settings). The artifact's path is read from
//! cargo's JSON messages (`compiler-artifact` with the `cdylib` kind)
//! rather than guessed from the target layout. A fresh clone (CI's `cargo
//! test --workspace`) builds the plugins on first use.
//!
//! The build goes to its own target directory, `plugin-builds/` inside the
//! outer one. Sharing the outer directory does not work: cargo names a
//! library that is also a `cdylib` without a hash, so building it alone
//! (with the features of that package only) would overwrite the rlib the
//! outer `cargo test` (with the workspace's unified features) just built,
//! and its doctests would then link against a second copy of every
//! dependency. The separate directory costs one build of the plugins'
//! dependencies, then only cargo's freshness check.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives one level below the workspace root")
        .to_path_buf()
}

/// The outer target directory: `$CARGO_TARGET_DIR`, else the workspace's
/// `target/`.
fn outer_target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        })
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Builds the `cdylib` of workspace package `package` (in the dev profile)
/// and returns the shared library's path. Each package is built once per
/// test process.
///
/// # Panics
/// If cargo cannot be run, the build fails, or it produced no `cdylib`.
pub fn build(package: &str) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(path) = built.get(package) {
        return path.clone();
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let output = Command::new(&cargo)
        .args([
            "build",
            "--lib",
            "--message-format=json-render-diagnostics",
            "-p",
            package,
        ])
        .arg("--target-dir")
        .arg(outer_target_dir().join("plugin-builds"))
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "running {} build -p {package}: {e}",
                Path::new(&cargo).display()
            )
        });
    assert!(
        output.status.success(),
        "cargo build -p {package} failed: {}",
        output.status
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let path = cdylib_in_messages(&stdout, package)
        .unwrap_or_else(|| panic!("cargo build -p {package} reported no cdylib artifact"));
    assert!(path.is_file(), "{} does not exist", path.display());
    built.insert(package.to_owned(), path.clone());
    path
}

/// The `cdylib` file of `package` in cargo's JSON messages.
fn cdylib_in_messages(messages: &str, package: &str) -> Option<PathBuf> {
    let target_name = package.replace('-', "_");
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| {
            m["reason"] == "compiler-artifact" && m["target"]["name"] == target_name.as_str()
        })
        .filter(|m| {
            m["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib"))
        })
        .flat_map(|m| {
            m["filenames"]
                .as_array()
                .map(|files| {
                    files
                        .iter()
                        .filter_map(|f| f.as_str().map(PathBuf::from))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
        .find(|f| {
            f.extension()
                .is_some_and(|e| e == std::env::consts::DLL_EXTENSION)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_cdylib_among_messages() {
        let messages = r#"{"reason":"compiler-artifact","target":{"name":"dep","kind":["lib"]},"filenames":["/t/libdep.rlib"]}
not json
{"reason":"compiler-artifact","target":{"name":"my_plugin","kind":["cdylib","rlib"]},"filenames":["/t/libmy_plugin.so","/t/libmy_plugin.rlib"]}
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            cdylib_in_messages(messages, "my-plugin"),
            Some(PathBuf::from("/t/libmy_plugin.so"))
        );
        assert_eq!(cdylib_in_messages(messages, "dep"), None);
    }
}
