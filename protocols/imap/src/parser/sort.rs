//! SORT and UID SORT (RFC 5256 §3, with the DISPLAYFROM and DISPLAYTO keys
//! of SORT=DISPLAY, RFC 5957).
//!
//! ```text
//! sort            = ["UID" SP] "SORT" [SP "RETURN" SP "(" [opts] ")"]
//!                   SP sort-criteria SP search-criteria      ; RFC 5267
//! sort-criteria   = "(" sort-criterion *(SP sort-criterion) ")"
//! sort-criterion  = ["REVERSE" SP] sort-key
//! sort-key        = "ARRIVAL" / "CC" / "DATE" / "FROM" / "SIZE" /
//!                   "SUBJECT" / "TO" / "DISPLAYFROM" / "DISPLAYTO"
//! search-criteria = charset 1*(SP search-key)
//! ```

use crate::command::{Command, SortCriterion, SortKey};

use super::primitives::{Cursor, PResult, err, utf8};
use super::search::{criteria, return_options};

/// `SORT SP sort-criteria SP charset SP search-criteria` (after the command name).
pub(super) fn sort(c: &mut Cursor<'_>, uid: bool) -> PResult<Command> {
    c.sp()?;
    let return_options = if c.eat_word("RETURN") {
        c.sp()?;
        let opts = return_options(c)?;
        c.sp()?;
        Some(opts)
    } else {
        None
    };
    let criteria_list = c.list(false, sort_criterion)?;
    c.sp()?;
    let charset = utf8(c.astring()?)?.to_ascii_uppercase();
    c.sp()?;
    let search = criteria(c)?;
    Ok(Command::Sort {
        uid,
        return_options,
        criteria: criteria_list,
        charset,
        search,
    })
}

/// `["REVERSE" SP] sort-key`.
fn sort_criterion(c: &mut Cursor<'_>) -> PResult<SortCriterion> {
    let mut word = c.keyword()?;
    let reverse = word == "REVERSE";
    if reverse {
        c.sp()?;
        word = c.keyword()?;
    }
    let key = match word.as_str() {
        "ARRIVAL" => SortKey::Arrival,
        "CC" => SortKey::Cc,
        "DATE" => SortKey::Date,
        "FROM" => SortKey::From,
        "SIZE" => SortKey::Size,
        "SUBJECT" => SortKey::Subject,
        "TO" => SortKey::To,
        "DISPLAYFROM" => SortKey::DisplayFrom,
        "DISPLAYTO" => SortKey::DisplayTo,
        _ => return err("unknown sort key"),
    };
    Ok(SortCriterion { reverse, key })
}
