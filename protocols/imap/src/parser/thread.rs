//! THREAD and UID THREAD (RFC 5256 §3; REFS from draft-ietf-morg-inthread).
//!
//! ```text
//! thread          = ["UID" SP] "THREAD" SP thread-alg SP search-criteria
//! thread-alg      = "ORDEREDSUBJECT" / "REFERENCES" / "REFS"
//! search-criteria = charset 1*(SP search-key)
//! ```

use crate::command::{Command, ThreadAlgorithm};

use super::primitives::{Cursor, PResult, err, utf8};
use super::search::criteria;

/// `THREAD SP thread-alg SP charset SP search-criteria` (after the command name).
pub(super) fn thread(c: &mut Cursor<'_>, uid: bool) -> PResult<Command> {
    c.sp()?;
    let algorithm = match c.keyword()?.as_str() {
        "ORDEREDSUBJECT" => ThreadAlgorithm::OrderedSubject,
        "REFERENCES" => ThreadAlgorithm::References,
        "REFS" => ThreadAlgorithm::Refs,
        _ => return err("unknown threading algorithm"),
    };
    c.sp()?;
    let charset = utf8(c.astring()?)?.to_ascii_uppercase();
    c.sp()?;
    let search = criteria(c)?;
    Ok(Command::Thread {
        uid,
        algorithm,
        charset,
        search,
    })
}
