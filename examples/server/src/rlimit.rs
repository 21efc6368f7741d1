//! Raising the open-file limit at start.
//!
//! Every connection is a socket and every selected mailbox an index and a
//! cache file, so the soft `RLIMIT_NOFILE` (often 1,024) would cap a server
//! far below what its memory allows. [`raise_open_files`] lifts it as far
//! as it goes: both limits to the kernel's `fs.nr_open` when the process
//! may raise its hard limit (root, `CAP_SYS_RESOURCE`), else the soft limit
//! to the hard one.
//!
//! ```
//! let (before, after) = mailroomd::rlimit::raise_open_files().unwrap();
//! assert!(after >= before);
//! ```

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Raises the open-file limit as far as it goes. Returns the soft limit
/// before and after (`u64::MAX` for unlimited).
pub fn raise_open_files() -> std::io::Result<(u64, u64)> {
    let old = getrlimit(Resource::Nofile);
    let before = old.current.unwrap_or(u64::MAX);
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    if let Some(n) = nr_open
        && old.maximum.is_some_and(|m| m < n)
        && setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(n),
                maximum: Some(n),
            },
        )
        .is_ok()
    {
        return Ok((before, n));
    }
    if old.current == old.maximum {
        return Ok((before, before));
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: old.maximum,
            maximum: old.maximum,
        },
    )?;
    let now = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    Ok((before, now))
}
