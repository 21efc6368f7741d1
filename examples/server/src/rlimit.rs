//! Raising the open-file limit at start.
//!
//! Every connection is a socket and every selected mailbox an index and a
//! cache file, so the soft `RLIMIT_NOFILE` (often 1,024) would cap a server
//! far below what its memory allows. [`raise_open_files`] lifts the soft
//! limit to the hard limit, as far as the process may go without
//! privileges (root may raise the hard limit too; this does not).
//!
//! ```
//! let (before, after) = mailroomd::rlimit::raise_open_files().unwrap();
//! assert!(after >= before);
//! ```

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Raises the soft open-file limit to the hard limit. Returns the soft
/// limit before and after (`u64::MAX` for unlimited).
pub fn raise_open_files() -> std::io::Result<(u64, u64)> {
    let old = getrlimit(Resource::Nofile);
    let before = old.current.unwrap_or(u64::MAX);
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
