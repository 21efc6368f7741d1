//! SELECT and EXAMINE with the CONDSTORE and QRESYNC parameters (RFC 7162).

use mailroom_core::{ModSeq, UidValidity};

use crate::command::{Command, QresyncParams, SelectParams};

use super::primitives::{Cursor, PResult, err};

/// `SELECT SP mailbox [SP "(" select-param *(SP select-param) ")"]`
pub(super) fn select(c: &mut Cursor<'_>, examine: bool) -> PResult<Command> {
    c.sp()?;
    let mailbox = c.mailbox()?;
    let mut params = SelectParams::default();
    if c.eat(b' ') {
        c.enter()?;
        let items = c.list(false, |c| {
            let name = c.keyword()?;
            match name.as_str() {
                "CONDSTORE" => Ok(None),
                "QRESYNC" => {
                    c.sp()?;
                    qresync(c).map(Some)
                }
                _ => err("unknown SELECT parameter"),
            }
        })?;
        c.leave();
        for item in items {
            match item {
                None => params.condstore = true,
                Some(q) => {
                    if params.qresync.is_some() {
                        return err("QRESYNC given twice");
                    }
                    params.qresync = Some(q);
                }
            }
        }
    }
    Ok(if examine {
        Command::Examine { mailbox, params }
    } else {
        Command::Select { mailbox, params }
    })
}

/// `"(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")"`
fn qresync(c: &mut Cursor<'_>) -> PResult<QresyncParams> {
    c.expect(b'(', "expected '(' after QRESYNC")?;
    let uid_validity = UidValidity(c.nz_number()?);
    c.sp()?;
    let modseq = c.number64()?;
    if modseq == 0 {
        return err("modseq must not be zero");
    }
    let mut known_uids = None;
    let mut seq_match = None;
    if c.eat(b' ') {
        if c.peek() != Some(b'(') {
            known_uids = Some(c.seq_set()?);
            if c.eat(b' ') {
                seq_match = Some(seq_match_data(c)?);
            }
        } else {
            seq_match = Some(seq_match_data(c)?);
        }
    }
    c.expect(b')', "expected ')' to end QRESYNC")?;
    Ok(QresyncParams {
        uid_validity,
        modseq: ModSeq(modseq),
        known_uids,
        seq_match,
    })
}

/// `"(" known-sequence-set SP known-uid-set ")"`
fn seq_match_data(c: &mut Cursor<'_>) -> PResult<(mailroom_core::SeqSet, mailroom_core::SeqSet)> {
    c.expect(b'(', "expected '('")?;
    let seqs = c.seq_set()?;
    c.sp()?;
    let uids = c.seq_set()?;
    c.expect(b')', "expected ')'")?;
    Ok((seqs, uids))
}
