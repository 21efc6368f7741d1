//! The IMAP command grammar as data: what the parser produces and the
//! session consumes. One variant per command; names follow the RFCs.

use bytes::Bytes;
use mailroom_core::{Flag, InternalDate, ModSeq, SeqSet, SpecialUse, Uid, UidValidity};

/// A tagged command line as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The client's tag.
    pub tag: String,
    /// The command.
    pub command: Command,
}

/// A mailbox name as the client gave it, decoded from modified UTF-7 (or
/// taken as UTF-8 when UTF8=ACCEPT is enabled) into UTF-8.
pub type MailboxArg = String;

/// Every command Mailroom understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    // ---- any state (RFC 3501 §6.1)
    /// CAPABILITY
    Capability,
    /// NOOP
    Noop,
    /// LOGOUT
    Logout,
    /// ID (RFC 2971): `None` for `ID NIL`.
    Id(Option<Vec<(String, Option<String>)>>),

    // ---- not authenticated (§6.2)
    /// STARTTLS
    StartTls,
    /// AUTHENTICATE mechanism [initial-response]. The initial response is
    /// still base64 as sent (`=` for an empty one, RFC 4959).
    Authenticate {
        /// The SASL mechanism name, upper-cased.
        mechanism: String,
        /// SASL-IR initial response, base64.
        initial_response: Option<String>,
    },
    /// LOGIN user password
    Login {
        /// User name.
        username: String,
        /// Password (never logged).
        password: String,
    },

    // ---- authenticated (§6.3)
    /// SELECT
    Select {
        /// Mailbox.
        mailbox: MailboxArg,
        /// CONDSTORE / QRESYNC parameters.
        params: SelectParams,
    },
    /// EXAMINE
    Examine {
        /// Mailbox.
        mailbox: MailboxArg,
        /// CONDSTORE / QRESYNC parameters.
        params: SelectParams,
    },
    /// CREATE, with the RFC 6154 USE parameter.
    Create {
        /// Mailbox.
        mailbox: MailboxArg,
        /// `(USE (\Sent))`.
        special_use: Vec<SpecialUse>,
    },
    /// DELETE
    Delete {
        /// Mailbox.
        mailbox: MailboxArg,
    },
    /// RENAME
    Rename {
        /// Existing name.
        from: MailboxArg,
        /// New name.
        to: MailboxArg,
    },
    /// SUBSCRIBE
    Subscribe {
        /// Mailbox.
        mailbox: MailboxArg,
    },
    /// UNSUBSCRIBE
    Unsubscribe {
        /// Mailbox.
        mailbox: MailboxArg,
    },
    /// LIST, with RFC 5258 LIST-EXTENDED and RFC 5819 LIST-STATUS options.
    List(ListArgs),
    /// LSUB
    Lsub {
        /// Reference name.
        reference: MailboxArg,
        /// Pattern.
        pattern: MailboxArg,
    },
    /// XLIST (the Gmail predecessor of SPECIAL-USE)
    Xlist {
        /// Reference name.
        reference: MailboxArg,
        /// Pattern.
        pattern: MailboxArg,
    },
    /// NAMESPACE (RFC 2342)
    Namespace,
    /// STATUS
    Status {
        /// Mailbox.
        mailbox: MailboxArg,
        /// Requested items.
        items: Vec<StatusItem>,
    },
    /// APPEND of one message given as a literal (or literal8, RFC 3516).
    /// Several messages (MULTIAPPEND) or a CATENATE are [`Command::AppendMany`].
    Append {
        /// Mailbox.
        mailbox: MailboxArg,
        /// Initial flags.
        flags: Vec<Flag>,
        /// INTERNALDATE.
        date: Option<InternalDate>,
        /// The message literal.
        message: Bytes,
    },
    /// APPEND of several messages, one atomic step (MULTIAPPEND, RFC 3502),
    /// or of a message built by CATENATE (RFC 4469).
    AppendMany {
        /// Mailbox.
        mailbox: MailboxArg,
        /// The messages, in order (at least one).
        messages: Vec<AppendMessage>,
    },
    /// REPLACE and UID REPLACE (RFC 8508): append a new version of a
    /// message of the selected mailbox, then expunge the old one.
    Replace {
        /// UID REPLACE: `target` is a UID, else a sequence number.
        uid: bool,
        /// The message replaced.
        target: u32,
        /// Where the new version goes.
        mailbox: MailboxArg,
        /// The new version.
        message: AppendMessage,
    },
    /// COMPRESS (RFC 4978): the mechanism name, upper-cased.
    Compress(String),
    /// ENABLE (RFC 5161): capability names, upper-cased.
    Enable(Vec<String>),
    /// NOTIFY (RFC 5465): `None` for `NOTIFY NONE`.
    Notify(Option<crate::extension::notify::NotifySet>),
    /// IDLE (RFC 2177); the driver reads the `DONE` line.
    Idle,
    /// GETACL (RFC 4314)
    GetAcl {
        /// Mailbox.
        mailbox: MailboxArg,
    },
    /// SETACL; `rights` may start with `+` or `-`.
    SetAcl {
        /// Mailbox.
        mailbox: MailboxArg,
        /// Identifier.
        identifier: String,
        /// Rights string as given.
        rights: String,
    },
    /// DELETEACL
    DeleteAcl {
        /// Mailbox.
        mailbox: MailboxArg,
        /// Identifier.
        identifier: String,
    },
    /// LISTRIGHTS
    ListRights {
        /// Mailbox.
        mailbox: MailboxArg,
        /// Identifier.
        identifier: String,
    },
    /// MYRIGHTS
    MyRights {
        /// Mailbox.
        mailbox: MailboxArg,
    },
    /// GETQUOTA (RFC 9208)
    GetQuota {
        /// Quota root.
        root: String,
    },
    /// GETQUOTAROOT
    GetQuotaRoot {
        /// Mailbox.
        mailbox: MailboxArg,
    },
    /// SETQUOTA: (resource, limit) pairs; resource names upper-cased.
    SetQuota {
        /// Quota root.
        root: String,
        /// Limits.
        limits: Vec<(String, u64)>,
    },

    // ---- selected (§6.4)
    /// CHECK
    Check,
    /// CLOSE
    Close,
    /// UNSELECT (RFC 3691)
    Unselect,
    /// EXPUNGE, or UID EXPUNGE set (RFC 4315).
    Expunge {
        /// `Some` for UID EXPUNGE.
        uids: Option<SeqSet>,
    },
    /// SEARCH / UID SEARCH, with ESEARCH return options (RFC 4731).
    Search {
        /// UID SEARCH.
        uid: bool,
        /// CHARSET, upper-cased.
        charset: Option<String>,
        /// `RETURN (...)`; `None` means a classic `* SEARCH` answer.
        return_options: Option<Vec<SearchReturn>>,
        /// The criteria (an implicit AND of the top-level keys).
        criteria: SearchKey,
    },
    /// SORT / UID SORT (RFC 5256, with the SORT=DISPLAY keys of RFC 5957).
    Sort {
        /// UID SORT.
        uid: bool,
        /// `RETURN (...)` of ESORT (RFC 5267); `None` means a classic
        /// `* SORT` answer.
        return_options: Option<Vec<SearchReturn>>,
        /// The sort criteria, most significant first.
        criteria: Vec<SortCriterion>,
        /// CHARSET (mandatory in SORT), upper-cased.
        charset: String,
        /// The search criteria (an implicit AND of the top-level keys).
        search: SearchKey,
    },
    /// CANCELUPDATE (RFC 5267 §4.3.5): the tags of searches whose
    /// updates stop.
    CancelUpdate(Vec<String>),
    /// THREAD / UID THREAD (RFC 5256).
    Thread {
        /// UID THREAD.
        uid: bool,
        /// The threading algorithm.
        algorithm: ThreadAlgorithm,
        /// CHARSET (mandatory in THREAD), upper-cased.
        charset: String,
        /// The search criteria (an implicit AND of the top-level keys).
        search: SearchKey,
    },
    /// FETCH / UID FETCH
    Fetch {
        /// UID FETCH.
        uid: bool,
        /// Messages.
        set: SeqSet,
        /// Data items, macros expanded (`UID` is added for UID FETCH by the session).
        items: Vec<FetchAttr>,
        /// `(CHANGEDSINCE n)` (RFC 7162).
        changed_since: Option<ModSeq>,
        /// `(VANISHED)` (RFC 7162, UID FETCH only).
        vanished: bool,
    },
    /// STORE / UID STORE
    Store {
        /// UID STORE.
        uid: bool,
        /// Messages.
        set: SeqSet,
        /// FLAGS, +FLAGS or -FLAGS.
        kind: StoreKind,
        /// `.SILENT`.
        silent: bool,
        /// The flags.
        flags: Vec<Flag>,
        /// `(UNCHANGEDSINCE n)`.
        unchanged_since: Option<ModSeq>,
    },
    /// COPY / UID COPY
    Copy {
        /// UID COPY.
        uid: bool,
        /// Messages.
        set: SeqSet,
        /// Destination.
        mailbox: MailboxArg,
    },
    /// MOVE / UID MOVE (RFC 6851)
    Move {
        /// UID MOVE.
        uid: bool,
        /// Messages.
        set: SeqSet,
        /// Destination.
        mailbox: MailboxArg,
    },

    // ---- the saved search result
    /// A FETCH, STORE, COPY, MOVE or UID EXPUNGE whose sequence set is `$`,
    /// the saved search result (RFC 5182 SEARCHRES). The command inside
    /// carries an empty placeholder set; the session puts the saved
    /// messages in its place before running it (see
    /// [`crate::extension::searchres`]).
    SavedResult {
        /// The command, its set a placeholder.
        command: Box<Command>,
    },

    // ---- refused arguments
    /// A command whose mailbox name is ASCII but not valid modified UTF-7
    /// (RFC 3501 §5.1.3: `&` not followed by base64 and `-`, or not
    /// decoding to UTF-16). Such a name cannot be any mailbox: the command
    /// is answered `NO` as for a mailbox that does not exist, and a LIST or
    /// LSUB whose reference or every pattern is one matches nothing
    /// (Dovecot answers the same way). Syntax is still checked first: a
    /// command that is malformed otherwise is still `BAD`.
    InvalidMailboxName {
        /// The command as parsed, the name left undecoded.
        command: Box<Command>,
        /// The first name that is not modified UTF-7, as sent.
        name: String,
    },
}

impl Command {
    /// A UID command (UID FETCH/STORE/COPY/MOVE/SEARCH/EXPUNGE).
    pub fn is_uid(&self) -> bool {
        match self {
            Command::Search { uid, .. }
            | Command::Sort { uid, .. }
            | Command::Thread { uid, .. }
            | Command::Fetch { uid, .. }
            | Command::Store { uid, .. }
            | Command::Copy { uid, .. }
            | Command::Move { uid, .. }
            | Command::Replace { uid, .. } => *uid,
            Command::Expunge { uids } => uids.is_some(),
            Command::InvalidMailboxName { command, .. } | Command::SavedResult { command } => {
                command.is_uid()
            }
            _ => false,
        }
    }

    /// The command's name as IMAP spells it, for logs (never arguments).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Capability => "CAPABILITY",
            Command::Noop => "NOOP",
            Command::Logout => "LOGOUT",
            Command::Id(_) => "ID",
            Command::StartTls => "STARTTLS",
            Command::Authenticate { .. } => "AUTHENTICATE",
            Command::Login { .. } => "LOGIN",
            Command::Select { .. } => "SELECT",
            Command::Examine { .. } => "EXAMINE",
            Command::Create { .. } => "CREATE",
            Command::Delete { .. } => "DELETE",
            Command::Rename { .. } => "RENAME",
            Command::Subscribe { .. } => "SUBSCRIBE",
            Command::Unsubscribe { .. } => "UNSUBSCRIBE",
            Command::List(_) => "LIST",
            Command::Lsub { .. } => "LSUB",
            Command::Xlist { .. } => "XLIST",
            Command::Namespace => "NAMESPACE",
            Command::Status { .. } => "STATUS",
            Command::Append { .. } | Command::AppendMany { .. } => "APPEND",
            Command::Replace { .. } => "REPLACE",
            Command::Compress(_) => "COMPRESS",
            Command::Enable(_) => "ENABLE",
            Command::Notify(_) => "NOTIFY",
            Command::Idle => "IDLE",
            Command::GetAcl { .. } => "GETACL",
            Command::SetAcl { .. } => "SETACL",
            Command::DeleteAcl { .. } => "DELETEACL",
            Command::ListRights { .. } => "LISTRIGHTS",
            Command::MyRights { .. } => "MYRIGHTS",
            Command::GetQuota { .. } => "GETQUOTA",
            Command::GetQuotaRoot { .. } => "GETQUOTAROOT",
            Command::SetQuota { .. } => "SETQUOTA",
            Command::Check => "CHECK",
            Command::Close => "CLOSE",
            Command::Unselect => "UNSELECT",
            Command::Expunge { .. } => "EXPUNGE",
            Command::Search { .. } => "SEARCH",
            Command::Sort { .. } => "SORT",
            Command::Thread { .. } => "THREAD",
            Command::CancelUpdate(_) => "CANCELUPDATE",
            Command::Fetch { .. } => "FETCH",
            Command::Store { .. } => "STORE",
            Command::Copy { .. } => "COPY",
            Command::Move { .. } => "MOVE",
            Command::InvalidMailboxName { command, .. } | Command::SavedResult { command } => {
                command.name()
            }
        }
    }
}

/// SELECT/EXAMINE parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectParams {
    /// `(CONDSTORE)`.
    pub condstore: bool,
    /// `(QRESYNC (...))`.
    pub qresync: Option<QresyncParams>,
}

/// `QRESYNC (uidvalidity modseq [known-uids [(seq-match-data)]])` (RFC 7162 §3.2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QresyncParams {
    /// The UIDVALIDITY the client knows.
    pub uid_validity: UidValidity,
    /// The modseq the client last saw.
    pub modseq: ModSeq,
    /// UIDs the client knows.
    pub known_uids: Option<SeqSet>,
    /// (sequence numbers, corresponding UIDs).
    pub seq_match: Option<(SeqSet, SeqSet)>,
}

/// LIST arguments (RFC 3501 plus RFC 5258 and RFC 5819).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListArgs {
    /// Reference name.
    pub reference: MailboxArg,
    /// One or more patterns.
    pub patterns: Vec<MailboxArg>,
    /// Selection options, upper-cased (`SUBSCRIBED`, `REMOTE`, `RECURSIVEMATCH`, `SPECIAL-USE`).
    pub selection: Vec<String>,
    /// Return options (`SUBSCRIBED`, `CHILDREN`, `SPECIAL-USE`, `STATUS (...)`).
    pub returns: ListReturn,
}

/// LIST RETURN options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListReturn {
    /// `SUBSCRIBED`.
    pub subscribed: bool,
    /// `CHILDREN`.
    pub children: bool,
    /// `SPECIAL-USE`.
    pub special_use: bool,
    /// `STATUS (...)`.
    pub status: Option<Vec<StatusItem>>,
}

/// A STATUS data item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusItem {
    /// MESSAGES
    Messages,
    /// RECENT
    Recent,
    /// UIDNEXT
    UidNext,
    /// UIDVALIDITY
    UidValidity,
    /// UNSEEN
    Unseen,
    /// HIGHESTMODSEQ (RFC 7162)
    HighestModSeq,
    /// SIZE (RFC 8438)
    Size,
    /// DELETED (RFC 9051)
    Deleted,
    /// APPENDLIMIT (RFC 7889)
    AppendLimit,
    /// MAILBOXID (RFC 8474)
    MailboxId,
}

/// FLAGS, +FLAGS or -FLAGS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// FLAGS
    Replace,
    /// +FLAGS
    Add,
    /// -FLAGS
    Remove,
}

/// An ESEARCH return option (RFC 4731).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchReturn {
    /// MIN
    Min,
    /// MAX
    Max,
    /// ALL
    All,
    /// COUNT
    Count,
    /// SAVE (RFC 5182)
    Save,
    /// `PARTIAL m:n` (RFC 5267 §4.4, with the negative ranges of RFC 9394):
    /// the results at these positions (see [`crate::extension::context`]).
    Partial(PartialRange),
    /// UPDATE (RFC 5267 §4.3): keep the client told of changes to the result.
    Update,
    /// CONTEXT (RFC 5267 §4.2): a hint that the client will ask again.
    Context,
}

/// The range of a PARTIAL return option: positions `lo..=hi` (1-based,
/// `lo <= hi`) counted from the first result, or from the last when
/// `from_end` (RFC 9394's `-lo:-hi`, `-1` being the last result).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialRange {
    /// Counted from the end (`-m:-n`).
    pub from_end: bool,
    /// The smaller position.
    pub lo: u32,
    /// The larger position.
    pub hi: u32,
}

/// One SORT criterion (RFC 5256 §3): a sort key, maybe reversed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortCriterion {
    /// `REVERSE` before the key: this key sorts in descending order.
    pub reverse: bool,
    /// The key.
    pub key: SortKey,
}

/// A THREAD algorithm (RFC 5256 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadAlgorithm {
    /// ORDEREDSUBJECT: messages grouped by base subject, ordered by sent date.
    OrderedSubject,
    /// REFERENCES: messages linked by Message-ID, References and
    /// In-Reply-To, then threads with the same base subject merged.
    References,
    /// REFS (draft-ietf-morg-inthread): linked as REFERENCES, not merged
    /// by subject, threads ordered by their newest message.
    Refs,
}

/// A SORT key (RFC 5256 §3, RFC 5957 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// ARRIVAL: the INTERNALDATE.
    Arrival,
    /// CC: the addr-mailbox of the first `Cc:` address.
    Cc,
    /// DATE: the sent date (`Date:`, in UTC), else the INTERNALDATE.
    Date,
    /// FROM: the addr-mailbox of the first `From:` address.
    From,
    /// SIZE: RFC822.SIZE.
    Size,
    /// SUBJECT: the base subject (RFC 5256 §2.1).
    Subject,
    /// TO: the addr-mailbox of the first `To:` address.
    To,
    /// DISPLAYFROM (RFC 5957): the display name of the first `From:`
    /// address, else its addr-spec.
    DisplayFrom,
    /// DISPLAYTO (RFC 5957): the display name of the first `To:`
    /// address, else its addr-spec.
    DisplayTo,
}

/// A date in a SEARCH key (`1-Feb-1994`), as a day count since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SearchDate(pub i64);

/// A SEARCH key (RFC 3501 §6.4.4 plus MODSEQ from RFC 7162).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    /// Several keys that must all match (parenthesised list or the top level).
    And(Vec<SearchKey>),
    /// A message sequence set.
    SeqSet(SeqSet),
    /// `$`: the saved result (RFC 5182).
    SavedResult,
    /// ALL
    All,
    /// ANSWERED
    Answered,
    /// BCC string
    Bcc(String),
    /// BEFORE date (internal date)
    Before(SearchDate),
    /// BODY string
    Body(String),
    /// CC string
    Cc(String),
    /// DELETED
    Deleted,
    /// DRAFT
    Draft,
    /// FLAGGED
    Flagged,
    /// FROM string
    From(String),
    /// HEADER field-name string
    Header(String, String),
    /// KEYWORD flag
    Keyword(String),
    /// LARGER n
    Larger(u64),
    /// NEW
    New,
    /// NOT key
    Not(Box<SearchKey>),
    /// OLD
    Old,
    /// ON date
    On(SearchDate),
    /// OR key key
    Or(Box<SearchKey>, Box<SearchKey>),
    /// RECENT
    Recent,
    /// SEEN
    Seen,
    /// SENTBEFORE date
    SentBefore(SearchDate),
    /// SENTON date
    SentOn(SearchDate),
    /// SENTSINCE date
    SentSince(SearchDate),
    /// SINCE date
    Since(SearchDate),
    /// SMALLER n
    Smaller(u64),
    /// OLDER interval (RFC 5032 WITHIN): seconds.
    Older(u32),
    /// YOUNGER interval (RFC 5032 WITHIN): seconds.
    Younger(u32),
    /// SUBJECT string
    Subject(String),
    /// TEXT string
    Text(String),
    /// TO string
    To(String),
    /// UID set
    Uid(SeqSet),
    /// UNANSWERED
    Unanswered,
    /// UNDELETED
    Undeleted,
    /// UNDRAFT
    Undraft,
    /// UNFLAGGED
    Unflagged,
    /// UNKEYWORD flag
    Unkeyword(String),
    /// UNSEEN
    Unseen,
    /// MODSEQ n (entry names are accepted and ignored)
    ModSeq(ModSeq),
    /// EMAILID objectid (RFC 8474)
    EmailId(String),
    /// THREADID objectid (RFC 8474)
    ThreadId(String),
    /// SAVEDBEFORE date (RFC 8514)
    SavedBefore(SearchDate),
    /// SAVEDON date (RFC 8514)
    SavedOn(SearchDate),
    /// SAVEDSINCE date (RFC 8514)
    SavedSince(SearchDate),
    /// SAVEDATESUPPORTED (RFC 8514)
    SaveDateSupported,
}

/// A FETCH data item (macros ALL/FAST/FULL already expanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAttr {
    /// ENVELOPE
    Envelope,
    /// FLAGS
    Flags,
    /// INTERNALDATE
    InternalDate,
    /// RFC822 (like BODY[], sets \Seen)
    Rfc822,
    /// RFC822.HEADER (like `BODY.PEEK[HEADER]`)
    Rfc822Header,
    /// RFC822.SIZE
    Rfc822Size,
    /// RFC822.TEXT (like `BODY[TEXT]`, sets `\Seen`)
    Rfc822Text,
    /// BODY (structure without extension data)
    Body,
    /// BODYSTRUCTURE
    BodyStructure,
    /// UID
    Uid,
    /// MODSEQ (RFC 7162)
    ModSeq,
    /// EMAILID (RFC 8474)
    EmailId,
    /// THREADID (RFC 8474)
    ThreadId,
    /// SAVEDATE (RFC 8514)
    SaveDate,
    /// PREVIEW or `PREVIEW (LAZY)` (RFC 8970)
    Preview,
    /// `BODY[section]<partial>` or `BODY.PEEK[...]`
    BodySection {
        /// BODY.PEEK: do not set \Seen.
        peek: bool,
        /// The section.
        section: Section,
        /// `<origin.length>`, both `number64` (RFC 9051 §9 `partial`).
        partial: Option<(u64, u64)>,
    },
    /// `BINARY[part]<partial>` or `BINARY.PEEK[...]` (RFC 3516): the part
    /// with its content transfer encoding undone.
    Binary {
        /// BINARY.PEEK: do not set \Seen.
        peek: bool,
        /// Part numbers (empty: the whole message).
        part: Vec<u32>,
        /// `<origin.length>`, of the decoded bytes, both `number64`.
        partial: Option<(u64, u64)>,
    },
    /// `BINARY.SIZE[part]` (RFC 3516): the size of the decoded part.
    BinarySize {
        /// Part numbers (empty: the whole message).
        part: Vec<u32>,
    },
}

/// One message of an APPEND (RFC 4466 `append-message`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    /// Initial flags.
    pub flags: Vec<Flag>,
    /// INTERNALDATE.
    pub date: Option<InternalDate>,
    /// The content.
    pub content: AppendContent,
}

/// What an appended message is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendContent {
    /// A literal or literal8 (RFC 3516): the message as sent.
    Literal(Bytes),
    /// `CATENATE (...)` (RFC 4469): the message is these parts joined.
    Catenate(Vec<CatPart>),
}

/// One part of a CATENATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatPart {
    /// `URL "imap-url"`: bytes of a message the user can read (RFC 5092).
    Url(String),
    /// `TEXT literal`: bytes given in the command.
    Text(Bytes),
}

/// A body section specifier (`1.2.HEADER.FIELDS (From)`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section {
    /// Part numbers (empty for the whole message).
    pub part: Vec<u32>,
    /// What of the part.
    pub text: Option<SectionText>,
}

/// The text part of a section specifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    /// HEADER
    Header,
    /// HEADER.FIELDS (names), names as given
    HeaderFields(Vec<String>),
    /// HEADER.FIELDS.NOT (names)
    HeaderFieldsNot(Vec<String>),
    /// TEXT
    Text,
    /// MIME (only after a part number)
    Mime,
}

/// Convenience: the UID type used in responses.
pub type ResponseUid = Uid;
