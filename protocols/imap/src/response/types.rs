//! Responses as data: what the session produces and the encoder writes.

use std::sync::Arc;

use bytes::Bytes;
use mailroom_core::{
    Flags, InternalDate, MailboxId, MessageGuid, MessageSummary, ModSeq, SeqSet, Uid, UidValidity,
};

use crate::command::{PartialRange, Section, StatusItem};

/// One response to write to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// A status response: tagged (`a1 OK ...`) or untagged (`* OK ...`, `* BYE ...`).
    Status(StatusResponse),
    /// Untagged data (`* 3 EXISTS`, `* LIST ...`, `* 1 FETCH ...`).
    Data(Data),
    /// A continuation request (`+ text`); the text may be empty or base64.
    Continue(String),
}

/// The kind of a status response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    /// OK
    Ok,
    /// NO
    No,
    /// BAD
    Bad,
    /// BYE (always untagged)
    Bye,
    /// PREAUTH (greeting only)
    PreAuth,
}

/// `tag OK [code] text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusResponse {
    /// `None` for untagged.
    pub tag: Option<String>,
    /// OK/NO/BAD/BYE/PREAUTH.
    pub kind: StatusKind,
    /// Response code.
    pub code: Option<Code>,
    /// Human-readable text (ASCII, no CR/LF; the encoder strips them).
    pub text: String,
}

/// A response code (RFC 3501 §7.1 and extensions; RFC 5530 for the errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// ALERT
    Alert,
    /// BADCHARSET (list of supported charsets)
    BadCharset(Vec<String>),
    /// CAPABILITY ...
    Capability(Vec<String>),
    /// PARSE
    Parse,
    /// PERMANENTFLAGS (...) — strings like `\Seen`, `\*`
    PermanentFlags(Vec<String>),
    /// READ-ONLY
    ReadOnly,
    /// READ-WRITE
    ReadWrite,
    /// TRYCREATE
    TryCreate,
    /// UIDNEXT n
    UidNext(Uid),
    /// UIDVALIDITY n
    UidValidity(UidValidity),
    /// UNSEEN n (sequence number of the first unseen message)
    Unseen(u32),
    /// APPENDUID validity uid (RFC 4315)
    AppendUid(UidValidity, Uid),
    /// COPYUID validity source-uids dest-uids (RFC 4315)
    CopyUid(UidValidity, SeqSet, SeqSet),
    /// UIDNOTSTICKY
    UidNotSticky,
    /// HIGHESTMODSEQ n (RFC 7162)
    HighestModSeq(ModSeq),
    /// MAILBOXID (id) (RFC 8474)
    MailboxId(MailboxId),
    /// NOMODSEQ
    NoModSeq,
    /// MODIFIED set
    Modified(SeqSet),
    /// CLOSED (RFC 7162)
    Closed,
    /// NONEXISTENT (RFC 5530)
    NonExistent,
    /// ALREADYEXISTS
    AlreadyExists,
    /// NOPERM
    NoPerm,
    /// OVERQUOTA
    OverQuota,
    /// CANNOT
    Cannot,
    /// INUSE
    InUse,
    /// LIMIT
    Limit,
    /// SERVERBUG
    ServerBug,
    /// UNAVAILABLE
    Unavailable,
    /// CORRUPTION (RFC 5530)
    Corruption,
    /// AUTHENTICATIONFAILED
    AuthenticationFailed,
    /// PRIVACYREQUIRED
    PrivacyRequired,
    /// CONTACTADMIN
    ContactAdmin,
    /// EXPUNGEISSUED
    ExpungeIssued,
    /// HASCHILDREN (RFC 9051)
    HasChildren,
    /// CLIENTBUG
    ClientBug,
    /// TOOBIG (RFC 9051... as used by servers for APPEND limits)
    TooBig,
    /// UNKNOWN-CTE (RFC 3516): a part's Content-Transfer-Encoding cannot be undone.
    UnknownCte,
    /// COMPRESSIONACTIVE (RFC 4978)
    CompressionActive,
    /// BADURL (RFC 4469): a CATENATE URL that names nothing the user can read.
    BadUrl(String),
    /// NOUPDATE "tag" (RFC 5267 §4.3.1): no updates for that search.
    NoUpdate(String),
    /// APPENDUID with a set of UIDs (MULTIAPPEND, RFC 3502 / RFC 4315).
    AppendUids(UidValidity, SeqSet),
    /// BADEVENT (RFC 5465): the NOTIFY events the server supports.
    BadEvent(Vec<String>),
    /// NOTIFICATIONOVERFLOW (RFC 5465): NOTIFY was turned off.
    NotificationOverflow,
    /// UIDREQUIRED (RFC 9586): after ENABLE UIDONLY, a command used
    /// message sequence numbers.
    UidRequired,
}

/// One message of a THREAD answer and its replies, or a dummy (a message
/// that is referenced but not in the answer) holding several threads
/// together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadNode {
    /// The sequence number or UID; `None` for a dummy.
    pub id: Option<u32>,
    /// The replies, oldest first.
    pub children: Vec<ThreadNode>,
}

/// Untagged data responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// `* CAPABILITY ...`
    Capability(Vec<String>),
    /// `* LIST (attrs) "/" name` (also LSUB and XLIST via `kind`).
    List {
        /// LIST, LSUB or XLIST.
        kind: ListKind,
        /// Attributes such as `\HasNoChildren`, `\Sent`.
        attributes: Vec<String>,
        /// Hierarchy delimiter (`None` for NIL).
        delimiter: Option<char>,
        /// The name in UTF-8; the encoder writes modified UTF-7 unless UTF8=ACCEPT.
        name: String,
        /// The CHILDINFO extended data item (RFC 5258 §3.5): the selection
        /// options (`SUBSCRIBED`, ...) that some descendant meets, sent only
        /// for LIST with RECURSIVEMATCH. Empty: no extended data.
        child_info: Vec<String>,
    },
    /// `* LIST (attrs) "/" name ("OLDNAME" (old))`: a rename told by
    /// NOTIFY's MailboxName event (RFC 5465 §5.4).
    ListRenamed {
        /// Attributes of the mailbox under its new name.
        attributes: Vec<String>,
        /// Hierarchy delimiter.
        delimiter: Option<char>,
        /// The new name (UTF-8).
        name: String,
        /// The name it had (UTF-8).
        old_name: String,
    },
    /// `* STATUS name (items)`
    Status {
        /// Mailbox name (UTF-8).
        mailbox: String,
        /// Items with values (the value of MAILBOXID is `mailbox_id`).
        items: Vec<(StatusItem, u64)>,
        /// The MAILBOXID, written where `items` has [`StatusItem::MailboxId`].
        mailbox_id: Option<MailboxId>,
    },
    /// `* SEARCH n n n [(MODSEQ m)]`
    Search {
        /// Sequence numbers or UIDs.
        ids: Vec<u32>,
        /// Highest modseq of the matches when the search used MODSEQ.
        modseq: Option<ModSeq>,
    },
    /// `* SORT n n n [(MODSEQ m)]` (RFC 5256, RFC 7162 §3.1.5)
    Sort {
        /// Sequence numbers or UIDs, in sorted order.
        ids: Vec<u32>,
        /// Highest modseq of the matches when the search used MODSEQ.
        modseq: Option<ModSeq>,
    },
    /// `* THREAD (1 2)(3 (4)(5))` (RFC 5256): the threads, oldest first.
    Thread(Vec<ThreadNode>),
    /// `* ESEARCH (TAG "t") [UID] MIN n MAX n COUNT n ALL set [MODSEQ m]` (RFC 4731)
    ESearch {
        /// The command's tag.
        tag: String,
        /// Whether the numbers are UIDs.
        uid: bool,
        /// MIN
        min: Option<u32>,
        /// MAX
        max: Option<u32>,
        /// COUNT
        count: Option<u32>,
        /// ALL (omitted when empty)
        all: Option<SeqSet>,
        /// MODSEQ
        modseq: Option<ModSeq>,
        /// `PARTIAL (range set)` (RFC 5267 §4.4): the range asked for and
        /// the results in it (`None`: NIL).
        partial: Option<(PartialRange, Option<SeqSet>)>,
    },
    /// `* ESEARCH (TAG "t") [UID] REMOVEFROM (p set ...) ADDTO (p set ...)`
    /// (RFC 5267 §4.3): changes to the result of a search with UPDATE.
    ESearchUpdate {
        /// The tag of the search.
        tag: String,
        /// Whether the numbers are UIDs.
        uid: bool,
        /// `(position, set)` pairs to remove, in the order to apply them.
        remove: Vec<(u32, SeqSet)>,
        /// `(position, set)` pairs to add, in the order to apply them
        /// (after the removals).
        add: Vec<(u32, SeqSet)>,
    },
    /// `* FLAGS (...)`
    Flags(Vec<String>),
    /// `* n EXISTS`
    Exists(u32),
    /// `* n RECENT`
    Recent(u32),
    /// `* n EXPUNGE`
    Expunge(u32),
    /// `* VANISHED [(EARLIER)] uids` (RFC 7162)
    Vanished {
        /// EARLIER
        earlier: bool,
        /// UIDs
        uids: SeqSet,
    },
    /// `* n FETCH (...)`
    Fetch {
        /// Sequence number.
        seq: u32,
        /// Items in the order to write them.
        items: Vec<FetchItem>,
    },
    /// `* uid UIDFETCH (...)` (RFC 9586): a FETCH response after ENABLE
    /// UIDONLY, named by UID instead of sequence number.
    UidFetch {
        /// The message's UID.
        uid: Uid,
        /// Items in the order to write them.
        items: Vec<FetchItem>,
    },
    /// `* NAMESPACE ...`: (prefix, delimiter) lists for personal, other users, shared.
    Namespace {
        /// Personal namespaces.
        personal: Vec<(String, char)>,
        /// Other users' namespaces.
        other: Vec<(String, char)>,
        /// Shared namespaces.
        shared: Vec<(String, char)>,
    },
    /// `* ID (...)` or `* ID NIL`
    Id(Option<Vec<(String, String)>>),
    /// `* ENABLED ...`
    Enabled(Vec<String>),
    /// `* ACL mailbox id rights ...`
    Acl {
        /// Mailbox name (UTF-8).
        mailbox: String,
        /// (identifier, rights)
        entries: Vec<(String, String)>,
    },
    /// `* LISTRIGHTS mailbox id required optional...`
    ListRights {
        /// Mailbox name.
        mailbox: String,
        /// Identifier.
        identifier: String,
        /// Always granted.
        required: String,
        /// Optional groups.
        optional: Vec<String>,
    },
    /// `* MYRIGHTS mailbox rights`
    MyRights {
        /// Mailbox name.
        mailbox: String,
        /// Rights.
        rights: String,
    },
    /// `* QUOTA root (resource usage limit ...)`
    Quota {
        /// Root name.
        root: String,
        /// (resource name, usage, limit), STORAGE in KiB.
        resources: Vec<(String, u64, u64)>,
    },
    /// `* QUOTAROOT mailbox root...`
    QuotaRoot {
        /// Mailbox name.
        mailbox: String,
        /// Roots.
        roots: Vec<String>,
    },
}

/// Which LIST-like command a LIST response answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// LIST
    List,
    /// LSUB
    Lsub,
    /// XLIST
    Xlist,
}

/// One item of a FETCH response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchItem {
    /// UID n
    Uid(Uid),
    /// FLAGS (...) with `\Recent` added when `recent`.
    Flags {
        /// The stored flags.
        flags: Flags,
        /// Whether the message is recent in this session.
        recent: bool,
    },
    /// INTERNALDATE "..."
    InternalDate(InternalDate),
    /// RFC822.SIZE n
    Rfc822Size(u64),
    /// ENVELOPE (...)
    Envelope(Arc<MessageSummary>),
    /// BODYSTRUCTURE (...) with extension data
    BodyStructure(Arc<MessageSummary>),
    /// BODY (...) without extension data
    Body(Arc<MessageSummary>),
    /// MODSEQ (n)
    ModSeq(ModSeq),
    /// EMAILID (id) (RFC 8474): the message's GUID in hex.
    EmailId(MessageGuid),
    /// THREADID NIL (RFC 8474: threads are not kept).
    ThreadId,
    /// SAVEDATE "..." or NIL (RFC 8514), Unix seconds in UTC.
    SaveDate(Option<i64>),
    /// PREVIEW "..." (RFC 8970).
    Preview(String),
    /// `BODY[section]<origin>` literal, or RFC822 / RFC822.HEADER / RFC822.TEXT.
    /// The bytes are a slice of the stored message (no copy).
    BodySection {
        /// How to label it.
        label: SectionLabel,
        /// `<origin>` when a partial fetch was asked for (`number64`).
        origin: Option<u64>,
        /// The data; `None` writes NIL.
        data: Option<Bytes>,
    },
    /// `BINARY[part]<origin>` (RFC 3516): decoded bytes, a `literal8` when
    /// they hold NUL.
    Binary {
        /// The part numbers.
        part: Vec<u32>,
        /// `<origin>` when a partial fetch was asked for (`number64`).
        origin: Option<u64>,
        /// The data; `None` writes NIL.
        data: Option<Bytes>,
    },
    /// `BINARY.SIZE[part] n` (RFC 3516).
    BinarySize {
        /// The part numbers.
        part: Vec<u32>,
        /// The size of the decoded part.
        size: u64,
    },
}

/// The label of a body section in a FETCH response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionLabel {
    /// `BODY[section]`
    Body(Section),
    /// `RFC822`
    Rfc822,
    /// `RFC822.HEADER`
    Rfc822Header,
    /// `RFC822.TEXT`
    Rfc822Text,
}

impl StatusResponse {
    /// A tagged OK.
    pub fn ok(tag: &str, code: Option<Code>, text: impl Into<String>) -> Response {
        Response::Status(StatusResponse {
            tag: Some(tag.to_owned()),
            kind: StatusKind::Ok,
            code,
            text: text.into(),
        })
    }

    /// A tagged NO.
    pub fn no(tag: &str, code: Option<Code>, text: impl Into<String>) -> Response {
        Response::Status(StatusResponse {
            tag: Some(tag.to_owned()),
            kind: StatusKind::No,
            code,
            text: text.into(),
        })
    }

    /// A tagged (or, for a line whose tag could not be read, untagged) BAD.
    pub fn bad(tag: Option<&str>, code: Option<Code>, text: impl Into<String>) -> Response {
        Response::Status(StatusResponse {
            tag: tag.map(str::to_owned),
            kind: StatusKind::Bad,
            code,
            text: text.into(),
        })
    }

    /// An untagged status (`* OK [code] text`, `* BYE text`).
    pub fn untagged(kind: StatusKind, code: Option<Code>, text: impl Into<String>) -> Response {
        Response::Status(StatusResponse {
            tag: None,
            kind,
            code,
            text: text.into(),
        })
    }
}
