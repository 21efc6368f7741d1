//! A small test-only formatter: commands back to wire bytes, so generated
//! commands can be round-tripped through the decoder.

use mailroom_core::{Flag, InternalDate, SeqSet};
use mailroom_imap::command::*;

/// How strings are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Atoms and quoted strings where possible, `{n+}` otherwise.
    Plain,
    /// Every string that may be a literal is a non-synchronising literal.
    LiteralPlus,
    /// Every string that may be a literal is a synchronising literal.
    LiteralSync,
}

/// Formats one tagged command, CRLF included.
pub fn format_request(tag: &str, cmd: &Command, style: Style) -> Vec<u8> {
    let mut w = W {
        out: Vec::new(),
        style,
        raw_name: None,
    };
    w.raw(tag);
    w.raw(" ");
    w.command(cmd);
    w.raw("\r\n");
    w.out
}

struct W {
    out: Vec<u8>,
    style: Style,
    /// Inside an `InvalidMailboxName`: the name that is not modified UTF-7,
    /// written as it was sent rather than encoded.
    raw_name: Option<String>,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_atom_char(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && !b"(){%*\"\\]".contains(&b)
}

impl W {
    fn raw(&mut self, s: &str) {
        self.out.extend_from_slice(s.as_bytes());
    }

    fn literal(&mut self, s: &[u8], sync: bool) {
        let marker = if sync {
            format!("{{{}}}\r\n", s.len())
        } else {
            format!("{{{}+}}\r\n", s.len())
        };
        self.raw(&marker);
        self.out.extend_from_slice(s);
    }

    /// A string (quoted or literal per style).
    fn string(&mut self, s: &[u8]) {
        let quotable = s
            .iter()
            .all(|&b| (0x01..=0x7f).contains(&b) && b != b'\r' && b != b'\n');
        match self.style {
            Style::Plain if quotable => {
                self.out.push(b'"');
                for &b in s {
                    if b == b'"' || b == b'\\' {
                        self.out.push(b'\\');
                    }
                    self.out.push(b);
                }
                self.out.push(b'"');
            }
            Style::LiteralSync => self.literal(s, true),
            _ => self.literal(s, false),
        }
    }

    fn astring(&mut self, s: &[u8]) {
        if self.style == Style::Plain
            && !s.is_empty()
            && s.iter().all(|&b| is_atom_char(b) || b == b']')
            && !s.eq_ignore_ascii_case(b"NIL")
        {
            self.out.extend_from_slice(s);
        } else {
            self.string(s);
        }
    }

    /// A mailbox name as sent: modified UTF-7, unless it is the raw name of
    /// an `InvalidMailboxName`.
    fn encoded(&self, name: &str) -> String {
        if self.raw_name.as_deref() == Some(name) {
            name.to_owned()
        } else {
            mailroom_imap::utf7::encode(name)
        }
    }

    fn mailbox(&mut self, name: &str) {
        let enc = self.encoded(name);
        self.astring(enc.as_bytes());
    }

    fn list_mailbox(&mut self, name: &str) {
        let enc = self.encoded(name);
        let b = enc.as_bytes();
        if self.style == Style::Plain
            && !b.is_empty()
            && b.iter()
                .all(|&c| is_atom_char(c) || matches!(c, b']' | b'%' | b'*'))
        {
            self.out.extend_from_slice(b);
        } else {
            self.string(b);
        }
    }

    fn set(&mut self, s: &SeqSet) {
        // The placeholder inside `Command::SavedResult` is `$`.
        if s.ranges.is_empty() {
            self.raw("$");
        } else {
            self.raw(&s.to_string());
        }
    }

    fn flag(&mut self, f: &Flag) {
        self.raw(&f.to_string());
    }

    fn flag_list(&mut self, flags: &[Flag]) {
        self.raw("(");
        for (i, f) in flags.iter().enumerate() {
            if i > 0 {
                self.raw(" ");
            }
            self.flag(f);
        }
        self.raw(")");
    }

    fn date(&mut self, d: SearchDate) {
        let (y, m, day) = civil_from_days(d.0);
        self.raw(&format!("{day}-{}-{y:04}", MONTHS[m as usize - 1]));
    }

    fn date_time(&mut self, d: &InternalDate) {
        let off = i64::from(d.offset_minutes);
        let local = d.timestamp + off * 60;
        let (y, m, day) = civil_from_days(local.div_euclid(86_400));
        let s = local.rem_euclid(86_400);
        let sign = if off < 0 { '-' } else { '+' };
        self.raw(&format!(
            "\"{day:02}-{}-{y:04} {:02}:{:02}:{:02} {sign}{:02}{:02}\"",
            MONTHS[m as usize - 1],
            s / 3600,
            s / 60 % 60,
            s % 60,
            off.abs() / 60,
            off.abs() % 60
        ));
    }

    fn status_items(&mut self, items: &[StatusItem]) {
        self.raw("(");
        for (i, it) in items.iter().enumerate() {
            if i > 0 {
                self.raw(" ");
            }
            self.raw(match it {
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
            });
        }
        self.raw(")");
    }

    fn section(&mut self, s: &Section) {
        self.raw("[");
        let parts: Vec<String> = s.part.iter().map(|p| p.to_string()).collect();
        self.raw(&parts.join("."));
        if let Some(t) = &s.text {
            if !s.part.is_empty() {
                self.raw(".");
            }
            match t {
                SectionText::Header => self.raw("HEADER"),
                SectionText::Text => self.raw("TEXT"),
                SectionText::Mime => self.raw("MIME"),
                SectionText::HeaderFields(f) | SectionText::HeaderFieldsNot(f) => {
                    self.raw(if matches!(t, SectionText::HeaderFields(_)) {
                        "HEADER.FIELDS ("
                    } else {
                        "HEADER.FIELDS.NOT ("
                    });
                    for (i, n) in f.iter().enumerate() {
                        if i > 0 {
                            self.raw(" ");
                        }
                        self.astring(n.as_bytes());
                    }
                    self.raw(")");
                }
            }
        }
        self.raw("]");
    }

    fn fetch_attr(&mut self, a: &FetchAttr) {
        match a {
            FetchAttr::Envelope => self.raw("ENVELOPE"),
            FetchAttr::Flags => self.raw("FLAGS"),
            FetchAttr::InternalDate => self.raw("INTERNALDATE"),
            FetchAttr::Rfc822 => self.raw("RFC822"),
            FetchAttr::Rfc822Header => self.raw("RFC822.HEADER"),
            FetchAttr::Rfc822Size => self.raw("RFC822.SIZE"),
            FetchAttr::Rfc822Text => self.raw("RFC822.TEXT"),
            FetchAttr::Body => self.raw("BODY"),
            FetchAttr::BodyStructure => self.raw("BODYSTRUCTURE"),
            FetchAttr::Uid => self.raw("UID"),
            FetchAttr::ModSeq => self.raw("MODSEQ"),
            FetchAttr::EmailId => self.raw("EMAILID"),
            FetchAttr::ThreadId => self.raw("THREADID"),
            FetchAttr::SaveDate => self.raw("SAVEDATE"),
            FetchAttr::Preview => self.raw("PREVIEW"),
            FetchAttr::BodySection {
                peek,
                section,
                partial,
            } => {
                self.raw(if *peek { "BODY.PEEK" } else { "BODY" });
                self.section(section);
                if let Some((o, l)) = partial {
                    self.raw(&format!("<{o}.{l}>"));
                }
            }
            FetchAttr::Binary {
                peek,
                part,
                partial,
            } => {
                self.raw(if *peek { "BINARY.PEEK" } else { "BINARY" });
                self.binary_part(part);
                if let Some((o, l)) = partial {
                    self.raw(&format!("<{o}.{l}>"));
                }
            }
            FetchAttr::BinarySize { part } => {
                self.raw("BINARY.SIZE");
                self.binary_part(part);
            }
        }
    }

    fn binary_part(&mut self, part: &[u32]) {
        let p: Vec<String> = part.iter().map(u32::to_string).collect();
        self.raw(&format!("[{}]", p.join(".")));
    }

    /// An `append-message` (RFC 4466/4469/3516): flags, date, data.
    fn append_message(&mut self, m: &AppendMessage) {
        if !m.flags.is_empty() {
            self.flag_list(&m.flags);
            self.raw(" ");
        }
        if let Some(d) = &m.date {
            self.date_time(d);
            self.raw(" ");
        }
        match &m.content {
            AppendContent::Literal(b) => self.literal8_or_literal(b),
            AppendContent::Catenate(parts) => {
                self.raw("CATENATE (");
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        self.raw(" ");
                    }
                    match p {
                        CatPart::Url(u) => {
                            self.raw("URL ");
                            self.astring(u.as_bytes());
                        }
                        CatPart::Text(t) => {
                            self.raw("TEXT ");
                            self.literal8_or_literal(t);
                        }
                    }
                }
                self.raw(")");
            }
        }
    }

    /// Bytes with NUL as a `literal8`, others as a literal.
    fn literal8_or_literal(&mut self, b: &[u8]) {
        if b.contains(&0) {
            self.raw("~");
        }
        self.literal(b, self.style == Style::LiteralSync);
    }

    fn search_key(&mut self, k: &SearchKey) {
        use SearchKey as K;
        let s = |w: &mut W, name: &str, v: &str| {
            w.raw(name);
            w.raw(" ");
            w.astring(v.as_bytes());
        };
        let d = |w: &mut W, name: &str, v: SearchDate| {
            w.raw(name);
            w.raw(" ");
            w.date(v);
        };
        match k {
            K::And(keys) => {
                self.raw("(");
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        self.raw(" ");
                    }
                    self.search_key(k);
                }
                self.raw(")");
            }
            K::SeqSet(set) => self.set(set),
            K::SavedResult => self.raw("$"),
            K::All => self.raw("ALL"),
            K::Answered => self.raw("ANSWERED"),
            K::Bcc(v) => s(self, "BCC", v),
            K::Before(v) => d(self, "BEFORE", *v),
            K::Body(v) => s(self, "BODY", v),
            K::Cc(v) => s(self, "CC", v),
            K::Deleted => self.raw("DELETED"),
            K::Draft => self.raw("DRAFT"),
            K::Flagged => self.raw("FLAGGED"),
            K::From(v) => s(self, "FROM", v),
            K::Header(f, v) => {
                self.raw("HEADER ");
                self.astring(f.as_bytes());
                self.raw(" ");
                self.astring(v.as_bytes());
            }
            K::Keyword(v) => self.raw(&format!("KEYWORD {v}")),
            K::Larger(n) => self.raw(&format!("LARGER {n}")),
            K::Older(n) => self.raw(&format!("OLDER {n}")),
            K::Younger(n) => self.raw(&format!("YOUNGER {n}")),
            K::New => self.raw("NEW"),
            K::Not(k) => {
                self.raw("NOT ");
                self.search_key(k);
            }
            K::Old => self.raw("OLD"),
            K::On(v) => d(self, "ON", *v),
            K::Or(a, b) => {
                self.raw("OR ");
                self.search_key(a);
                self.raw(" ");
                self.search_key(b);
            }
            K::Recent => self.raw("RECENT"),
            K::Seen => self.raw("SEEN"),
            K::SentBefore(v) => d(self, "SENTBEFORE", *v),
            K::SentOn(v) => d(self, "SENTON", *v),
            K::SentSince(v) => d(self, "SENTSINCE", *v),
            K::Since(v) => d(self, "SINCE", *v),
            K::Smaller(n) => self.raw(&format!("SMALLER {n}")),
            K::Subject(v) => s(self, "SUBJECT", v),
            K::Text(v) => s(self, "TEXT", v),
            K::To(v) => s(self, "TO", v),
            K::Uid(set) => {
                self.raw("UID ");
                self.set(set);
            }
            K::Unanswered => self.raw("UNANSWERED"),
            K::Undeleted => self.raw("UNDELETED"),
            K::Undraft => self.raw("UNDRAFT"),
            K::Unflagged => self.raw("UNFLAGGED"),
            K::Unkeyword(v) => self.raw(&format!("UNKEYWORD {v}")),
            K::Unseen => self.raw("UNSEEN"),
            K::ModSeq(m) => self.raw(&format!("MODSEQ {}", m.0)),
            K::EmailId(v) => self.raw(&format!("EMAILID {v}")),
            K::ThreadId(v) => self.raw(&format!("THREADID {v}")),
            K::SavedBefore(v) => d(self, "SAVEDBEFORE", *v),
            K::SavedOn(v) => d(self, "SAVEDON", *v),
            K::SavedSince(v) => d(self, "SAVEDSINCE", *v),
            K::SaveDateSupported => self.raw("SAVEDATESUPPORTED"),
        }
    }

    fn uid(&mut self, uid: bool) {
        if uid {
            self.raw("UID ");
        }
    }

    fn command(&mut self, cmd: &Command) {
        match cmd {
            Command::Capability => self.raw("CAPABILITY"),
            Command::Noop => self.raw("NOOP"),
            Command::Logout => self.raw("LOGOUT"),
            Command::Id(None) => self.raw("ID NIL"),
            Command::Id(Some(pairs)) => {
                self.raw("ID (");
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        self.raw(" ");
                    }
                    self.string(k.as_bytes());
                    self.raw(" ");
                    match v {
                        Some(v) => self.string(v.as_bytes()),
                        None => self.raw("NIL"),
                    }
                }
                self.raw(")");
            }
            Command::StartTls => self.raw("STARTTLS"),
            Command::Authenticate {
                mechanism,
                initial_response,
            } => {
                self.raw("AUTHENTICATE ");
                self.raw(mechanism);
                if let Some(ir) = initial_response {
                    self.raw(" ");
                    self.raw(ir);
                }
            }
            Command::Login { username, password } => {
                self.raw("LOGIN ");
                self.astring(username.as_bytes());
                self.raw(" ");
                self.astring(password.as_bytes());
            }
            Command::Select { mailbox, params } | Command::Examine { mailbox, params } => {
                self.raw(if matches!(cmd, Command::Select { .. }) {
                    "SELECT "
                } else {
                    "EXAMINE "
                });
                self.mailbox(mailbox);
                let mut p = Vec::new();
                if params.condstore {
                    p.push("CONDSTORE".to_string());
                }
                if let Some(q) = &params.qresync {
                    let mut s = format!("QRESYNC ({} {}", q.uid_validity.0, q.modseq.0);
                    if let Some(k) = &q.known_uids {
                        s.push_str(&format!(" {k}"));
                    }
                    if let Some((a, b)) = &q.seq_match {
                        s.push_str(&format!(" ({a} {b})"));
                    }
                    s.push(')');
                    p.push(s);
                }
                if !p.is_empty() {
                    self.raw(&format!(" ({})", p.join(" ")));
                }
            }
            Command::Create {
                mailbox,
                special_use,
            } => {
                self.raw("CREATE ");
                self.mailbox(mailbox);
                if !special_use.is_empty() {
                    let u: Vec<&str> = special_use.iter().map(|u| u.as_str()).collect();
                    self.raw(&format!(" (USE ({}))", u.join(" ")));
                }
            }
            Command::Delete { mailbox } => {
                self.raw("DELETE ");
                self.mailbox(mailbox);
            }
            Command::Rename { from, to } => {
                self.raw("RENAME ");
                self.mailbox(from);
                self.raw(" ");
                self.mailbox(to);
            }
            Command::Subscribe { mailbox } => {
                self.raw("SUBSCRIBE ");
                self.mailbox(mailbox);
            }
            Command::Unsubscribe { mailbox } => {
                self.raw("UNSUBSCRIBE ");
                self.mailbox(mailbox);
            }
            Command::List(args) => {
                self.raw("LIST ");
                if !args.selection.is_empty() {
                    self.raw(&format!("({}) ", args.selection.join(" ")));
                }
                self.mailbox(&args.reference);
                self.raw(" ");
                if args.patterns.len() == 1 {
                    self.list_mailbox(&args.patterns[0]);
                } else {
                    self.raw("(");
                    for (i, p) in args.patterns.iter().enumerate() {
                        if i > 0 {
                            self.raw(" ");
                        }
                        self.list_mailbox(p);
                    }
                    self.raw(")");
                }
                let r = &args.returns;
                if *r != ListReturn::default() {
                    let mut opts = Vec::new();
                    if r.subscribed {
                        opts.push("SUBSCRIBED");
                    }
                    if r.children {
                        opts.push("CHILDREN");
                    }
                    if r.special_use {
                        opts.push("SPECIAL-USE");
                    }
                    self.raw(&format!(" RETURN ({}", opts.join(" ")));
                    if let Some(items) = &r.status {
                        if !opts.is_empty() {
                            self.raw(" ");
                        }
                        self.raw("STATUS ");
                        self.status_items(items);
                    }
                    self.raw(")");
                }
            }
            Command::Lsub { reference, pattern } | Command::Xlist { reference, pattern } => {
                self.raw(if matches!(cmd, Command::Lsub { .. }) {
                    "LSUB "
                } else {
                    "XLIST "
                });
                self.mailbox(reference);
                self.raw(" ");
                self.list_mailbox(pattern);
            }
            Command::Namespace => self.raw("NAMESPACE"),
            Command::Status { mailbox, items } => {
                self.raw("STATUS ");
                self.mailbox(mailbox);
                self.raw(" ");
                self.status_items(items);
            }
            Command::Append {
                mailbox,
                flags,
                date,
                message,
            } => {
                self.raw("APPEND ");
                self.mailbox(mailbox);
                self.raw(" ");
                if !flags.is_empty() {
                    self.flag_list(flags);
                    self.raw(" ");
                }
                if let Some(d) = date {
                    self.date_time(d);
                    self.raw(" ");
                }
                self.literal(message, self.style == Style::LiteralSync);
            }
            Command::AppendMany { mailbox, messages } => {
                self.raw("APPEND ");
                self.mailbox(mailbox);
                for m in messages {
                    self.raw(" ");
                    self.append_message(m);
                }
            }
            Command::Replace {
                uid,
                target,
                mailbox,
                message,
            } => {
                self.uid(*uid);
                self.raw(&format!("REPLACE {target} "));
                self.mailbox(mailbox);
                self.raw(" ");
                self.append_message(message);
            }
            Command::Compress(m) => self.raw(&format!("COMPRESS {m}")),
            Command::Enable(caps) => self.raw(&format!("ENABLE {}", caps.join(" "))),
            Command::Idle => self.raw("IDLE"),
            Command::Notify(None) => self.raw("NOTIFY NONE"),
            Command::Notify(Some(set)) => {
                use mailroom_imap::extension::notify::{Event, Filter};
                self.raw("NOTIFY SET");
                if set.status {
                    self.raw(" (STATUS)");
                }
                for g in &set.groups {
                    self.raw(" (");
                    let names = match &g.filter {
                        Filter::Selected => {
                            self.raw("selected");
                            None
                        }
                        Filter::SelectedDelayed => {
                            self.raw("selected-delayed");
                            None
                        }
                        Filter::Inboxes => {
                            self.raw("inboxes");
                            None
                        }
                        Filter::Personal => {
                            self.raw("personal");
                            None
                        }
                        Filter::Subscribed => {
                            self.raw("subscribed");
                            None
                        }
                        Filter::Subtree(n) => {
                            self.raw("subtree");
                            Some(n)
                        }
                        Filter::Mailboxes(n) => {
                            self.raw("mailboxes");
                            Some(n)
                        }
                    };
                    if let Some(names) = names {
                        self.raw(" (");
                        for (i, n) in names.iter().enumerate() {
                            if i > 0 {
                                self.raw(" ");
                            }
                            self.mailbox(n);
                        }
                        self.raw(")");
                    }
                    self.raw(" ");
                    if g.events.is_empty() {
                        self.raw("NONE");
                    } else {
                        self.raw("(");
                        for (i, e) in g.events.iter().enumerate() {
                            if i > 0 {
                                self.raw(" ");
                            }
                            match e {
                                Event::MessageNew(atts) => {
                                    self.raw("MessageNew");
                                    if !atts.is_empty() {
                                        self.raw(" (");
                                        for (j, a) in atts.iter().enumerate() {
                                            if j > 0 {
                                                self.raw(" ");
                                            }
                                            self.fetch_attr(a);
                                        }
                                        self.raw(")");
                                    }
                                }
                                Event::MessageExpunge => self.raw("MessageExpunge"),
                                Event::FlagChange => self.raw("FlagChange"),
                                Event::AnnotationChange => self.raw("AnnotationChange"),
                                Event::MailboxName => self.raw("MailboxName"),
                                Event::SubscriptionChange => self.raw("SubscriptionChange"),
                                Event::MailboxMetadataChange => self.raw("MailboxMetadataChange"),
                                Event::ServerMetadataChange => self.raw("ServerMetadataChange"),
                                Event::Other(x) => self.raw(x),
                            }
                        }
                        self.raw(")");
                    }
                    self.raw(")");
                }
            }
            Command::GetAcl { mailbox } => {
                self.raw("GETACL ");
                self.mailbox(mailbox);
            }
            Command::SetAcl {
                mailbox,
                identifier,
                rights,
            } => {
                self.raw("SETACL ");
                self.mailbox(mailbox);
                self.raw(" ");
                self.astring(identifier.as_bytes());
                self.raw(" ");
                self.astring(rights.as_bytes());
            }
            Command::DeleteAcl {
                mailbox,
                identifier,
            }
            | Command::ListRights {
                mailbox,
                identifier,
            } => {
                self.raw(if matches!(cmd, Command::DeleteAcl { .. }) {
                    "DELETEACL "
                } else {
                    "LISTRIGHTS "
                });
                self.mailbox(mailbox);
                self.raw(" ");
                self.astring(identifier.as_bytes());
            }
            Command::MyRights { mailbox } => {
                self.raw("MYRIGHTS ");
                self.mailbox(mailbox);
            }
            Command::GetQuota { root } => {
                self.raw("GETQUOTA ");
                self.astring(root.as_bytes());
            }
            Command::GetQuotaRoot { mailbox } => {
                self.raw("GETQUOTAROOT ");
                self.mailbox(mailbox);
            }
            Command::SetQuota { root, limits } => {
                self.raw("SETQUOTA ");
                self.astring(root.as_bytes());
                let l: Vec<String> = limits.iter().map(|(n, v)| format!("{n} {v}")).collect();
                self.raw(&format!(" ({})", l.join(" ")));
            }
            Command::Check => self.raw("CHECK"),
            Command::Close => self.raw("CLOSE"),
            Command::Unselect => self.raw("UNSELECT"),
            Command::CancelUpdate(tags) => {
                self.raw("CANCELUPDATE");
                for t in tags {
                    self.raw(" ");
                    self.string(t.as_bytes());
                }
            }
            Command::Expunge { uids: None } => self.raw("EXPUNGE"),
            Command::Expunge { uids: Some(s) } => {
                self.raw("UID EXPUNGE ");
                self.set(s);
            }
            Command::Search {
                uid,
                charset,
                return_options,
                criteria,
            } => {
                self.uid(*uid);
                self.raw("SEARCH ");
                if let Some(opts) = return_options {
                    let o: Vec<String> = opts.iter().map(return_option).collect();
                    self.raw(&format!("RETURN ({}) ", o.join(" ")));
                }
                if let Some(c) = charset {
                    // An atom when it can be: RFC 9051 (and imap-codec) allow no literal here.
                    self.raw("CHARSET ");
                    if !c.is_empty() && c.bytes().all(is_atom_char) && c != "NIL" {
                        self.raw(c);
                    } else {
                        self.astring(c.as_bytes());
                    }
                    self.raw(" ");
                }
                match criteria {
                    SearchKey::And(keys) if keys.len() >= 2 => {
                        for (i, k) in keys.iter().enumerate() {
                            if i > 0 {
                                self.raw(" ");
                            }
                            self.search_key(k);
                        }
                    }
                    k => self.search_key(k),
                }
            }
            Command::Sort {
                uid,
                return_options,
                criteria,
                charset,
                search,
            } => {
                self.uid(*uid);
                self.raw("SORT ");
                if let Some(opts) = return_options {
                    let o: Vec<String> = opts.iter().map(return_option).collect();
                    self.raw(&format!("RETURN ({}) ", o.join(" ")));
                }
                self.raw("(");
                for (i, c) in criteria.iter().enumerate() {
                    if i > 0 {
                        self.raw(" ");
                    }
                    if c.reverse {
                        self.raw("REVERSE ");
                    }
                    self.raw(match c.key {
                        SortKey::Arrival => "ARRIVAL",
                        SortKey::Cc => "CC",
                        SortKey::Date => "DATE",
                        SortKey::From => "FROM",
                        SortKey::Size => "SIZE",
                        SortKey::Subject => "SUBJECT",
                        SortKey::To => "TO",
                        SortKey::DisplayFrom => "DISPLAYFROM",
                        SortKey::DisplayTo => "DISPLAYTO",
                    });
                }
                self.raw(") ");
                self.astring(charset.as_bytes());
                self.raw(" ");
                match search {
                    SearchKey::And(keys) if keys.len() >= 2 => {
                        for (i, k) in keys.iter().enumerate() {
                            if i > 0 {
                                self.raw(" ");
                            }
                            self.search_key(k);
                        }
                    }
                    k => self.search_key(k),
                }
            }
            Command::Thread {
                uid,
                algorithm,
                charset,
                search,
            } => {
                self.uid(*uid);
                self.raw(match algorithm {
                    ThreadAlgorithm::OrderedSubject => "THREAD ORDEREDSUBJECT ",
                    ThreadAlgorithm::References => "THREAD REFERENCES ",
                    ThreadAlgorithm::Refs => "THREAD REFS ",
                });
                self.astring(charset.as_bytes());
                self.raw(" ");
                match search {
                    SearchKey::And(keys) if keys.len() >= 2 => {
                        for (i, k) in keys.iter().enumerate() {
                            if i > 0 {
                                self.raw(" ");
                            }
                            self.search_key(k);
                        }
                    }
                    k => self.search_key(k),
                }
            }
            Command::Fetch {
                uid,
                set,
                items,
                changed_since,
                vanished,
            } => {
                self.uid(*uid);
                self.raw("FETCH ");
                self.set(set);
                self.raw(" ");
                if items.len() == 1 {
                    self.fetch_attr(&items[0]);
                } else {
                    self.raw("(");
                    for (i, a) in items.iter().enumerate() {
                        if i > 0 {
                            self.raw(" ");
                        }
                        self.fetch_attr(a);
                    }
                    self.raw(")");
                }
                if let Some(m) = changed_since {
                    self.raw(&format!(" (CHANGEDSINCE {}", m.0));
                    if *vanished {
                        self.raw(" VANISHED");
                    }
                    self.raw(")");
                }
            }
            Command::Store {
                uid,
                set,
                kind,
                silent,
                flags,
                unchanged_since,
            } => {
                self.uid(*uid);
                self.raw("STORE ");
                self.set(set);
                self.raw(" ");
                if let Some(m) = unchanged_since {
                    self.raw(&format!("(UNCHANGEDSINCE {}) ", m.0));
                }
                self.raw(match kind {
                    StoreKind::Replace => "FLAGS",
                    StoreKind::Add => "+FLAGS",
                    StoreKind::Remove => "-FLAGS",
                });
                if *silent {
                    self.raw(".SILENT");
                }
                self.raw(" ");
                self.flag_list(flags);
            }
            Command::Copy { uid, set, mailbox } | Command::Move { uid, set, mailbox } => {
                self.uid(*uid);
                self.raw(if matches!(cmd, Command::Copy { .. }) {
                    "COPY "
                } else {
                    "MOVE "
                });
                self.set(set);
                self.raw(" ");
                self.mailbox(mailbox);
            }
            Command::SavedResult { command } => self.command(command),
            // Only the parser makes it, from a name that is not modified
            // UTF-7: that name goes out as it came in.
            Command::InvalidMailboxName { command, name } => {
                self.raw_name = Some(name.clone());
                self.command(command);
                self.raw_name = None;
            }
        }
    }
}

/// One SEARCH/SORT return option as sent.
fn return_option(o: &SearchReturn) -> String {
    match o {
        SearchReturn::Min => "MIN".into(),
        SearchReturn::Max => "MAX".into(),
        SearchReturn::All => "ALL".into(),
        SearchReturn::Count => "COUNT".into(),
        SearchReturn::Save => "SAVE".into(),
        SearchReturn::Update => "UPDATE".into(),
        SearchReturn::Context => "CONTEXT".into(),
        SearchReturn::Partial(r) if r.from_end => format!("PARTIAL -{}:-{}", r.lo, r.hi),
        SearchReturn::Partial(r) => format!("PARTIAL {}:{}", r.lo, r.hi),
    }
}
