//! THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256 §3) and
//! THREAD=REFS (draft-ietf-morg-inthread, see [`refs`]): the threading
//! algorithms, over what the cache holds (base subject, sent
//! date, Message-ID, In-Reply-To and the `References:` field of the cached
//! header): threading never opens a message file.
//!
//! - ORDEREDSUBJECT groups the messages by base subject (see
//!   [`crate::extension::sort::base_subject`], compared under
//!   `i;ascii-casemap`); in each group the oldest message is the root and
//!   the others are its children, oldest first; threads are ordered by the
//!   sent date of their root.
//! - REFERENCES follows the seven steps of the RFC: link messages by
//!   Message-ID through `References:` (or the first message ID of
//!   `In-Reply-To:` when `References:` has none), never making a loop and
//!   giving a missing, invalid or duplicate Message-ID a unique one; gather
//!   the roots; prune dummies (referenced messages not in the answer);
//!   order the roots; merge root threads with the same base subject; order
//!   every set of siblings.
//!
//! "Sent date" is as for SORT DATE (the `Date:` field in UTC, else the
//! INTERNALDATE); ties are broken by sequence number; a dummy takes the
//! date of its first child.

use std::collections::HashMap;

pub use mailroom_core::mime::collate::{MAX_REFERENCES, message_ids};
pub use mailroom_core::mime::header_field;

use crate::response::ThreadNode;

/// The longest chain of ancestors followed when checking that a link
/// makes no loop; a link under a deeper chain is not made (treated as a
/// loop). This bounds the work for a hostile mailbox of one endless reply
/// chain at `MAX_ANCESTORS` steps per link instead of the mailbox size, and
/// the depth of the (recursive) pruning step.
pub const MAX_ANCESTORS: usize = 1024;

/// The deepest nesting of replies in an answer (see `build`).
pub const MAX_NESTING: usize = 1000;

/// What threading knows of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadMessage {
    /// The number to answer with (sequence number or UID).
    pub id: u32,
    /// Its sequence number (the tie-breaker).
    pub seq: u32,
    /// Sent date in seconds since the epoch.
    pub date: i64,
    /// Its base subject in `i;ascii-casemap` form.
    pub base_subject: Vec<u8>,
    /// Whether the subject was a reply or forward.
    pub reply: bool,
    /// Its Message-ID (without `<>`), if valid.
    pub message_id: Option<Vec<u8>>,
    /// Its references, oldest first (`References:`, else the first
    /// message ID of `In-Reply-To:`).
    pub references: Vec<Vec<u8>>,
}

/// THREAD=ORDEREDSUBJECT.
pub fn ordered_subject(messages: &[ThreadMessage]) -> Vec<ThreadNode> {
    let mut order: Vec<&ThreadMessage> = messages.iter().collect();
    order.sort_by(|a, b| {
        a.base_subject
            .cmp(&b.base_subject)
            .then(a.date.cmp(&b.date))
            .then(a.seq.cmp(&b.seq))
    });
    let mut threads: Vec<(i64, u32, ThreadNode)> = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let root = order[i];
        let mut j = i + 1;
        let mut children = Vec::new();
        while j < order.len() && order[j].base_subject == root.base_subject {
            children.push(ThreadNode {
                id: Some(order[j].id),
                children: Vec::new(),
            });
            j += 1;
        }
        threads.push((
            root.date,
            root.seq,
            ThreadNode {
                id: Some(root.id),
                children,
            },
        ));
        i = j;
    }
    threads.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    threads.into_iter().map(|(_, _, t)| t).collect()
}

/// One node of the REFERENCES work tree.
#[derive(Debug, Default)]
struct Container {
    /// Index into the messages; `None` for a dummy.
    message: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
    /// Made a root by step 4 in place of a dummy root it was the only
    /// child of (REFS orders such a thread as a dummy's).
    from_dummy: bool,
}

struct Tree<'a> {
    messages: &'a [ThreadMessage],
    nodes: Vec<Container>,
}

impl Tree<'_> {
    fn new_node(&mut self, message: Option<usize>) -> usize {
        self.nodes.push(Container {
            message,
            ..Container::default()
        });
        self.nodes.len() - 1
    }

    /// Whether `ancestor` is `node` or above it (or the chain above `node`
    /// is longer than [`MAX_ANCESTORS`], see there).
    fn is_ancestor(&self, ancestor: usize, node: usize) -> bool {
        let mut cur = Some(node);
        let mut steps = 0;
        while let Some(c) = cur {
            if c == ancestor || steps > MAX_ANCESTORS {
                return true;
            }
            cur = self.nodes[c].parent;
            steps += 1;
        }
        false
    }

    fn unlink(&mut self, child: usize) {
        if let Some(p) = self.nodes[child].parent.take() {
            self.nodes[p].children.retain(|&c| c != child);
        }
    }

    /// Makes `parent` the parent of `child` unless that makes a loop.
    fn link(&mut self, parent: usize, child: usize) {
        if self.is_ancestor(child, parent) {
            return;
        }
        self.unlink(child);
        self.nodes[child].parent = Some(parent);
        self.nodes[parent].children.push(child);
    }

    /// Sent date and sequence number a node sorts by (a dummy: its first
    /// child's, the children sorted already).
    fn key(&self, node: usize) -> (i64, u32) {
        let mut n = node;
        loop {
            if let Some(m) = self.nodes[n].message {
                let m = &self.messages[m];
                return (m.date, m.seq);
            }
            match self.nodes[n].children.first() {
                Some(&c) => n = c,
                None => return (i64::MAX, u32::MAX),
            }
        }
    }

    fn sort_siblings(&mut self, list: &mut [usize]) {
        list.sort_by_key(|&n| self.key(n));
    }

    /// Sorts every set of siblings under `node`, deepest first.
    fn sort_all(&mut self, node: usize) {
        let mut stack = vec![(node, false)];
        while let Some((n, done)) = stack.pop() {
            if done {
                let mut children = std::mem::take(&mut self.nodes[n].children);
                self.sort_siblings(&mut children);
                self.nodes[n].children = children;
            } else {
                stack.push((n, true));
                for &c in &self.nodes[n].children {
                    stack.push((c, false));
                }
            }
        }
    }

    /// Step 4 over the trees under `roots`: a dummy without children goes,
    /// a dummy with children gives way to them, except at the root level
    /// when it holds two or more. Children before parents, without
    /// recursion (a reply chain may be as long as the mailbox).
    fn prune(&mut self, roots: &[usize]) -> Vec<usize> {
        let mut order = Vec::new();
        let mut stack: Vec<usize> = roots.to_vec();
        while let Some(n) = stack.pop() {
            order.push(n);
            stack.extend(self.nodes[n].children.iter().copied());
        }
        let mut replacement: HashMap<usize, Vec<usize>> = HashMap::with_capacity(order.len());
        for &n in order.iter().rev() {
            let root_level = self.nodes[n].parent.is_none();
            let children = std::mem::take(&mut self.nodes[n].children);
            let mut kept = Vec::with_capacity(children.len());
            for c in children {
                kept.extend(replacement.remove(&c).unwrap_or_default());
            }
            for &c in &kept {
                self.nodes[c].parent = Some(n);
            }
            self.nodes[n].children = kept;
            let rep = if self.nodes[n].message.is_some() {
                vec![n]
            } else if self.nodes[n].children.is_empty() {
                Vec::new()
            } else if !root_level || self.nodes[n].children.len() == 1 {
                let promoted = std::mem::take(&mut self.nodes[n].children);
                for &c in &promoted {
                    self.nodes[c].parent = None;
                    self.nodes[c].from_dummy = root_level;
                }
                promoted
            } else {
                vec![n]
            };
            replacement.insert(n, rep);
        }
        roots
            .iter()
            .flat_map(|r| replacement.remove(r).unwrap_or_default())
            .collect()
    }

    /// The base subject and reply flag of a root (a dummy: its first child's).
    fn thread_subject(&self, node: usize) -> Option<(&[u8], bool)> {
        let m = match self.nodes[node].message {
            Some(m) => m,
            None => self.nodes[*self.nodes[node].children.first()?].message?,
        };
        let m = &self.messages[m];
        Some((&m.base_subject, m.reply))
    }

    /// The latest sent date of the messages under `node` (itself
    /// included): what THREAD=REFS orders threads by.
    fn newest(&self, node: usize) -> i64 {
        let mut newest = i64::MIN;
        let mut stack = vec![node];
        while let Some(n) = stack.pop() {
            if let Some(m) = self.nodes[n].message {
                newest = newest.max(self.messages[m].date);
            }
            stack.extend(self.nodes[n].children.iter().copied());
        }
        newest
    }

    fn is_dummy(&self, node: usize) -> bool {
        self.nodes[node].message.is_none()
    }

    /// The answer's tree under `node`. Replies nested deeper than
    /// [`MAX_NESTING`] are listed as direct replies of their ancestor at
    /// that depth, so that the tree (and any code walking it recursively)
    /// stays shallow.
    fn build(&self, node: usize) -> ThreadNode {
        // Iterative, so that a long reply chain cannot exhaust the stack.
        let mut order = Vec::new();
        let mut stack = vec![(node, 0usize)];
        let mut flattened: HashMap<usize, Vec<usize>> = HashMap::new();
        while let Some((n, depth)) = stack.pop() {
            order.push(n);
            if depth >= MAX_NESTING {
                let mut below = Vec::new();
                let mut inner: Vec<usize> = self.nodes[n].children.iter().rev().copied().collect();
                while let Some(d) = inner.pop() {
                    below.push(d);
                    inner.extend(self.nodes[d].children.iter().rev().copied());
                }
                flattened.insert(n, below);
            } else {
                stack.extend(self.nodes[n].children.iter().map(|&c| (c, depth + 1)));
            }
        }
        let leaf = |n: usize| ThreadNode {
            id: self.nodes[n].message.map(|m| self.messages[m].id),
            children: Vec::new(),
        };
        let mut built: HashMap<usize, ThreadNode> = HashMap::new();
        for &n in order.iter().rev() {
            let children = match flattened.remove(&n) {
                Some(below) => below
                    .into_iter()
                    .filter(|&d| self.nodes[d].message.is_some())
                    .map(leaf)
                    .collect(),
                None => self.nodes[n]
                    .children
                    .iter()
                    .filter_map(|c| built.remove(c))
                    .collect(),
            };
            let mut t = leaf(n);
            t.children = children;
            built.insert(n, t);
        }
        built.remove(&node).unwrap_or(ThreadNode {
            id: None,
            children: Vec::new(),
        })
    }
}

/// THREAD=REFERENCES. `messages` must be in mailbox (sequence) order.
pub fn references(messages: &[ThreadMessage]) -> Vec<ThreadNode> {
    let (mut tree, mut top) = linked(messages);
    // (5) Order the roots (a dummy by its first child, children sorted).
    for &n in &top {
        if tree.is_dummy(n) {
            let mut children = std::mem::take(&mut tree.nodes[n].children);
            tree.sort_siblings(&mut children);
            tree.nodes[n].children = children;
        }
    }
    tree.sort_siblings(&mut top);
    merged_by_subject(tree, top)
}

/// THREAD=REFS (draft-ietf-morg-inthread §4, as Dovecot implements it):
/// the threads of REFERENCES steps 1 to 4 (linked by `References:`, else
/// `In-Reply-To:`; dummies pruned), **without** merging threads by
/// subject; replies ordered by sent date as in REFERENCES, and the
/// threads by their **newest** message's sent date (a thread that got a
/// reply moves to the end), ties by the root's sequence number. A thread
/// under a dummy root (a message not in the answer), also one whose
/// dummy root had a single child and so is not shown, counts as number
/// 0; threads still tied keep the order their roots were first seen in
/// (mailbox order, a dummy where it was first referenced), as Dovecot
/// does. `messages` must be in mailbox (sequence) order.
pub fn refs(messages: &[ThreadMessage]) -> Vec<ThreadNode> {
    let (mut tree, top) = linked(messages);
    for &n in &top {
        tree.sort_all(n);
    }
    let mut keyed: Vec<((i64, u32), usize)> = top
        .iter()
        .map(|&n| {
            let node = &tree.nodes[n];
            let root_seq = match node.message {
                Some(m) if !node.from_dummy => tree.messages[m].seq,
                _ => 0,
            };
            ((tree.newest(n), root_seq), n)
        })
        .collect();
    // Stable: ties keep the order of `top`.
    keyed.sort_by_key(|(k, _)| *k);
    keyed.iter().map(|&(_, n)| tree.build(n)).collect()
}

/// REFERENCES steps 1 to 4: the work tree with messages linked and
/// dummies pruned, and its roots (unordered).
fn linked(messages: &[ThreadMessage]) -> (Tree<'_>, Vec<usize>) {
    let mut tree = Tree {
        messages,
        nodes: Vec::with_capacity(messages.len() * 2),
    };
    let mut by_id: HashMap<&[u8], usize> = HashMap::with_capacity(messages.len() * 2);
    // (1) Link.
    for (i, m) in messages.iter().enumerate() {
        let refs = &m.references[m.references.len().saturating_sub(MAX_REFERENCES)..];
        let mut prev: Option<usize> = None;
        for r in refs {
            let node = match by_id.get(r.as_slice()) {
                Some(&n) => n,
                None => {
                    let n = tree.new_node(None);
                    by_id.insert(r.as_slice(), n);
                    n
                }
            };
            if let Some(p) = prev
                && p != node
                && tree.nodes[node].parent.is_none()
            {
                tree.link(p, node);
            }
            prev = Some(node);
        }
        // This message's own container: the dummy made for its ID, or a
        // new one when the ID is missing or taken by an earlier message.
        let me = match m.message_id.as_deref() {
            Some(id) => match by_id.get(id) {
                Some(&n) if tree.nodes[n].message.is_none() => {
                    tree.nodes[n].message = Some(i);
                    n
                }
                Some(_) => tree.new_node(Some(i)),
                None => {
                    let n = tree.new_node(Some(i));
                    by_id.insert(id, n);
                    n
                }
            },
            None => tree.new_node(Some(i)),
        };
        match prev {
            Some(p) if !tree.is_ancestor(me, p) => tree.link(p, me),
            Some(_) => {}
            None => tree.unlink(me),
        }
    }
    drop(by_id);
    // (2) The root set.
    let roots: Vec<usize> = (0..tree.nodes.len())
        .filter(|&n| tree.nodes[n].parent.is_none())
        .collect();
    // (4) Prune dummies.
    let top = tree.prune(&roots);
    (tree, top)
}

/// REFERENCES steps 6 and 7 over the ordered roots `top`: threads whose
/// roots have the same base subject merged, then every set of siblings
/// ordered.
fn merged_by_subject(mut tree: Tree<'_>, top: Vec<usize>) -> Vec<ThreadNode> {
    // (6) Merge roots with the same base subject.
    let mut subjects: HashMap<Vec<u8>, usize> = HashMap::new();
    for &n in &top {
        let Some((subject, reply)) = tree.thread_subject(n) else {
            continue;
        };
        if subject.is_empty() {
            continue;
        }
        match subjects.get(subject) {
            None => {
                subjects.insert(subject.to_vec(), n);
            }
            Some(&t) => {
                let t_reply = tree.thread_subject(t).is_some_and(|(_, r)| r);
                if !tree.is_dummy(t) && (tree.is_dummy(n) || (t_reply && !reply)) {
                    subjects.insert(subject.to_vec(), n);
                }
            }
        }
    }
    let mut result: Vec<usize> = Vec::with_capacity(top.len());
    let mut replaced: HashMap<usize, usize> = HashMap::new();
    let mut removed: Vec<bool> = vec![false; tree.nodes.len()];
    for &n in &top {
        let Some((subject, reply)) = tree.thread_subject(n) else {
            continue;
        };
        if subject.is_empty() {
            continue;
        }
        let Some(&t) = subjects.get(subject) else {
            continue;
        };
        if t == n {
            continue;
        }
        let subject = subject.to_vec();
        let t_reply = tree.thread_subject(t).is_some_and(|(_, r)| r);
        if tree.is_dummy(t) && tree.is_dummy(n) {
            let children = std::mem::take(&mut tree.nodes[n].children);
            for c in children {
                tree.nodes[c].parent = None;
                tree.link(t, c);
            }
            removed[n] = true;
        } else if tree.is_dummy(t) || (reply && !t_reply) {
            tree.link(t, n);
            removed[n] = true;
        } else {
            let d = tree.new_node(None);
            removed.push(false);
            tree.link(d, t);
            tree.link(d, n);
            removed[n] = true;
            // The dummy takes the table message's place among the roots.
            let mut at = t;
            while let Some(&next) = replaced.get(&at) {
                at = next;
            }
            replaced.insert(at, d);
            subjects.insert(subject, d);
        }
    }
    for &n in &top {
        if removed[n] {
            continue;
        }
        let mut at = n;
        while let Some(&next) = replaced.get(&at) {
            at = next;
        }
        result.push(at);
    }
    // (7) Order every set of siblings, the roots too.
    for &n in &result {
        tree.sort_all(n);
    }
    tree.sort_siblings(&mut result);
    result.iter().map(|&n| tree.build(n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn msg(seq: u32, date: i64, subject: &str, id: &str, refs: &[&str]) -> ThreadMessage {
        let (base, reply) = crate::extension::sort::base_subject(subject);
        ThreadMessage {
            id: seq,
            seq,
            date,
            base_subject: base.to_ascii_uppercase().into_bytes(),
            reply,
            message_id: (!id.is_empty()).then(|| id.as_bytes().to_vec()),
            references: refs.iter().map(|r| r.as_bytes().to_vec()).collect(),
        }
    }

    fn show(threads: &[ThreadNode]) -> String {
        fn node(n: &ThreadNode, out: &mut String) {
            out.push('(');
            if let Some(id) = n.id {
                out.push_str(&id.to_string());
            }
            for c in &n.children {
                node(c, out);
            }
            out.push(')');
        }
        let mut out = String::new();
        for t in threads {
            node(t, &mut out);
        }
        out
    }

    #[test]
    fn message_ids_are_found_and_junk_skipped() {
        assert_eq!(
            message_ids(b"<a@b> (comment) <c@d>\r\n <e @f>"),
            vec![b"a@b".to_vec(), b"c@d".to_vec(), b"e@f".to_vec()]
        );
        assert_eq!(
            message_ids(b"<nope> <x@> <@y> <a<b@c>"),
            vec![b"b@c".to_vec()]
        );
        assert!(message_ids(b"").is_empty());
    }

    #[test]
    fn header_field_unfolds() {
        let h = b"Subject: x\r\nreferences: <a@b>\r\n\t<c@d>\r\nX: y\r\n\r\n";
        assert_eq!(
            message_ids(&header_field(h, "References").unwrap_or_default()),
            vec![b"a@b".to_vec(), b"c@d".to_vec()]
        );
        assert_eq!(header_field(h, "In-Reply-To"), None);
    }

    #[test]
    fn ordered_subject_groups_and_orders() {
        let m = [
            msg(1, 30, "b", "", &[]),
            msg(2, 10, "a", "", &[]),
            msg(3, 20, "Re: a", "", &[]),
            msg(4, 5, "Re: b", "", &[]),
            msg(5, 15, "Re: a", "", &[]),
        ];
        // Threads by their first (oldest) message: b (4) at 5, a (2) at 10.
        assert_eq!(show(&ordered_subject(&m)), "(4(1))(2(5)(3))");
    }

    #[test]
    fn references_links_prunes_and_merges() {
        let m = [
            msg(1, 10, "hello", "1@x", &[]),
            msg(2, 20, "Re: hello", "2@x", &["1@x"]),
            // Its parent 3@x is missing: a dummy, pruned, 4 under 2.
            msg(3, 30, "Re: hello", "4@x", &["1@x", "2@x", "3@x"]),
            msg(4, 15, "other", "5@x", &[]),
            // Same base subject as 1 but no references: merged under 1.
            msg(5, 40, "Re: hello", "6@x", &[]),
            // Two replies to a message not in the mailbox: a dummy root.
            msg(6, 50, "Re: gone", "7@x", &["gone@x"]),
            msg(7, 60, "Re: gone", "8@x", &["gone@x"]),
        ];
        assert_eq!(show(&references(&m)), "(1(2(3))(5))(4)((6)(7))");
    }

    #[test]
    fn an_endless_reply_chain_is_bounded() {
        // In mailbox order (links checked against a bounded ancestry) and
        // in reverse (each parent arrives after its child, so the chain
        // grows from the top: as deep as the mailbox, handled without
        // recursion).
        for reverse in [false, true] {
            chain(20_000, reverse);
        }
    }

    fn chain(n: u32, reverse: bool) {
        let mut m: Vec<ThreadMessage> = (1..=n)
            .map(|i| ThreadMessage {
                id: i,
                seq: i,
                date: i64::from(i),
                base_subject: b"X".to_vec(),
                reply: i > 1,
                message_id: Some(format!("{i}@x").into_bytes()),
                references: if i > 1 {
                    vec![format!("{}@x", i - 1).into_bytes()]
                } else {
                    Vec::new()
                },
            })
            .collect();
        if reverse {
            m.reverse();
            for (k, msg) in m.iter_mut().enumerate() {
                msg.seq = u32::try_from(k + 1).unwrap_or(0);
            }
        }
        let threads = references(&m);
        let mut count = 0;
        let mut stack: Vec<&ThreadNode> = threads.iter().collect();
        while let Some(t) = stack.pop() {
            count += usize::from(t.id.is_some());
            stack.extend(t.children.iter());
        }
        assert_eq!(count, m.len(), "every message is still in the answer");
    }

    proptest! {
        /// Every message appears exactly once, whatever the references
        /// (loops, self-references, duplicates included).
        #[test]
        fn references_keeps_every_message_once(
            spec in proptest::collection::vec((0u8..6, proptest::collection::vec(0u8..8, 0..4), 0i64..5, 0u8..3), 0..30)
        ) {
            let m: Vec<ThreadMessage> = spec
                .iter()
                .enumerate()
                .map(|(i, (id, refs, date, subj))| ThreadMessage {
                    id: u32::try_from(i + 1).unwrap_or(0),
                    seq: u32::try_from(i + 1).unwrap_or(0),
                    date: *date,
                    base_subject: vec![b'A' + subj],
                    reply: i % 2 == 0,
                    message_id: Some(format!("{id}@x").into_bytes()),
                    references: refs.iter().map(|r| format!("{r}@x").into_bytes()).collect(),
                })
                .collect();
            for threads in [references(&m), ordered_subject(&m)] {
                let mut seen = Vec::new();
                let mut stack: Vec<&ThreadNode> = threads.iter().collect();
                while let Some(n) = stack.pop() {
                    if let Some(id) = n.id {
                        seen.push(id);
                    } else {
                        prop_assert!(n.children.len() >= 2, "a dummy holds two or more");
                    }
                    stack.extend(n.children.iter());
                }
                seen.sort_unstable();
                let want: Vec<u32> = (1..=u32::try_from(m.len()).unwrap_or(0)).collect();
                prop_assert_eq!(seen, want);
            }
        }
    }
}
