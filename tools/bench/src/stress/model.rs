//! The model of every mailbox that all clients share, and the checks of each
//! exchange against it.
//!
//! Time is a counter (`tick`) taken under the model's lock: each command has
//! a window `[s, r]`, `s` taken just before it is written, `r` just after
//! its completion is read. What the server answered was true at some
//! instant inside the window. A message's flags are *known* once a STORE
//! completed with no other STORE (or EXPUNGE) on the message overlapping it,
//! or once an answer was read whose window no change overlapped; an answer
//! is held to the known flags only when no change touched the message since
//! before its command was sent (`authoritative`). Changes that raced with an
//! answer make the model forget the flags they touched until the next quiet
//! answer, never guess.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::io::Write;

use super::parse::in_ranges;
use super::wire::{Bytes, Code, Exchange, Fetch, Response, parse, parse_tagged};

/// What the model keeps of a message's bytes: enough to check every
/// `BODY[]`, `BINARY[]`, `BODY[HEADER]`, `BODY[TEXT]` and `RFC822.SIZE`
/// answer without keeping the bytes (a 30-minute run appends ~0.5 M
/// messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Body {
    len: u64,
    digest: u64,
    header_len: u64,
    header: u64,
    text: u64,
}

impl Body {
    /// The digest of `bytes` (SipHash with fixed keys: the same in the
    /// whole process, which is all a comparison needs).
    fn digest(bytes: &[u8]) -> u64 {
        use std::hash::Hasher;
        let mut h = std::hash::DefaultHasher::new();
        h.write(bytes);
        h.finish()
    }

    pub(crate) fn of(message: &[u8]) -> Body {
        // the header ends with the first empty line (RFC 5322), which
        // BODY[HEADER] includes (RFC 3501 6.4.5)
        let header_len = message
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(message.len(), |p| p + 4);
        Body {
            len: message.len() as u64,
            digest: Body::digest(message),
            header_len: header_len as u64,
            header: Body::digest(&message[..header_len]),
            text: Body::digest(&message[header_len..]),
        }
    }

    /// Whether `bytes` is what `section` of the message is: `Some(false)`
    /// if it is not, `None` for a section the model does not know.
    fn matches(&self, section: &str, bytes: &[u8]) -> Option<bool> {
        let (len, digest) = match section {
            "BODY[]" | "BINARY[]" | "RFC822" => (self.len, self.digest),
            "BODY[HEADER]" | "RFC822.HEADER" => (self.header_len, self.header),
            "BODY[TEXT]" | "RFC822.TEXT" => (self.len - self.header_len, self.text),
            _ => return None,
        };
        Some(bytes.len() as u64 == len && Body::digest(bytes) == digest)
    }
}

/// What one message is known to be.
#[derive(Debug, Default, Clone)]
pub(crate) struct Msg {
    /// Flags known set (true) or clear (false); `\Recent` is never here.
    known: BTreeMap<String, bool>,
    /// Whether a flag missing from `known` is known clear.
    complete: bool,
    /// STOREs and EXPUNGEs sent and not yet completed that may change it.
    inflight: u32,
    /// Count of begin and end events of those.
    events: u64,
    /// When the last of those events happened.
    last_event: u64,
    /// A client asked for `\Deleted` on it or moved it.
    pub(crate) may_expunge: bool,
    /// An EXPUNGE it may have been caught by completed (its removal may
    /// not have been reported to the client that asked).
    maybe_gone: bool,
    /// When an EXPUNGE of it was read.
    pub(crate) expunged_at: Option<u64>,
    /// APPENDUID or COPYUID told its UID (when: `created_at`).
    registered: bool,
    created_at: u64,
    /// MODSEQ: answers sent after `floor_time` must be at least `floor`.
    floor: u64,
    floor_time: u64,
    /// The read-write session that saw it `\Recent`.
    recent_owner: Option<u64>,
    /// A read-write session may have had its mailbox selected since it
    /// was added (and so may have been given its `\Recent`).
    attached_seen: bool,
    /// The last few things the model learnt of it, printed with a
    /// violation about it.
    history: VecDeque<String>,
    /// What was appended (or copied) to this UID.
    pub(crate) body: Option<Body>,
    /// Its MODSEQ read by a command no change raced with, and when that
    /// command was sent: the exact MODSEQ while no change came since.
    exact: Option<(u64, u64)>,
}

/// How many entries of a message's history are kept.
const HISTORY: usize = 12;

impl Msg {
    fn note(&mut self, what: String) {
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(what);
    }

    fn history(&self) -> String {
        self.history
            .iter()
            .map(|h| format!("\n      {h}"))
            .collect()
    }

    fn authoritative(&self, s: u64) -> bool {
        self.inflight == 0 && self.last_event < s && self.expunged_at.is_none() && !self.maybe_gone
    }

    /// Its MODSEQ as a command sent at `s` finds it, if the model knows it
    /// exactly: read by a command no change raced with, no change since.
    fn exact_modseq(&self, s: u64) -> Option<u64> {
        match self.exact {
            Some((m, t)) if self.authoritative(s) && self.last_event < t => Some(m),
            _ => None,
        }
    }

    /// What in `observed` contradicts the knowledge, if anything.
    fn mismatch(&self, observed: &BTreeSet<String>) -> Option<String> {
        let mut wrong = Vec::new();
        for (f, &set) in &self.known {
            if observed.contains(f) != set {
                wrong.push(format!(
                    "{f} should be {}",
                    if set { "set" } else { "clear" }
                ));
            }
        }
        if self.complete {
            for f in observed {
                if !self.known.contains_key(f) {
                    wrong.push(format!("{f} should be clear"));
                }
            }
        }
        (!wrong.is_empty()).then(|| wrong.join(", "))
    }

    fn adopt(&mut self, observed: &BTreeSet<String>) {
        self.known = observed.iter().map(|f| (f.clone(), true)).collect();
        self.complete = true;
    }
}

/// One mailbox of one user.
#[derive(Debug, Default)]
pub(crate) struct BoxModel {
    uidvalidity: Option<u32>,
    /// The highest UID known to have been given out, and when it was read.
    max_uid: u32,
    max_uid_time: u64,
    /// The highest HIGHESTMODSEQ read, and when.
    hms: u64,
    hms_time: u64,
    /// The highest message MODSEQ read, and when.
    msg_modseq: u64,
    msg_modseq_time: u64,
    pub(crate) msgs: BTreeMap<u32, Msg>,
    /// EXPUNGEs and MOVEs in flight, and when the last one ended.
    expunges_inflight: u32,
    pub(crate) last_expunge_end: u64,
    /// Read-write sessions with the mailbox selected (or selecting), how
    /// many times one came or went, and when last.
    rw_attached: u32,
    attach_events: u64,
    last_attach_change: u64,
    /// The messages neither expunged nor caught by an EXPUNGE or MOVE:
    /// the ones the checks go through (the others stay in `msgs` for
    /// lookups, without their history).
    alive: BTreeSet<u32>,
}

impl BoxModel {
    pub(crate) fn msg(&mut self, uid: u32) -> &mut Msg {
        match self.msgs.entry(uid) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                self.alive.insert(uid);
                e.insert(Msg::default())
            }
        }
    }

    /// `uid` is expunged, or may be: the checks leave it alone from now.
    fn retire(&mut self, uid: u32) {
        self.alive.remove(&uid);
        if let Some(m) = self.msgs.get_mut(&uid) {
            m.history = VecDeque::new();
            m.known = BTreeMap::new();
            m.complete = false;
        }
    }

    fn alive(&self) -> impl Iterator<Item = (u32, &Msg)> + '_ {
        self.alive
            .iter()
            .filter_map(|u| self.msgs.get(u).map(|m| (*u, m)))
    }

    fn saw_uid(&mut self, uid: u32, r: u64) {
        if uid > self.max_uid {
            self.max_uid = uid;
            self.max_uid_time = r;
        }
    }

    /// Whether a message may have vanished since `since`: an EXPUNGE or
    /// MOVE is in flight or ended after it.
    pub(crate) fn expunged_since(&self, since: u64) -> bool {
        self.expunges_inflight > 0 || self.last_expunge_end > since
    }

    /// Whether EXPUNGEs or MOVEs other than the `own` in flight here ran
    /// since `since`.
    pub(crate) fn expunged_by_others(&self, since: u64, own: u32) -> bool {
        self.expunges_inflight > own || self.last_expunge_end > since
    }

    /// UIDs of messages that must be in any view opened after `s`: told by
    /// APPENDUID/COPYUID before `s`, never marked for removal.
    pub(crate) fn required(&self, s: u64) -> Vec<u32> {
        self.alive()
            .filter(|(_, m)| {
                m.registered && m.created_at < s && m.expunged_at.is_none() && !m.may_expunge
            })
            .map(|(u, _)| u)
            .collect()
    }
}

/// A session's view of its selected mailbox.
#[derive(Debug, Clone)]
pub(crate) struct View {
    pub(crate) user: usize,
    pub(crate) mailbox: usize,
    pub(crate) rw: bool,
    /// By sequence number - 1; `None` until a FETCH told the UID.
    pub(crate) uids: Vec<Option<u32>>,
    /// The last untagged FLAGS.
    pub(crate) announced: HashSet<String>,
    /// When (the start of the command) EXISTS grew the view with the
    /// oldest of the messages whose UIDs it does not know yet.
    pub(crate) grown: u64,
    /// The session enabled QRESYNC (VANISHED instead of EXPUNGE).
    pub(crate) qresync: bool,
    /// The UIDVALIDITY and HIGHESTMODSEQ its SELECT answered: every
    /// change after that MODSEQ reached the view (RFC 7162 3.2.5).
    pub(crate) uidvalidity: Option<u32>,
    pub(crate) select_hms: Option<u64>,
}

impl View {
    pub(crate) fn new(user: usize, mailbox: usize, rw: bool) -> View {
        View {
            user,
            mailbox,
            rw,
            uids: Vec::new(),
            announced: HashSet::new(),
            grown: 0,
            qresync: false,
            uidvalidity: None,
            select_hms: None,
        }
    }

    /// Takes `uid` out of the view (a VANISHED): its slot if the view
    /// knows it, else a slot without a UID where it would be in UID order
    /// (any of a run of such slots: they are alike). `None` if it cannot
    /// be in the view.
    pub(crate) fn remove_uid(&mut self, uid: u32) -> Option<()> {
        if let Some(p) = self.uids.iter().position(|&u| u == Some(uid)) {
            self.uids.remove(p);
            return Some(());
        }
        let start = self
            .uids
            .iter()
            .rposition(|u| u.is_some_and(|u| u < uid))
            .map_or(0, |p| p + 1);
        let p = self.uids[start..]
            .iter()
            .take_while(|u| u.is_none_or(|u| u < uid))
            .position(Option::is_none)?;
        self.uids.remove(start + p);
        Some(())
    }

    pub(crate) fn known_uids(&self) -> Vec<u32> {
        self.uids.iter().flatten().copied().collect()
    }

    pub(crate) fn seq_of(&self, uid: u32) -> Option<usize> {
        self.uids
            .iter()
            .position(|&u| u == Some(uid))
            .map(|p| p + 1)
    }
}

/// What an exchange said, for the command-specific checks.
#[derive(Debug, Default)]
pub(crate) struct Absorbed {
    /// Per UID: the last FLAGS (without `\Recent`) and MODSEQ read.
    pub(crate) fetched: BTreeMap<u32, (Option<BTreeSet<String>>, Option<u64>)>,
    /// UIDs whose last FLAGS had `\Recent`.
    pub(crate) recent_uids: BTreeSet<u32>,
    /// Sequence numbers of the FETCH responses with a UID.
    pub(crate) fetched_seqs: BTreeSet<u32>,
    pub(crate) modseqs: Vec<(u32, u64)>,
    pub(crate) expunges: usize,
    pub(crate) exists: Option<u32>,
    pub(crate) recent: Option<u32>,
    pub(crate) flags_seen: bool,
    pub(crate) search: Option<(Vec<u32>, Option<u64>)>,
    /// The UIDs of `VANISHED (EARLIER)` responses.
    pub(crate) vanished_earlier: Vec<(u32, u32)>,
    pub(crate) codes: Vec<Code>,
    pub(crate) status: String,
}

/// Who is speaking, for violation reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Who<'a> {
    pub(crate) session: u64,
    pub(crate) user: &'a str,
    pub(crate) mailbox: &'a str,
}

/// A STORE as the model applies it.
#[derive(Debug, Clone)]
pub(crate) enum StoreOp {
    Add(Vec<String>),
    Remove(Vec<String>),
    Replace(Vec<String>),
}

impl StoreOp {
    fn flags(&self) -> &[String] {
        match self {
            StoreOp::Add(f) | StoreOp::Remove(f) | StoreOp::Replace(f) => f,
        }
    }
}

/// A STORE (or EXPUNGE) begun on one message: to end it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Begun {
    pub(crate) uid: u32,
    events: u64,
    inflight_before: u32,
    floor: u64,
}

/// All mailboxes of one server, and the violations found.
#[derive(Debug)]
pub(crate) struct Model {
    target: String,
    clock: u64,
    boxes: Vec<Vec<BoxModel>>,
    pub(crate) violations: u64,
    /// Violations printed with their exchange; past `print_limit` one line each.
    print_limit: u64,
    /// The one-line description of each violation, kept for tests.
    pub(crate) log: Vec<String>,
    /// How many times each check was made (a check that never runs
    /// proves nothing).
    pub(crate) checks: BTreeMap<&'static str, u64>,
}

impl Model {
    pub(crate) fn new(target: &str, users: usize, mailboxes: usize, print_limit: u64) -> Model {
        Model {
            target: target.to_owned(),
            clock: 0,
            boxes: (0..users)
                .map(|_| (0..mailboxes).map(|_| BoxModel::default()).collect())
                .collect(),
            violations: 0,
            print_limit,
            log: Vec::new(),
            checks: BTreeMap::new(),
        }
    }

    /// Counts `n` checks of kind `what`.
    pub(crate) fn checked(&mut self, what: &'static str, n: usize) {
        *self.checks.entry(what).or_default() += n as u64;
    }

    pub(crate) fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    pub(crate) fn boxm(&mut self, user: usize, mailbox: usize) -> &mut BoxModel {
        &mut self.boxes[user][mailbox]
    }

    /// Reports a violation with the exchange that showed it.
    pub(crate) fn violation(&mut self, who: Who<'_>, what: &str, ex: &Exchange) {
        self.violations += 1;
        let head = format!(
            "VIOLATION [{}] session {} {} {}: {what}",
            self.target, who.session, who.user, who.mailbox
        );
        self.log.push(head.clone());
        let mut out = std::io::stdout().lock();
        if self.violations <= self.print_limit {
            let _ = write!(out, "{head}\n{}", ex.transcript(40));
        } else {
            let _ = writeln!(out, "{head}");
        }
    }

    /// Reads an exchange in order: updates `view` (EXISTS, EXPUNGE, FETCH
    /// UIDs, FLAGS) and checks what needs the order (sequence numbers,
    /// keywords announced before use, `\Recent` owner, UIDVALIDITY,
    /// HIGHESTMODSEQ, UIDNEXT), then the flags and MODSEQ of each message
    /// against the model.
    pub(crate) fn absorb(
        &mut self,
        who: Who<'_>,
        mut view: Option<&mut View>,
        ex: &Exchange,
        s: u64,
        r: u64,
    ) -> Absorbed {
        let mut a = Absorbed::default();
        let mut problems: Vec<String> = Vec::new();
        let responses = ex.lines.iter().map(|l| parse(l));
        for resp in responses {
            match resp {
                Response::Exists(n) => {
                    a.exists = Some(n);
                    if let Some(v) = view.as_deref_mut() {
                        if (n as usize) < v.uids.len() {
                            problems.push(format!(
                                "EXISTS {n} below the {} messages the session has (no EXPUNGE said so)",
                                v.uids.len()
                            ));
                        } else {
                            // (the oldest message still without a UID counts)
                            if n as usize > v.uids.len() && v.uids.iter().all(Option::is_some) {
                                v.grown = s;
                            }
                            v.uids.resize(n as usize, None);
                        }
                    }
                }
                Response::Expunge(n) => {
                    a.expunges += 1;
                    let Some(v) = view.as_deref_mut() else {
                        problems.push("EXPUNGE with no mailbox selected".into());
                        continue;
                    };
                    if n == 0 || n as usize > v.uids.len() {
                        problems.push(format!(
                            "EXPUNGE {n} outside the {} messages of the session",
                            v.uids.len()
                        ));
                        continue;
                    }
                    if v.qresync {
                        problems.push("EXPUNGE to a session that enabled QRESYNC (RFC 7162 3.2.10: VANISHED instead)".into());
                    }
                    let uid = v.uids.remove(n as usize - 1);
                    if let Some(uid) = uid {
                        self.expunged(v.user, v.mailbox, uid, r, &mut problems);
                    }
                }
                Response::Vanished(false, ranges) => {
                    let Some(v) = view.as_deref_mut() else {
                        problems.push("VANISHED with no mailbox selected".into());
                        continue;
                    };
                    if !v.qresync {
                        problems.push("VANISHED to a session that did not enable QRESYNC".into());
                    }
                    let total: u64 = ranges.iter().map(|(lo, hi)| u64::from(hi - lo) + 1).sum();
                    if total > v.uids.len() as u64 {
                        problems.push(format!(
                            "VANISHED of {total} UIDs, the session has {} messages",
                            v.uids.len()
                        ));
                        continue;
                    }
                    for uid in ranges.iter().flat_map(|&(lo, hi)| lo..=hi) {
                        a.expunges += 1;
                        if v.remove_uid(uid).is_none() {
                            problems.push(format!(
                                "VANISHED UID {uid}, which the session does not have (RFC 7162 3.2.10)"
                            ));
                            continue;
                        }
                        self.expunged(v.user, v.mailbox, uid, r, &mut problems);
                    }
                }
                Response::Vanished(true, ranges) => {
                    if let Some(v) = view.as_deref() {
                        let b = &self.boxes[v.user][v.mailbox];
                        let live: Vec<u32> = b
                            .alive()
                            .filter(|(u, m)| {
                                m.registered
                                    && !m.may_expunge
                                    && !m.maybe_gone
                                    && m.expunged_at.is_none()
                                    && in_ranges(&ranges, *u)
                            })
                            .map(|(u, _)| u)
                            .collect();
                        let n = b.alive.len();
                        if !live.is_empty() {
                            problems.push(format!("VANISHED (EARLIER) names UIDs {live:?}, on which no client set \\Deleted nor moved them"));
                        }
                        *self
                            .checks
                            .entry("VANISHED (EARLIER) names no message left alive")
                            .or_default() += n as u64;
                    }
                    a.vanished_earlier.extend(ranges);
                }
                Response::Recent(n) => a.recent = Some(n),
                Response::Flags(list) => {
                    a.flags_seen = true;
                    if let Some(v) = view.as_deref_mut() {
                        v.announced = list.into_iter().collect();
                    }
                }
                Response::Fetch(f) => {
                    if let Some(v) = view.as_deref_mut() {
                        self.absorb_fetch(who, v, &f, ex, r, &mut a, &mut problems);
                    } else {
                        problems.push("FETCH with no mailbox selected".into());
                    }
                }
                Response::Search(nums, modseq) => a.search = Some((nums, modseq)),
                Response::Status(kind, code) => {
                    if kind == "BAD" {
                        problems.push("untagged BAD".into());
                    }
                    if let Some(code) = code {
                        a.codes.push(code);
                    }
                }
                Response::Continue | Response::Other(_) => {}
            }
        }
        let (status, code) = parse_tagged(&ex.tagged);
        a.status = status;
        if a.status == "BAD" {
            problems.push("BAD to a well-formed command".into());
        }
        if let Some(code) = code {
            a.codes.push(code);
        }
        if let Some(v) = view.as_deref() {
            // (only SELECT and EXAMINE tell the mailbox's HIGHESTMODSEQ:
            // elsewhere, with QRESYNC, it is the session's point to resync
            // from, which may lag behind MODSEQs already sent while
            // expunges wait, RFC 7162 3.2; Dovecot sends such on FETCH)
            let selecting = ex.sent.split(' ').nth(1).is_some_and(|c| {
                c.eq_ignore_ascii_case("SELECT") || c.eq_ignore_ascii_case("EXAMINE")
            });
            self.check_codes(v, &a, selecting, s, r, &mut problems);
            self.check_messages(who, v, &a, s, r, &mut problems);
        }
        for p in problems {
            self.violation(who, &p, ex);
        }
        a
    }

    /// `uid` was reported expunged to a session at `r`.
    fn expunged(
        &mut self,
        user: usize,
        mailbox: usize,
        uid: u32,
        r: u64,
        problems: &mut Vec<String>,
    ) {
        let m = self.boxes[user][mailbox].msg(uid);
        if m.registered {
            *self
                .checks
                .entry("EXPUNGE only of messages marked \\Deleted or moved")
                .or_default() += 1;
        }
        let m = self.boxes[user][mailbox].msg(uid);
        if m.registered && !m.may_expunge {
            problems.push(format!(
                "UID {uid} expunged, but no client set \\Deleted on it or moved it"
            ));
        }
        m.expunged_at = Some(m.expunged_at.map_or(r, |t| t.min(r)));
        self.boxes[user][mailbox].retire(uid);
    }

    #[allow(clippy::too_many_arguments)]
    fn absorb_fetch(
        &mut self,
        _who: Who<'_>,
        v: &mut View,
        f: &Fetch,
        ex: &Exchange,
        r: u64,
        a: &mut Absorbed,
        problems: &mut Vec<String>,
    ) {
        let n = f.seq as usize;
        if n == 0 || n > v.uids.len() {
            problems.push(format!(
                "FETCH for message {n}, the session has {}",
                v.uids.len()
            ));
            return;
        }
        let uid = match (v.uids[n - 1], f.uid) {
            (Some(old), Some(new)) if old != new => {
                problems.push(format!("message {n} has UID {new}, earlier told UID {old}"));
                return;
            }
            (Some(old), _) => old,
            (None, Some(new)) => {
                *self
                    .checks
                    .entry("UIDs ascend with sequence numbers")
                    .or_default() += 1;
                let below = v.uids[..n - 1].iter().flatten().max().copied();
                let above = v.uids[n..].iter().flatten().min().copied();
                if below.is_some_and(|b| b >= new) || above.is_some_and(|b| b <= new) {
                    problems.push(format!(
                        "UID {new} of message {n} out of order (UIDs below it up to {below:?}, above it from {above:?})"
                    ));
                    return;
                }
                v.uids[n - 1] = Some(new);
                new
            }
            (None, None) => return,
        };
        a.fetched_seqs.insert(f.seq);
        if let Some(flags) = &f.flags {
            let n = flags.iter().filter(|f| !f.starts_with('\\')).count();
            *self
                .checks
                .entry("keywords announced in FLAGS before use")
                .or_default() += n as u64;
        }
        let b = &mut self.boxes[v.user][v.mailbox];
        b.saw_uid(uid, r);
        if f.size.is_some() || !f.sections.is_empty() {
            let (body, gone) = b.msgs.get(&uid).map_or((None, false), |m| {
                (
                    m.body,
                    m.may_expunge || m.maybe_gone || m.expunged_at.is_some(),
                )
            });
            let (checked, wrong) = check_body(body, gone, f, ex);
            *self
                .checks
                .entry("BODY[]/BINARY[]/HEADER/TEXT/RFC822.SIZE as appended")
                .or_default() += checked;
            for w in wrong {
                problems.push(format!("UID {uid} {w}"));
            }
        }
        let b = &mut self.boxes[v.user][v.mailbox];
        let entry = a.fetched.entry(uid).or_default();
        if let Some(flags) = &f.flags {
            for k in flags.iter().filter(|f| !f.starts_with('\\')) {
                if !v.announced.contains(k) {
                    problems.push(format!(
                        "keyword {k} in FETCH FLAGS of UID {uid} before an untagged FLAGS announced it"
                    ));
                }
            }
            let recent = flags.iter().any(|f| f.eq_ignore_ascii_case("\\Recent"));
            if recent {
                a.recent_uids.insert(uid);
                if v.rw {
                    *self
                        .checks
                        .entry("\\Recent in one session at most")
                        .or_default() += 1;
                    let m = b.msg(uid);
                    match m.recent_owner {
                        Some(o) if o != _who.session => problems.push(format!(
                            "UID {uid} \\Recent in this session and in session {o} before"
                        )),
                        _ => m.recent_owner = Some(_who.session),
                    }
                }
            } else {
                a.recent_uids.remove(&uid);
            }
            entry.0 = Some(
                flags
                    .iter()
                    .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
                    .cloned()
                    .collect(),
            );
        }
        if let Some(m) = f.modseq {
            entry.1 = Some(m);
            a.modseqs.push((uid, m));
        }
    }

    fn check_codes(
        &mut self,
        v: &View,
        a: &Absorbed,
        selecting: bool,
        s: u64,
        r: u64,
        problems: &mut Vec<String>,
    ) {
        for c in &a.codes {
            let what = match c {
                Code::UidValidity(_) => "UIDVALIDITY unchanged",
                Code::UidNext(_) => "UIDNEXT above every UID given out",
                Code::HighestModseq(_) if selecting => {
                    "HIGHESTMODSEQ never down nor below a message's"
                }
                _ => continue,
            };
            *self.checks.entry(what).or_default() += 1;
        }
        let b = &mut self.boxes[v.user][v.mailbox];
        for c in &a.codes {
            match c {
                Code::UidValidity(u) => match b.uidvalidity {
                    Some(old) if old != *u => {
                        problems.push(format!("UIDVALIDITY {u}, was {old}"));
                    }
                    _ => b.uidvalidity = Some(*u),
                },
                Code::UidNext(n) if b.max_uid_time < s && *n <= b.max_uid => {
                    problems.push(format!(
                        "UIDNEXT {n}, but UID {} was given out before the command",
                        b.max_uid
                    ));
                }
                Code::HighestModseq(m) => {
                    if selecting && b.hms_time < s && *m < b.hms {
                        problems.push(format!(
                            "HIGHESTMODSEQ {m} below the {} read before the command",
                            b.hms
                        ));
                    }
                    if selecting && b.msg_modseq_time < s && *m < b.msg_modseq {
                        problems.push(format!(
                            "HIGHESTMODSEQ {m} below a message MODSEQ {} read before the command",
                            b.msg_modseq
                        ));
                    }
                    if *m > b.hms {
                        b.hms = *m;
                        b.hms_time = r;
                    }
                }
                _ => {}
            }
        }
    }

    fn check_messages(
        &mut self,
        who: Who<'_>,
        v: &View,
        a: &Absorbed,
        s: u64,
        r: u64,
        problems: &mut Vec<String>,
    ) {
        let (mut flag_checks, mut modseq_checks) = (0, 0);
        let b = &mut self.boxes[v.user][v.mailbox];
        for (&uid, (flags, modseq)) in &a.fetched {
            let m = b.msgs.entry(uid).or_default();
            if let Some(flags) = flags
                && m.authoritative(s)
            {
                flag_checks += 1;
                let shown = flags.iter().cloned().collect::<Vec<_>>().join(" ");
                match m.mismatch(flags) {
                    Some(why) => problems.push(format!(
                        "UID {uid} FLAGS ({shown}) but no STORE raced with this command and the last said: {why}; the model's history of it:{}",
                        m.history()
                    )),
                    None => {
                        if !m.complete || m.known.iter().any(|(f, v)| *v != flags.contains(f)) {
                            m.note(format!("t{s}-{r} session {} read ({shown}), adopted", who.session));
                        }
                        m.adopt(flags);
                    }
                }
            }
            if let Some(ms) = *modseq
                && m.expunged_at.is_none()
                && !m.maybe_gone
            {
                if m.floor_time < s {
                    modseq_checks += 1;
                }
                if m.floor_time < s && ms < m.floor {
                    problems.push(format!(
                        "UID {uid} MODSEQ {ms}, but {} was read (or a flag change completed) before this command",
                        m.floor
                    ));
                }
                if ms > m.floor {
                    m.floor = ms;
                    m.floor_time = r;
                }
                if m.authoritative(s) {
                    m.exact = Some((ms, s));
                }
                if ms > b.msg_modseq {
                    b.msg_modseq = ms;
                    b.msg_modseq_time = r;
                }
            }
        }
        self.checked("FLAGS as the last STORE left them", flag_checks);
        self.checked("a message's MODSEQ never down", modseq_checks);
    }

    /// `uid`'s MODSEQ for a command sent at `s`: exactly (if known) and its
    /// floor (what it is known to have reached before `s`, 0 if nothing).
    pub(crate) fn modseq_of(
        &mut self,
        user: usize,
        mailbox: usize,
        uid: u32,
        s: u64,
    ) -> (Option<u64>, u64) {
        match self.boxes[user][mailbox].msgs.get(&uid) {
            Some(m) => (
                m.exact_modseq(s),
                if m.floor_time < s { m.floor } else { 0 },
            ),
            None => (None, 0),
        }
    }

    /// The body appended (or copied) to `uid`, if the model knows it.
    pub(crate) fn body(&mut self, user: usize, mailbox: usize, uid: u32) -> Option<Body> {
        self.boxes[user][mailbox]
            .msgs
            .get(&uid)
            .and_then(|m| m.body)
    }

    /// The MODSEQ each of `uids` is known to have reached before `s`.
    pub(crate) fn floors(&mut self, user: usize, mailbox: usize, s: u64) -> BTreeMap<u32, u64> {
        self.boxes[user][mailbox]
            .alive()
            .filter(|(_, m)| {
                m.floor_time < s && m.floor > 0 && m.expunged_at.is_none() && !m.may_expunge
            })
            .map(|(u, m)| (u, m.floor))
            .collect()
    }

    /// Whether the model may hold the server to `uid`'s flag `flag` in a
    /// command sent at `s` and read at `r`: `Some(set)` if so.
    pub(crate) fn known_flag(
        &mut self,
        user: usize,
        mailbox: usize,
        uid: u32,
        flag: &str,
        s: u64,
    ) -> Option<bool> {
        let m = self.boxes[user][mailbox].msgs.get(&uid)?;
        if !m.authoritative(s) {
            return None;
        }
        match m.known.get(flag) {
            Some(&v) => Some(v),
            None if m.complete => Some(false),
            None => None,
        }
    }

    /// A STORE (or an EXPUNGE, `op` None) is about to be sent at `s`.
    pub(crate) fn store_begin(
        &mut self,
        user: usize,
        mailbox: usize,
        uids: &[u32],
        op: Option<&StoreOp>,
        s: u64,
    ) -> Vec<Begun> {
        let b = &mut self.boxes[user][mailbox];
        uids.iter()
            .map(|&uid| {
                let m = b.msg(uid);
                let begun = Begun {
                    uid,
                    events: m.events + 1,
                    inflight_before: m.inflight,
                    floor: m.floor,
                };
                m.inflight += 1;
                m.events += 1;
                m.last_event = s;
                m.note(format!(
                    "t{s} {} sent",
                    op.map_or("EXPUNGE/MOVE".into(), |o| format!("{o:?}"))
                ));
                if let Some(op) = op
                    && !matches!(op, StoreOp::Remove(_))
                    && op
                        .flags()
                        .iter()
                        .any(|f| f.eq_ignore_ascii_case("\\Deleted"))
                {
                    m.may_expunge = true;
                }
                begun
            })
            .collect()
    }

    /// The messages an EXPUNGE sent at `s` may remove.
    pub(crate) fn expunge_begin(&mut self, user: usize, mailbox: usize, s: u64) -> Vec<Begun> {
        let uids: Vec<u32> = self.boxes[user][mailbox]
            .alive()
            .filter(|(_, m)| m.may_expunge && m.expunged_at.is_none())
            .map(|(u, _)| u)
            .collect();
        self.boxes[user][mailbox].expunges_inflight += 1;
        self.store_begin(user, mailbox, &uids, None, s)
    }

    /// A MOVE of `uids` is about to be sent at `s`.
    pub(crate) fn move_begin(
        &mut self,
        user: usize,
        mailbox: usize,
        uids: &[u32],
        s: u64,
    ) -> Vec<Begun> {
        self.boxes[user][mailbox].expunges_inflight += 1;
        self.store_begin(
            user,
            mailbox,
            uids,
            Some(&StoreOp::Add(vec!["\\Deleted".into()])),
            s,
        )
    }

    /// The EXPUNGE or MOVE begun with `begun` ended at `r`; returns the
    /// UIDs no other change touched meanwhile.
    pub(crate) fn expunge_end(
        &mut self,
        user: usize,
        mailbox: usize,
        begun: &[Begun],
        ok: bool,
        r: u64,
    ) -> Vec<u32> {
        let b = &mut self.boxes[user][mailbox];
        b.expunges_inflight = b.expunges_inflight.saturating_sub(1);
        b.last_expunge_end = r;
        self.store_end(user, mailbox, begun, None, &[], ok, r)
            .into_iter()
            .map(|(u, _)| u)
            .collect()
    }

    /// A STORE (`op`) or EXPUNGE (`op` None) begun with `begun` ended at
    /// `r`, `ok` if it completed OK; `skipped`: the ranges of UIDs its
    /// `[MODIFIED]` said it left alone (UNCHANGEDSINCE). Returns the UIDs
    /// it was alone on, each with whether it surely changed their flags.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn store_end(
        &mut self,
        user: usize,
        mailbox: usize,
        begun: &[Begun],
        op: Option<&StoreOp>,
        skipped: &[(u32, u32)],
        ok: bool,
        r: u64,
    ) -> Vec<(u32, bool)> {
        let b = &mut self.boxes[user][mailbox];
        let mut alone_on = Vec::new();
        let mut retired = Vec::new();
        for g in begun {
            let m = b.msg(g.uid);
            let alone = ok && g.inflight_before == 0 && m.events == g.events;
            m.inflight = m.inflight.saturating_sub(1);
            m.events += 1;
            m.last_event = r;
            m.note(format!(
                "t{r} {} ended{}",
                op.map_or("EXPUNGE/MOVE".into(), |o| format!("{o:?}")),
                if alone { ", alone" } else { "" }
            ));
            let Some(op) = op else {
                m.maybe_gone = true;
                retired.push(g.uid);
                if alone {
                    alone_on.push((g.uid, false));
                }
                continue;
            };
            if in_ranges(skipped, g.uid) {
                // (it did not change the flags; a change that raced with it
                // forgets what it touched by itself)
                if alone {
                    alone_on.push((g.uid, false));
                }
                continue;
            }
            let before = (m.known.clone(), m.complete);
            match (op, alone) {
                (StoreOp::Replace(f), true) => {
                    m.known = f.iter().map(|f| (f.clone(), true)).collect();
                    m.complete = true;
                }
                (StoreOp::Add(f), true) => {
                    for f in f {
                        m.known.insert(f.clone(), true);
                    }
                }
                (StoreOp::Remove(f), true) => {
                    for f in f {
                        m.known.insert(f.clone(), false);
                    }
                }
                (StoreOp::Replace(_), false) => {
                    m.known.clear();
                    m.complete = false;
                }
                (StoreOp::Add(f) | StoreOp::Remove(f), false) => {
                    // a flag may now be set that a complete knowledge says
                    // is clear: forget completeness, and the flags touched
                    for f in f {
                        m.known.remove(f);
                    }
                    m.complete = false;
                }
            }
            // (a message an EXPUNGE may have taken is changed by no STORE)
            let changed = alone && !m.maybe_gone && changed(&before.0, before.1, &m.known);
            if alone {
                alone_on.push((g.uid, changed));
            }
            if changed {
                let floor = g.floor + 1;
                if floor > m.floor {
                    m.floor = floor;
                    m.floor_time = r;
                }
            }
        }
        for uid in retired {
            b.retire(uid);
        }
        alone_on
    }

    /// APPENDUID or COPYUID told of `uid`, new in `mailbox`, at `r`;
    /// `flags` are its flags if known. Checks the UID is above every UID
    /// given out before the command was sent (`s`) and the UIDVALIDITY.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn register(
        &mut self,
        user: usize,
        mailbox: usize,
        uidvalidity: u32,
        uid: u32,
        flags: Option<BTreeSet<String>>,
        body: Option<Body>,
        may_expunge: bool,
        s: u64,
        r: u64,
    ) -> Vec<String> {
        let b = &mut self.boxes[user][mailbox];
        let mut problems = Vec::new();
        match b.uidvalidity {
            Some(v) if v != uidvalidity => {
                problems.push(format!(
                    "UIDVALIDITY {uidvalidity} in the UID code, the mailbox has {v}"
                ));
            }
            Some(_) => {}
            None => b.uidvalidity = Some(uidvalidity),
        }
        *self
            .checks
            .entry("APPENDUID/COPYUID above every UID given out")
            .or_default() += 1;
        let b = &mut self.boxes[user][mailbox];
        if b.max_uid_time < s && uid <= b.max_uid {
            problems.push(format!(
                "new UID {uid} not above UID {} given out before the command",
                b.max_uid
            ));
        }
        if b.msgs.get(&uid).is_some_and(|m| m.registered) {
            problems.push(format!("UID {uid} given to a second message"));
        }
        b.saw_uid(uid, r);
        let attached = b.rw_attached > 0 || b.last_attach_change >= s;
        let m = b.msg(uid);
        m.registered = true;
        m.created_at = r;
        m.body = body;
        m.attached_seen |= attached;
        m.note(format!("t{s}-{r} created with flags {flags:?}"));
        m.may_expunge |= may_expunge;
        if m.events == 0
            && let Some(f) = flags
        {
            m.adopt(&f);
        }
        problems
    }

    /// A read-write SELECT of the mailbox is about to be sent at `s`.
    /// Returns the messages no read-write session can have seen (so this
    /// one must get their `\Recent`), and the attach count to check that
    /// no other came meanwhile.
    pub(crate) fn attach(&mut self, user: usize, mailbox: usize, s: u64) -> (Vec<u32>, u64) {
        let b = &mut self.boxes[user][mailbox];
        b.rw_attached += 1;
        b.attach_events += 1;
        b.last_attach_change = s;
        let mut unseen = Vec::new();
        let alive: Vec<u32> = b.alive.iter().copied().collect();
        for uid in alive {
            let m = b.msg(uid);
            if m.registered && m.created_at < s && !m.attached_seen {
                unseen.push(uid);
            }
            m.attached_seen = true;
        }
        (unseen, b.attach_events)
    }

    /// A read-write session let go of the mailbox at `t`.
    pub(crate) fn detach(&mut self, user: usize, mailbox: usize, t: u64) {
        let b = &mut self.boxes[user][mailbox];
        b.rw_attached = b.rw_attached.saturating_sub(1);
        b.attach_events += 1;
        b.last_attach_change = t;
    }

    /// Whether no read-write session came or went since `attach` returned
    /// `events`.
    pub(crate) fn attach_alone(&mut self, user: usize, mailbox: usize, events: u64) -> bool {
        self.boxes[user][mailbox].attach_events == events
    }

    /// The flags of `uid` if they are known in full and no change is in
    /// flight (for a copy's flags).
    pub(crate) fn full_flags(
        &mut self,
        user: usize,
        mailbox: usize,
        uid: u32,
        s: u64,
    ) -> Option<BTreeSet<String>> {
        let m = self.boxes[user][mailbox].msgs.get(&uid)?;
        (m.authoritative(s) && m.complete).then(|| {
            m.known
                .iter()
                .filter(|(_, v)| **v)
                .map(|(k, _)| k.clone())
                .collect()
        })
    }

    pub(crate) fn may_expunge(&mut self, user: usize, mailbox: usize, uid: u32) -> bool {
        self.boxes[user][mailbox]
            .msgs
            .get(&uid)
            .is_some_and(|m| m.may_expunge || m.maybe_gone || m.expunged_at.is_some())
    }

    /// Whether a copy of `uid` may have `\Deleted`: its source may, or
    /// the model has not been told where the source came from yet.
    pub(crate) fn copy_may_expunge(&mut self, user: usize, mailbox: usize, uid: u32) -> bool {
        self.boxes[user][mailbox].msgs.get(&uid).is_none_or(|m| {
            !m.registered || m.may_expunge || m.maybe_gone || m.expunged_at.is_some()
        })
    }
}

fn changed(
    before: &BTreeMap<String, bool>,
    complete: bool,
    after: &BTreeMap<String, bool>,
) -> bool {
    after.iter().any(|(f, &v)| match before.get(f) {
        Some(&b) => b != v,
        None => complete && v,
    })
}

/// Checks the size and sections a FETCH gave against what was appended:
/// how many checks were made, and what was wrong. A message that may be
/// expunged may also be answered empty: NIL and size 0 (RFC 2180 4.1
/// leaves servers room in answering for an expunged message a session
/// still shows; Dovecot
/// does so, and reports the VANISHED or EXPUNGE after).
fn check_body(body: Option<Body>, gone: bool, f: &Fetch, ex: &Exchange) -> (u64, Vec<String>) {
    let Some(body) = body else {
        return (0, Vec::new());
    };
    let (mut checked, mut wrong) = (0, Vec::new());
    if let Some(n) = f.size {
        checked += 1;
        if n != body.len && !(gone && n == 0) {
            wrong.push(format!(
                "RFC822.SIZE {n}, but {} bytes were appended",
                body.len
            ));
        }
    }
    for (section, value) in &f.sections {
        let bytes: &[u8] = match value {
            Bytes::Literal(i) => match ex.literals.get(*i) {
                Some(l) => l,
                None => {
                    wrong.push(format!("{section} names literal #{i}, not read"));
                    continue;
                }
            },
            Bytes::Quoted(q) => q.as_bytes(),
            Bytes::Nil => b"",
        };
        match body.matches(section, bytes) {
            Some(true) => checked += 1,
            Some(false) if gone && bytes.is_empty() => checked += 1,
            Some(false) => {
                checked += 1;
                wrong.push(format!(
                    "{section} is {} bytes that differ from what was appended to it ({} bytes, header {})",
                    bytes.len(),
                    body.len,
                    body.header_len
                ));
            }
            None => {}
        }
    }
    (checked, wrong)
}
