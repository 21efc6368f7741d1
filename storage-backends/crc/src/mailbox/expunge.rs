//! EXPUNGE and the repack that drops expunged records from the index.

use std::fs::{self};
use std::io::ErrorKind;
use std::path::Path;

use mailroom_core::{Error, Flags, Result, Uid};

use crate::ctx::Ctx;
use crate::fsutil::{sync_dir, write_atomic};
use crate::index::{Counts, Header, Record};
use crate::layout::{HDR_FLAG_DIRTY, HEADER_SIZE, REC_FLAG_EXPUNGED, RECORD_SIZE};

use super::{
    AUTO_REPACK_EXPUNGED, INDEX_FILE, Inner, MSG_DIR, Shared, WriteGuard, msg_path, sub_counts,
    usage_of,
};

impl Shared {
    /// Expunges (under an already held write lock).
    pub(crate) fn expunge_locked(
        &self,
        g: &mut WriteGuard<'_>,
        uids: Option<&[Uid]>,
        only_deleted: bool,
    ) -> Result<Vec<Uid>> {
        let before = usage_of(&g.hdr);
        let done = g
            .expunge(&self.dir, &self.ctx, uids, only_deleted)
            .map_err(|e| {
                g.broken = true;
                self.ctx.ledgers.forget(&self.owner);
                self.fail(e)
            })?;
        if !done.is_empty() {
            self.usage_changed(before, usage_of(&g.hdr), &mut []);
            self.notify(g.hdr.highest_modseq);
            let expunged = g.hdr.record_count - g.hdr.exists;
            if expunged >= AUTO_REPACK_EXPUNGED && expunged > g.hdr.exists {
                // the expunge is committed; a failed repack is only logged
                if let Err(e) = g.repack(&self.dir, &self.ctx) {
                    tracing::warn!(mailbox = %self.mref(), error = %e, "automatic repack failed");
                }
            }
        }
        Ok(done)
    }
}

impl Inner {
    /// Marks records expunged. With `only_deleted`, only those with
    /// \Deleted; the UIDs done are returned ascending.
    pub(crate) fn expunge(
        &mut self,
        dir: &Path,
        ctx: &Ctx,
        uids: Option<&[Uid]>,
        only_deleted: bool,
    ) -> Result<Vec<Uid>> {
        let durable = ctx.durable;
        let mut doomed: Vec<(usize, Record)> = Vec::new();
        match uids {
            Some(list) => {
                let mut sorted: Vec<u32> = list.iter().map(|u| u.0).collect();
                sorted.sort_unstable();
                sorted.dedup();
                for uid in sorted {
                    if let Some((i, r)) = self.find(uid)?
                        && (!only_deleted || r.system_flags & Flags::DELETED != 0)
                    {
                        doomed.push((i, r));
                    }
                }
            }
            None => {
                for (i, r) in self.view()?.iter().enumerate() {
                    if !r.is_expunged() && (!only_deleted || r.system_flags & Flags::DELETED != 0) {
                        doomed.push((i, *r));
                    }
                }
            }
        }
        if doomed.is_empty() {
            return Ok(Vec::new());
        }
        let modseq = self.hdr.highest_modseq + 1;
        let mut h = self.hdr;
        h.flags |= HDR_FLAG_DIRTY;
        self.write_header(&h, durable)?;
        for (i, r) in &doomed {
            let mut c = Counts::default();
            c.add(r, h.recent_uid, &self.keywords);
            sub_counts(&mut h, &c);
            let mut n = *r;
            n.rflags |= REC_FLAG_EXPUNGED;
            n.modseq = modseq;
            self.write_record(*i, &n)?;
        }
        if durable {
            self.index_file()?.sync_data()?;
        }
        h.highest_modseq = modseq;
        h.flags &= !HDR_FLAG_DIRTY;
        self.write_header(&h, durable)?;
        if let Some(v) = self.view.get_mut() {
            for (i, _) in &doomed {
                if let Some(slot) = v.get_mut(*i) {
                    slot.rflags |= REC_FLAG_EXPUNGED;
                    slot.modseq = modseq;
                }
            }
        }
        // the index no longer points at them: remove the files
        for (_, r) in &doomed {
            match fs::remove_file(msg_path(dir, r.uid)) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(uid = r.uid, error = %e, "could not remove expunged message file")
                }
            }
        }
        Ok(doomed.into_iter().map(|(_, r)| Uid(r.uid)).collect())
    }

    /// Rewrites the index without expunged records; checks the new file,
    /// then renames it into place.
    pub(crate) fn repack(&mut self, dir: &Path, ctx: &Ctx) -> Result<()> {
        let durable = ctx.durable;
        let mut live: Vec<Record> = Vec::with_capacity(self.hdr.exists as usize);
        let mut horizon = self.hdr.expunge_horizon;
        let mut dropped: Vec<u32> = Vec::new();
        for r in self.view()? {
            if r.is_expunged() {
                horizon = horizon.max(r.modseq);
                dropped.push(r.uid);
            } else {
                live.push(*r);
            }
        }
        // make sure no dropped record's file can come back in a reconstruct
        for uid in &dropped {
            match fs::remove_file(msg_path(dir, *uid)) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        sync_dir(&dir.join(MSG_DIR), durable)?;
        // the cache stays as it is (its dead entries go at the next
        // reconstruct): only the index is replaced, by one atomic rename
        let mut h = self.hdr;
        h.record_count = live.len() as u32;
        h.expunge_horizon = horizon;
        let mut index = h.encode().to_vec();
        for r in &live {
            index.extend_from_slice(&r.encode());
        }
        // check what we are about to install
        Header::decode(&index, "repacked index")?;
        for (i, b) in index[HEADER_SIZE..].chunks_exact(RECORD_SIZE).enumerate() {
            Record::decode(b, "repacked index", i)?;
        }
        write_atomic(&dir.join(INDEX_FILE), &index, durable)?;
        let fresh = Inner::load(dir, ctx).map_err(Error::from)?;
        // the records just written were checked above: they are the view
        let _ = fresh.view.set(live);
        tracing::info!(mailbox = %dir.display(), dropped = dropped.len(), "repacked");
        *self = fresh;
        Ok(())
    }
}
