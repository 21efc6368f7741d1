//! Untagged data responses (`* ...`).

use super::wire::Out;
use super::{Data, ListKind, ThreadNode};
use crate::command::StatusItem;

/// The name of a STATUS item.
pub(crate) fn status_item_name(i: StatusItem) -> &'static str {
    match i {
        StatusItem::Messages => "MESSAGES",
        StatusItem::Recent => "RECENT",
        StatusItem::UidNext => "UIDNEXT",
        StatusItem::UidValidity => "UIDVALIDITY",
        StatusItem::Unseen => "UNSEEN",
        StatusItem::HighestModSeq => "HIGHESTMODSEQ",
        StatusItem::Size => "SIZE",
        StatusItem::Deleted => "DELETED",
        StatusItem::AppendLimit => "APPENDLIMIT",
        StatusItem::MailboxId => "MAILBOXID",
    }
}

fn atom_list(o: &mut Out<'_>, items: &[String]) {
    o.raw(b"(");
    for (i, a) in items.iter().enumerate() {
        if i > 0 {
            o.sp();
        }
        o.atom(a);
    }
    o.raw(b")");
}

fn namespace_list(o: &mut Out<'_>, list: &[(String, char)]) {
    if list.is_empty() {
        o.raw(b"NIL");
        return;
    }
    o.raw(b"(");
    for (prefix, delim) in list {
        o.raw(b"(");
        o.mailbox(prefix);
        o.sp();
        delimiter(o, Some(*delim));
        o.raw(b")");
    }
    o.raw(b")");
}

fn delimiter(o: &mut Out<'_>, d: Option<char>) {
    match d {
        None => o.raw(b"NIL"),
        Some(c) => {
            let mut b = [0u8; 4];
            let s = c.encode_utf8(&mut b);
            super::wire::quote_into(&mut o.buf, s.as_bytes());
        }
    }
}

/// `"*" SP` and the data.
/// The deepest THREAD nesting written; deeper replies are written as
/// siblings at this depth (a bound on recursion for hostile References).
const MAX_THREAD_DEPTH: usize = 256;

/// `thread-members [SP thread-nested]` of RFC 5256 §4: a chain of single
/// replies as numbers, a fork as a parenthesised list per branch; a dummy
/// contributes only its branches.
fn thread_members(o: &mut Out<'_>, node: &ThreadNode, depth: usize) {
    let mut node = node;
    let mut depth = depth;
    let mut first = true;
    loop {
        if let Some(id) = node.id {
            if !first {
                o.sp();
            }
            o.uint(id);
            o.spill();
            first = false;
        }
        match node.children.as_slice() {
            [] => return,
            [only] if node.id.is_some() && depth < MAX_THREAD_DEPTH => {
                node = only;
                depth += 1;
            }
            children => {
                if !first {
                    o.sp();
                }
                for child in children {
                    o.raw(b"(");
                    if depth < MAX_THREAD_DEPTH {
                        thread_members(o, child, depth + 1);
                    } else {
                        flat(o, child, &mut true);
                    }
                    o.raw(b")");
                }
                return;
            }
        }
    }
}

/// Every id under `node`, space-separated, without nesting.
fn flat(o: &mut Out<'_>, node: &ThreadNode, first: &mut bool) {
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        if let Some(id) = n.id {
            if !*first {
                o.sp();
            }
            o.uint(id);
            *first = false;
        }
        stack.extend(n.children.iter().rev());
    }
}

/// The items of a FETCH or UIDFETCH response and its closing parenthesis.
fn fetch_items(o: &mut Out<'_>, items: &[super::FetchItem]) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            o.sp();
        }
        super::fetch::fetch_item(o, item);
    }
    o.raw(b")");
}

pub(super) fn data(o: &mut Out<'_>, d: &Data) {
    o.raw(b"* ");
    match d {
        Data::Capability(caps) => {
            o.raw(b"CAPABILITY");
            for c in caps {
                o.sp();
                o.atom(c);
            }
        }
        Data::List {
            kind,
            attributes,
            delimiter: delim,
            name,
            child_info,
        } => {
            o.raw(match kind {
                ListKind::List => b"LIST ",
                ListKind::Lsub => b"LSUB ",
                ListKind::Xlist => b"XLIST ",
            });
            atom_list(o, attributes);
            o.sp();
            delimiter(o, *delim);
            o.sp();
            o.mailbox(name);
            if !child_info.is_empty() {
                o.raw(b" (\"CHILDINFO\" (");
                for (i, option) in child_info.iter().enumerate() {
                    if i > 0 {
                        o.sp();
                    }
                    o.string(option.as_bytes());
                }
                o.raw(b"))");
            }
        }
        Data::ListRenamed {
            attributes,
            delimiter: delim,
            name,
            old_name,
        } => {
            o.raw(b"LIST ");
            atom_list(o, attributes);
            o.sp();
            delimiter(o, *delim);
            o.sp();
            o.mailbox(name);
            o.raw(b" (\"OLDNAME\" (");
            o.mailbox(old_name);
            o.raw(b"))");
        }
        Data::Status {
            mailbox,
            items,
            mailbox_id,
        } => {
            o.raw(b"STATUS ");
            o.mailbox(mailbox);
            o.raw(b" (");
            for (i, (item, v)) in items.iter().enumerate() {
                if i > 0 {
                    o.sp();
                }
                o.str(status_item_name(*item));
                o.sp();
                match (item, mailbox_id) {
                    (StatusItem::MailboxId, Some(id)) => {
                        o.raw(b"(");
                        o.str(&crate::extension::objectid::mailbox_id(id));
                        o.raw(b")");
                    }
                    (StatusItem::MailboxId, None) => o.raw(b"NIL"),
                    _ => o.num(v),
                }
            }
            o.raw(b")");
        }
        Data::Search { ids, modseq } | Data::Sort { ids, modseq } => {
            o.raw(if matches!(d, Data::Sort { .. }) {
                b"SORT"
            } else {
                b"SEARCH"
            });
            o.sp_uints(ids);
            if let Some(m) = modseq {
                o.raw(b" (MODSEQ ");
                o.num(m.0);
                o.raw(b")");
            }
        }
        Data::Thread(threads) => {
            o.raw(b"THREAD");
            if !threads.is_empty() {
                o.sp();
            }
            for t in threads {
                o.raw(b"(");
                thread_members(o, t, 0);
                o.raw(b")");
            }
        }
        Data::ESearch {
            tag,
            uid,
            min,
            max,
            count,
            all,
            modseq,
            partial,
        } => {
            o.raw(b"ESEARCH (TAG ");
            o.string(tag.as_bytes());
            o.raw(b")");
            if *uid {
                o.raw(b" UID");
            }
            if let Some(n) = min {
                o.raw(b" MIN ");
                o.num(n);
            }
            if let Some(n) = max {
                o.raw(b" MAX ");
                o.num(n);
            }
            if let Some(n) = count {
                o.raw(b" COUNT ");
                o.num(n);
            }
            if let Some(set) = all {
                o.raw(b" ALL ");
                o.num(set);
            }
            if let Some((range, set)) = partial {
                o.raw(b" PARTIAL (");
                o.str(&crate::extension::context::range_text(range));
                o.sp();
                match set {
                    Some(set) => o.num(set),
                    None => o.raw(b"NIL"),
                }
                o.raw(b")");
            }
            if let Some(m) = modseq {
                o.raw(b" MODSEQ ");
                o.num(m.0);
            }
        }
        Data::ESearchUpdate {
            tag,
            uid,
            remove,
            add,
        } => {
            o.raw(b"ESEARCH (TAG ");
            o.string(tag.as_bytes());
            o.raw(b")");
            if *uid {
                o.raw(b" UID");
            }
            for (name, pairs) in [(&b" REMOVEFROM ("[..], remove), (&b" ADDTO ("[..], add)] {
                if pairs.is_empty() {
                    continue;
                }
                o.raw(name);
                for (i, (pos, set)) in pairs.iter().enumerate() {
                    if i > 0 {
                        o.sp();
                    }
                    o.uint(*pos);
                    o.sp();
                    o.num(set);
                }
                o.raw(b")");
            }
        }
        Data::Flags(flags) => {
            o.raw(b"FLAGS ");
            atom_list(o, flags);
        }
        Data::Exists(n) => {
            o.uint(*n);
            o.raw(b" EXISTS");
        }
        Data::Recent(n) => {
            o.uint(*n);
            o.raw(b" RECENT");
        }
        Data::Expunge(n) => {
            o.uint(*n);
            o.raw(b" EXPUNGE");
        }
        Data::Vanished { earlier, uids } => {
            o.raw(b"VANISHED ");
            if *earlier {
                o.raw(b"(EARLIER) ");
            }
            o.num(uids);
        }
        Data::Fetch { seq, items } => {
            o.uint(*seq);
            o.raw(b" FETCH (");
            fetch_items(o, items);
        }
        Data::UidFetch { uid, items } => {
            o.uint(uid.0);
            o.raw(b" UIDFETCH (");
            fetch_items(o, items);
        }
        Data::Namespace {
            personal,
            other,
            shared,
        } => {
            o.raw(b"NAMESPACE ");
            namespace_list(o, personal);
            o.sp();
            namespace_list(o, other);
            o.sp();
            namespace_list(o, shared);
        }
        Data::Id(None) => o.raw(b"ID NIL"),
        Data::Id(Some(pairs)) => {
            if pairs.is_empty() {
                o.raw(b"ID NIL");
                return;
            }
            o.raw(b"ID (");
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    o.sp();
                }
                o.string(k.as_bytes());
                o.sp();
                o.string(v.as_bytes());
            }
            o.raw(b")");
        }
        Data::Enabled(caps) => {
            o.raw(b"ENABLED");
            for c in caps {
                o.sp();
                o.atom(c);
            }
        }
        Data::Acl { mailbox, entries } => {
            o.raw(b"ACL ");
            o.mailbox(mailbox);
            for (id, rights) in entries {
                o.sp();
                o.astring(id.as_bytes());
                o.sp();
                o.astring(rights.as_bytes());
            }
        }
        Data::ListRights {
            mailbox,
            identifier,
            required,
            optional,
        } => {
            o.raw(b"LISTRIGHTS ");
            o.mailbox(mailbox);
            o.sp();
            o.astring(identifier.as_bytes());
            o.sp();
            o.astring(required.as_bytes());
            for r in optional {
                o.sp();
                o.astring(r.as_bytes());
            }
        }
        Data::MyRights { mailbox, rights } => {
            o.raw(b"MYRIGHTS ");
            o.mailbox(mailbox);
            o.sp();
            o.astring(rights.as_bytes());
        }
        Data::Quota { root, resources } => {
            o.raw(b"QUOTA ");
            o.astring(root.as_bytes());
            o.raw(b" (");
            for (i, (name, usage, limit)) in resources.iter().enumerate() {
                if i > 0 {
                    o.sp();
                }
                o.atom(name);
                o.sp();
                o.num(usage);
                o.sp();
                o.num(limit);
            }
            o.raw(b")");
        }
        Data::QuotaRoot { mailbox, roots } => {
            o.raw(b"QUOTAROOT ");
            o.mailbox(mailbox);
            for r in roots {
                o.sp();
                o.astring(r.as_bytes());
            }
        }
    }
}
