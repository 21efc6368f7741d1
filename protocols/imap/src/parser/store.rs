//! STORE and UID STORE, with `.SILENT` and UNCHANGEDSINCE (RFC 7162).

use mailroom_core::ModSeq;

use crate::command::{Command, StoreKind};
use crate::extension::searchres;

use super::primitives::{Cursor, MAX_LIST_ITEMS, PResult, err};

/// `STORE SP (sequence-set / "$") [SP "(" "UNCHANGEDSINCE" SP mod-sequence-valzer ")"] SP store-att-flags`
pub(super) fn store(c: &mut Cursor<'_>, uid: bool) -> PResult<Command> {
    c.sp()?;
    let set = c.seq_set_or_saved()?;
    c.sp()?;
    let mut unchanged_since = None;
    if c.peek() == Some(b'(') {
        c.enter()?;
        let mods = c.list(false, |c| {
            if !c.eat_word("UNCHANGEDSINCE") {
                return err("unknown STORE modifier");
            }
            c.sp()?;
            c.number64()
        })?;
        c.leave();
        if mods.len() > 1 {
            return err("UNCHANGEDSINCE given twice");
        }
        unchanged_since = mods.first().copied().map(ModSeq);
        c.sp()?;
    }
    let kind = if c.eat(b'+') {
        StoreKind::Add
    } else if c.eat(b'-') {
        StoreKind::Remove
    } else {
        StoreKind::Replace
    };
    let silent = match c.keyword()?.as_str() {
        "FLAGS" => false,
        "FLAGS.SILENT" => true,
        _ => return err("expected FLAGS, +FLAGS or -FLAGS"),
    };
    c.sp()?;
    let flags = if c.peek() == Some(b'(') {
        c.flag_list()?
    } else {
        let mut flags = vec![c.flag()?];
        while c.eat(b' ') {
            if flags.len() >= MAX_LIST_ITEMS {
                return err("too many flags");
            }
            flags.push(c.flag()?);
        }
        flags
    };
    Ok(searchres::wrap(set, |set| Command::Store {
        uid,
        set,
        kind,
        silent,
        flags,
        unchanged_since,
    }))
}
