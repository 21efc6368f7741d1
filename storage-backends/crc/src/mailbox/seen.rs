//! Per-user seen sets of viewers other than the owner (`seen/`).

use std::fs::{self};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mailroom_core::{Error, Flags, Result};

use crate::fsutil::{escape_component, unescape_component, write_atomic};

use super::{Inner, SEEN_DIR, decode_seen, encode_seen, poisoned};

/// The seen file of a viewer.
pub(crate) fn seen_path(dir: &Path, viewer: &str) -> PathBuf {
    dir.join(SEEN_DIR).join(escape_component(viewer))
}

/// Whether a flag set names \Seen (helper for copy).
pub(crate) fn has_seen(bits: u8) -> bool {
    bits & Flags::SEEN != 0
}

impl Inner {
    /// The seen set of a viewer (loaded once, then kept).
    pub(super) fn seen_set(&self, dir: &Path, viewer: &str) -> Result<Arc<Vec<u32>>> {
        let mut map = self.seen.lock().map_err(|_| poisoned())?;
        if let Some(s) = map.get(viewer) {
            return Ok(s.clone());
        }
        let path = seen_path(dir, viewer);
        let set = match fs::read(&path) {
            Ok(data) => decode_seen(&data)
                .map_err(|why| Error::Corruption(format!("{}: {why}", path.display())))?,
            Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let set = Arc::new(set);
        map.insert(viewer.to_owned(), set.clone());
        Ok(set)
    }

    pub(super) fn set_seen(
        &self,
        dir: &Path,
        viewer: &str,
        set: Vec<u32>,
        durable: bool,
    ) -> Result<()> {
        write_atomic(&seen_path(dir, viewer), &encode_seen(&set), durable)?;
        if let Some(names) = self.viewers.lock().map_err(|_| poisoned())?.as_mut()
            && let Err(at) = names.binary_search_by(|n| n.as_str().cmp(viewer))
        {
            names.insert(at, viewer.to_owned());
        }
        self.seen
            .lock()
            .map_err(|_| poisoned())?
            .insert(viewer.to_owned(), Arc::new(set));
        Ok(())
    }

    /// Every viewer with a seen file, sorted (a file whose name is not an
    /// escaped name is left out): `seen/` is listed once, then kept.
    pub(super) fn viewer_names(&self, dir: &Path) -> Result<Vec<String>> {
        let mut cached = self.viewers.lock().map_err(|_| poisoned())?;
        if let Some(names) = cached.as_ref() {
            return Ok(names.clone());
        }
        let mut names = Vec::new();
        match fs::read_dir(dir.join(SEEN_DIR)) {
            Ok(rd) => {
                for e in rd {
                    if let Some(name) = e?.file_name().to_str().and_then(unescape_component) {
                        names.push(name);
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        names.sort_unstable();
        *cached = Some(names.clone());
        Ok(names)
    }

    /// A viewer's seen set.
    pub(crate) fn viewer_seen(&self, dir: &Path, viewer: &str) -> Result<Arc<Vec<u32>>> {
        self.seen_set(dir, viewer)
    }
}
