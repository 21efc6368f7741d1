//! STORE: flag and keyword changes, the owner's and a viewer's own \Seen.

use std::path::Path;

use mailroom_core::{Flags, ModSeq, Result, StoreOp, StoreResult, Uid};

use crate::ctx::Ctx;
use crate::index::{Counts, Record};
use crate::layout::HDR_FLAG_DIRTY;

use super::{Inner, Shared, Viewer, add_counts, sub_counts};

impl Shared {
    pub(crate) fn store(
        &self,
        viewer: Viewer<'_>,
        uids: &[Uid],
        op: &StoreOp,
        unchanged_since: Option<ModSeq>,
    ) -> Result<StoreResult> {
        let mut g = self.write()?;
        let r = g
            .store(&self.dir, &self.ctx, viewer, uids, op, unchanged_since)
            .map_err(|e| {
                g.broken = true;
                self.fail(e)
            })?;
        if !r.changed.is_empty() {
            self.notify(g.hdr.highest_modseq);
        }
        Ok(r)
    }
}

impl Inner {
    pub(super) fn store(
        &mut self,
        dir: &Path,
        ctx: &Ctx,
        viewer: Viewer<'_>,
        uids: &[Uid],
        op: &StoreOp,
        unchanged_since: Option<ModSeq>,
    ) -> Result<StoreResult> {
        self.restore_keywords_on_err(|this| {
            this.store_inner(dir, ctx, viewer, uids, op, unchanged_since)
        })
    }

    pub(super) fn store_inner(
        &mut self,
        dir: &Path,
        ctx: &Ctx,
        viewer: Viewer<'_>,
        uids: &[Uid],
        op: &StoreOp,
        unchanged_since: Option<ModSeq>,
    ) -> Result<StoreResult> {
        let durable = ctx.durable;
        let mut result = StoreResult::default();
        let seen = match viewer {
            Some(v) => Some(self.seen_set(dir, v)?),
            None => None,
        };
        let mut sorted: Vec<u32> = uids.iter().map(|u| u.0).collect();
        sorted.sort_unstable();
        sorted.dedup();
        // (index, old record, new record, viewer seen)
        let mut updates: Vec<(usize, Record, Record, Option<bool>)> = Vec::new();
        let mut added = false;
        for uid in sorted {
            let Some((i, r)) = self.find(uid)? else {
                continue;
            };
            if unchanged_since.is_some_and(|u| r.modseq > u.0) {
                result.modified.push(Uid(uid));
                continue;
            }
            let vs = seen.as_ref().map(|s| s.binary_search(&uid).is_ok());
            let mut view = self.meta(&r, vs)?.flags;
            if !view.apply(op) {
                continue;
            }
            let mut bits = view.system_bits();
            let new_vs = vs.map(|_| bits & Flags::SEEN != 0);
            if viewer.is_some() {
                // only the viewer's own \Seen changes; the owner's stays
                bits = (bits & !Flags::SEEN) | (r.system_flags & Flags::SEEN);
            }
            let kbits = self.keyword_bits(view.keywords(), &mut added)?;
            let mut n = r;
            n.system_flags = bits;
            n.user_flags = kbits;
            updates.push((i, r, n, new_vs));
        }
        if updates.is_empty() {
            return Ok(result);
        }
        let modseq = self.hdr.highest_modseq + 1;
        if added {
            self.save_keywords(dir, durable)?;
        }
        // mark the header dirty, write the records, then the clean header
        let mut h = self.hdr;
        h.flags |= HDR_FLAG_DIRTY;
        h.keyword_count = self.keywords.len() as u32;
        self.write_header(&h, durable)?;
        for (i, old, new, _) in &mut updates {
            new.modseq = modseq;
            self.write_record(*i, new)?;
            let mut c = Counts::default();
            c.add(old, h.recent_uid, &self.keywords);
            sub_counts(&mut h, &c);
            let mut c = Counts::default();
            c.add(new, h.recent_uid, &self.keywords);
            add_counts(&mut h, &c);
        }
        if durable {
            self.index_file()?.sync_data()?;
        }
        if let (Some(v), Some(s)) = (viewer, seen.as_ref()) {
            let mut set = (**s).clone();
            let mut changed = false;
            for (_, old, _, vs) in &updates {
                let was = s.binary_search(&old.uid).is_ok();
                if let Some(now) = vs
                    && *now != was
                {
                    changed = true;
                    if *now {
                        set.push(old.uid);
                    } else {
                        set.retain(|u| *u != old.uid);
                    }
                }
            }
            if changed {
                set.sort_unstable();
                set.dedup();
                self.set_seen(dir, v, set, durable)?;
            }
        }
        h.highest_modseq = modseq;
        h.flags &= !HDR_FLAG_DIRTY;
        self.write_header(&h, durable)?;
        if let Some(v) = self.view.get_mut() {
            for (i, _, new, _) in &updates {
                if let Some(slot) = v.get_mut(*i) {
                    *slot = *new;
                }
            }
        }
        for (_, _, new, vs) in &updates {
            result.changed.push(self.meta(new, *vs)?);
        }
        Ok(result)
    }
}
