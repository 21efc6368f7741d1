//! The typed frames of the protocol: kinds, field tags, and conversion of
//! each message to and from a [`Frame`] (`PROTOCOL.md`, "Frame kinds").
//!
//! Decoding reads the tags it knows and ignores every other field, so a
//! newer peer may add fields freely; a missing required field or a value of
//! the wrong type is [`SyncError::Malformed`].

use bytes::{Buf, BufMut, Bytes, BytesMut};
use mailroom_core::replication::{
    AccountState, MailboxHead, MailboxState, ReplicaMessage, ReplicaRecord, StateCrc, SyncPoint,
};
use mailroom_core::{
    Acl, Flags, InternalDate, MailboxId, MailboxName, MessageGuid, ModSeq, QuotaLimits, Rights,
    SpecialUse, Uid, UidValidity,
};

use crate::error::{Result, SyncError};
use crate::wire::{Field, FieldReader, Frame};

/// Frame kinds.
pub mod kind {
    /// Version range and nonce (both directions, first frame).
    pub const HELLO: u16 = 1;
    /// Challenge-response proof (both directions, second frame).
    pub const AUTH: u16 = 2;
    /// A refusal or a failed request, with a code and a reason.
    pub const ERROR: u16 = 4;
    /// The answer to a frame of a kind the receiver does not know.
    pub const UNSUPPORTED: u16 = 5;
    /// A request succeeded.
    pub const OK: u16 = 6;
    /// The primary's count of changes the replica has not got yet
    /// (ignorable, unanswered): what a replica reports as its pending changes.
    pub const PENDING: u16 = 7;
    /// Ask for an account's namespace.
    pub const GET_ACCOUNT: u16 = 16;
    /// An account's namespace.
    pub const ACCOUNT: u16 = 17;
    /// Create a mailbox with a given UIDVALIDITY.
    pub const CREATE: u16 = 18;
    /// Delete a mailbox.
    pub const DELETE: u16 = 19;
    /// Rename a mailbox.
    pub const RENAME: u16 = 20;
    /// Set a mailbox's special use and ACL.
    pub const ATTRIBUTES: u16 = 21;
    /// Replace an account's subscriptions.
    pub const SUBSCRIPTIONS: u16 = 22;
    /// Set an account's quota limits.
    pub const QUOTA: u16 = 23;
    /// A whole application file (mailroomd: its users file), answered OK.
    pub const FILE: u16 = 24;
    /// A batch of records, message bytes and expunges for one mailbox.
    pub const RECORDS: u16 = 32;
    /// The replica's mailbox head after a RECORDS batch.
    pub const APPLIED: u16 = 33;
    /// Ask for a mailbox's record digests.
    pub const GET_DIGESTS: u16 = 34;
    /// A mailbox's record digests.
    pub const DIGESTS: u16 = 35;
    /// Ask for the records a replica changed after a modseq (split-brain merge).
    pub const GET_RECORDS: u16 = 36;
    /// A page of records with their bytes where asked, the answer to GET_RECORDS.
    pub const RECORDS_PAGE: u16 = 37;
}

/// Codes carried by an ERROR frame (tag 1).
pub mod error_code {
    /// The peer's version range does not overlap ours.
    pub const VERSION: u64 = 1;
    /// The challenge-response proof failed.
    pub const AUTH: u64 = 2;
    /// A frame was malformed or not allowed at this point.
    pub const PROTOCOL: u64 = 3;
    /// A message did not match its GUID.
    pub const GUID: u64 = 4;
    /// The store refused the change for good.
    pub const STORE: u64 = 5;
    /// A temporary failure: try again later.
    pub const TEMPORARY: u64 = 6;
}

/// The two roles, as they enter the proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The node that streams changes (connects).
    Primary,
    /// The node that applies them (listens).
    Replica,
}

impl Role {
    /// The role's name on the wire and in the proof.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Replica => "replica",
        }
    }

    fn parse(s: &str) -> Result<Role> {
        match s {
            "primary" => Ok(Role::Primary),
            "replica" => Ok(Role::Replica),
            _ => Err(SyncError::Malformed("unknown role")),
        }
    }
}

/// The length of a handshake nonce.
pub const NONCE_LEN: usize = 32;

/// HELLO: the sender's version range, role and nonce; from the replica
/// also the version chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Lowest version spoken.
    pub min_version: u32,
    /// Highest version spoken.
    pub max_version: u32,
    /// The sender's role.
    pub role: Role,
    /// 32 random bytes, fresh per connection.
    pub nonce: [u8; NONCE_LEN],
    /// The version the replica chose (its HELLO only).
    pub chosen: Option<u32>,
}

impl Hello {
    /// As a frame.
    pub fn to_frame(&self) -> Frame {
        let mut fields = vec![
            Field::uint(1, u64::from(self.min_version)),
            Field::uint(2, u64::from(self.max_version)),
            Field::str(3, self.role.as_str()),
            Field::bytes(4, Bytes::copy_from_slice(&self.nonce)),
        ];
        if let Some(v) = self.chosen {
            fields.push(Field::uint(5, u64::from(v)));
        }
        Frame::new(kind::HELLO, fields)
    }

    /// From a HELLO frame.
    pub fn from_frame(frame: &Frame) -> Result<Hello> {
        expect(frame, kind::HELLO)?;
        let r = FieldReader::new(&frame.fields);
        let nonce = r.bytes(4, "HELLO without nonce")?;
        let nonce: [u8; NONCE_LEN] = nonce[..]
            .try_into()
            .map_err(|_| SyncError::Malformed("HELLO nonce is not 32 bytes"))?;
        let chosen = match r.opt_uint(5)? {
            Some(v) => Some(u32::try_from(v).map_err(|_| SyncError::Malformed("bad version"))?),
            None => None,
        };
        Ok(Hello {
            min_version: r.u32(1, "HELLO without min_version")?,
            max_version: r.u32(2, "HELLO without max_version")?,
            role: Role::parse(r.str(3, "HELLO without role")?)?,
            nonce,
            chosen,
        })
    }
}

/// An ERROR frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorFrame {
    /// One of [`error_code`].
    pub code: u64,
    /// A reason for the log (never message bytes or secrets).
    pub message: String,
    /// With [`error_code::VERSION`]: the sender's version range.
    pub versions: Option<(u32, u32)>,
}

impl ErrorFrame {
    /// The ERROR frame for `error`.
    pub fn from_error(error: &SyncError) -> ErrorFrame {
        let mut message = error.to_string();
        truncate_utf8(&mut message, 1024);
        let versions = match error {
            SyncError::VersionUnsupported {
                ours_min, ours_max, ..
            } => Some((*ours_min, *ours_max)),
            _ => None,
        };
        ErrorFrame {
            code: error.code(),
            message,
            versions,
        }
    }

    /// As a frame.
    pub fn to_frame(&self) -> Frame {
        let mut fields = vec![Field::uint(1, self.code), Field::str(2, &self.message)];
        if let Some((min, max)) = self.versions {
            fields.push(Field::uint(3, u64::from(min)));
            fields.push(Field::uint(4, u64::from(max)));
        }
        Frame::new(kind::ERROR, fields)
    }

    /// From an ERROR frame.
    pub fn from_frame(frame: &Frame) -> Result<ErrorFrame> {
        expect(frame, kind::ERROR)?;
        let r = FieldReader::new(&frame.fields);
        let versions = match (r.opt_uint(3)?, r.opt_uint(4)?) {
            (Some(a), Some(b)) => Some((
                u32::try_from(a).unwrap_or(u32::MAX),
                u32::try_from(b).unwrap_or(u32::MAX),
            )),
            _ => None,
        };
        Ok(ErrorFrame {
            code: r.uint(1, "ERROR without code")?,
            message: r.opt_str(2)?.unwrap_or_default().to_owned(),
            versions,
        })
    }

    /// The error this frame reports, as seen by its receiver (whose own
    /// version range is `ours`).
    pub fn into_error(self, ours: (u32, u32)) -> SyncError {
        match (self.code, self.versions) {
            (error_code::VERSION, Some((peer_min, peer_max))) => SyncError::VersionUnsupported {
                peer_min,
                peer_max,
                ours_min: ours.0,
                ours_max: ours.1,
            },
            _ => SyncError::Remote {
                code: self.code,
                message: self.message,
            },
        }
    }
}

fn truncate_utf8(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

/// Fails unless `frame` is of `want` kind.
pub fn expect(frame: &Frame, want: u16) -> Result<()> {
    if frame.kind == want {
        Ok(())
    } else {
        Err(SyncError::Unexpected("frame of an unexpected kind"))
    }
}

/// A frame of `kind` carrying one uint field (UNSUPPORTED) or none (OK).
pub fn unsupported(kind_received: u16) -> Frame {
    Frame::new(
        kind::UNSUPPORTED,
        vec![Field::uint(1, u64::from(kind_received))],
    )
}

/// An OK frame.
pub fn ok() -> Frame {
    Frame::new(kind::OK, Vec::new())
}

/// PENDING: the primary's pending changes (field 1), sent with the
/// ignorable flag (an older replica skips it) and never answered.
pub fn pending(changes: u64) -> Frame {
    let mut frame = Frame::new(kind::PENDING, vec![Field::uint(1, changes)]);
    frame.flags = crate::wire::FLAG_IGNORABLE;
    frame
}

/// The count a PENDING frame carries.
pub fn pending_from(frame: &Frame) -> Result<u64> {
    expect(frame, kind::PENDING)?;
    FieldReader::new(&frame.fields).uint(1, "PENDING without a count")
}

// ---- shared field groups ----

fn name(s: &str) -> Result<MailboxName> {
    MailboxName::new(s).map_err(|_| SyncError::Malformed("invalid mailbox name"))
}

fn special_use(s: Option<&str>) -> Result<Option<SpecialUse>> {
    match s {
        None | Some("") => Ok(None),
        Some(s) => SpecialUse::parse(s)
            .map(Some)
            .ok_or(SyncError::Malformed("unknown special use")),
    }
}

fn acl_fields(tag: u16, acl: &Acl) -> impl Iterator<Item = Field> + '_ {
    acl.entries.iter().map(move |(id, rights)| {
        Field::group(
            tag,
            vec![
                Field::str(1, id.as_str()),
                Field::str(2, rights.to_string()),
            ],
        )
    })
}

fn acl_from(r: &FieldReader<'_>, tag: u16) -> Result<Acl> {
    let mut acl = Acl::default();
    for g in r.groups(tag)? {
        let id = g.str(1, "ACL entry without identifier")?;
        let rights = Rights::parse(g.str(2, "ACL entry without rights")?)
            .ok_or(SyncError::Malformed("invalid rights"))?;
        acl.set(id, Some(rights));
    }
    Ok(acl)
}

/// A MAILBOXID field: exactly 16 bytes when present.
fn mailbox_id(v: Option<&Bytes>) -> Result<Option<MailboxId>> {
    v.map(|b| {
        <[u8; 16]>::try_from(b.as_ref())
            .map(MailboxId)
            .map_err(|_| SyncError::Malformed("MAILBOXID not 16 bytes"))
    })
    .transpose()
}

fn head_fields(head: &MailboxHead) -> [Field; 5] {
    [
        Field::uint(11, u64::from(head.uid_validity.0)),
        Field::uint(12, u64::from(head.uid_next.0)),
        Field::uint(13, head.highest_modseq.0),
        Field::uint(14, u64::from(head.messages)),
        Field::uint(15, u64::from(head.state_crc.0)),
    ]
}

fn head_from(r: &FieldReader<'_>) -> Result<MailboxHead> {
    Ok(MailboxHead {
        uid_validity: UidValidity(r.u32(11, "head without UIDVALIDITY")?),
        uid_next: Uid(r.u32(12, "head without UIDNEXT")?),
        highest_modseq: ModSeq(r.uint(13, "head without HIGHESTMODSEQ")?),
        messages: r.u32(14, "head without message count")?,
        state_crc: StateCrc(r.u32(15, "head without state CRC")?),
    })
}

/// Which mailbox a request is about: owner, name and the UIDVALIDITY the
/// sender expects (tags 1, 2, 3 in every per-mailbox frame).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxKey {
    /// The owner.
    pub user: String,
    /// The mailbox name.
    pub name: MailboxName,
    /// The UIDVALIDITY expected.
    pub uid_validity: UidValidity,
}

impl MailboxKey {
    fn fields(&self) -> [Field; 3] {
        [
            Field::str(1, self.user.as_str()),
            Field::str(2, self.name.as_str()),
            Field::uint(3, u64::from(self.uid_validity.0)),
        ]
    }

    fn from(r: &FieldReader<'_>) -> Result<MailboxKey> {
        Ok(MailboxKey {
            user: r.str(1, "request without user")?.to_owned(),
            name: name(r.str(2, "request without mailbox")?)?,
            uid_validity: UidValidity(r.u32(3, "request without UIDVALIDITY")?),
        })
    }
}

// ---- application files ----

/// Largest application file carried in a FILE frame (16 MiB).
pub const MAX_FILE: usize = 16 << 20;

/// FILE: the whole content of the application file `name`, with its
/// SHA-256 so the replica installs nothing damaged or cut short.
pub fn file(name: &str, content: bytes::Bytes) -> Frame {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(&content);
    Frame::new(
        kind::FILE,
        vec![
            Field::str(1, name),
            Field::bytes(2, content),
            Field::bytes(3, bytes::Bytes::copy_from_slice(&digest)),
        ],
    )
}

/// Reads a FILE frame: the name and the content, checked against its
/// SHA-256 and [`MAX_FILE`].
pub fn file_from_frame(frame: &Frame) -> Result<(String, bytes::Bytes)> {
    use sha2::Digest;
    expect(frame, kind::FILE)?;
    let r = FieldReader::new(&frame.fields);
    let name = r.str(1, "FILE without a name")?;
    let content = r.bytes(2, "FILE without content")?;
    let digest = r.bytes(3, "FILE without a digest")?;
    if content.len() > MAX_FILE {
        return Err(SyncError::Malformed("FILE larger than 16 MiB"));
    }
    if sha2::Sha256::digest(content).as_slice() != digest.as_ref() {
        return Err(SyncError::Malformed(
            "FILE content does not match its SHA-256",
        ));
    }
    Ok((name.to_owned(), content.clone()))
}

// ---- account ----

/// GET_ACCOUNT.
pub fn get_account(user: &str) -> Frame {
    Frame::new(kind::GET_ACCOUNT, vec![Field::str(1, user)])
}

/// The user of a GET_ACCOUNT.
pub fn get_account_user(frame: &Frame) -> Result<String> {
    Ok(FieldReader::new(&frame.fields)
        .str(1, "GET_ACCOUNT without user")?
        .to_owned())
}

/// ACCOUNT: `None` when the replica has no such user.
pub fn account(user: &str, state: Option<&AccountState>) -> Frame {
    let mut fields = vec![Field::str(1, user)];
    if let Some(state) = state {
        fields.push(Field::uint(2, 1));
        for m in &state.mailboxes {
            let mut g = vec![Field::str(1, m.name.as_str())];
            g.extend(head_fields(&m.head));
            if let Some(u) = m.special_use {
                g.push(Field::str(2, u.as_str()));
            }
            g.extend(acl_fields(3, &m.acl));
            if let Some(p) = m.sync_point {
                g.push(Field::uint(16, u64::from(p.uid_next.0)));
                g.push(Field::uint(17, p.highest_modseq.0));
            }
            if let Some(id) = m.mailbox_id {
                g.push(Field::bytes(18, id.0.to_vec()));
            }
            fields.push(Field::group(3, g));
        }
        for s in &state.subscriptions {
            fields.push(Field::str(4, s.as_str()));
        }
        if let Some(b) = state.quota.storage_bytes {
            fields.push(Field::uint(5, b));
        }
        if let Some(m) = state.quota.messages {
            fields.push(Field::uint(6, m));
        }
    }
    Frame::new(kind::ACCOUNT, fields)
}

/// From an ACCOUNT frame.
pub fn account_from(frame: &Frame) -> Result<Option<AccountState>> {
    expect(frame, kind::ACCOUNT)?;
    let r = FieldReader::new(&frame.fields);
    let user = r.str(1, "ACCOUNT without user")?.to_owned();
    if r.opt_uint(2)?.unwrap_or(0) == 0 {
        return Ok(None);
    }
    let mut mailboxes = Vec::new();
    for g in r.groups(3)? {
        mailboxes.push(MailboxState {
            name: name(g.str(1, "mailbox without name")?)?,
            head: head_from(&g)?,
            special_use: special_use(g.opt_str(2)?)?,
            acl: acl_from(&g, 3)?,
            mailbox_id: mailbox_id(g.opt_bytes(18)?)?,
            sync_point: match (g.opt_uint(16)?, g.opt_uint(17)?) {
                (Some(u), Some(m)) => Some(SyncPoint {
                    uid_next: Uid(
                        u32::try_from(u).map_err(|_| SyncError::Malformed("sync point UID"))?
                    ),
                    highest_modseq: ModSeq(m),
                    namespace: None,
                }),
                _ => None,
            },
        });
    }
    let subscriptions = r
        .strs(4)?
        .into_iter()
        .map(name)
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(AccountState {
        user,
        mailboxes,
        subscriptions,
        quota: QuotaLimits {
            storage_bytes: r.opt_uint(5)?,
            messages: r.opt_uint(6)?,
        },
    }))
}

// ---- namespace ----

/// One namespace change, as the primary sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceRequest {
    /// CREATE.
    Create {
        /// The owner.
        user: String,
        /// The name.
        name: MailboxName,
        /// The UIDVALIDITY.
        uid_validity: UidValidity,
        /// The special use.
        special_use: Option<SpecialUse>,
        /// The MAILBOXID (optional field 5; absent from an older peer).
        mailbox_id: Option<MailboxId>,
    },
    /// DELETE.
    Delete {
        /// The owner.
        user: String,
        /// The name.
        name: MailboxName,
    },
    /// RENAME.
    Rename {
        /// The owner.
        user: String,
        /// The current name.
        from: MailboxName,
        /// The new name.
        to: MailboxName,
    },
    /// ATTRIBUTES.
    Attributes {
        /// The owner.
        user: String,
        /// The name.
        name: MailboxName,
        /// The special use.
        special_use: Option<SpecialUse>,
        /// The whole ACL.
        acl: Acl,
        /// The MAILBOXID the replica's mailbox takes (optional field 6).
        mailbox_id: Option<MailboxId>,
    },
    /// SUBSCRIPTIONS.
    Subscriptions {
        /// The owner.
        user: String,
        /// Every subscription.
        names: Vec<MailboxName>,
    },
    /// QUOTA.
    Quota {
        /// The owner (quota root).
        user: String,
        /// The limits.
        limits: QuotaLimits,
    },
}

impl NamespaceRequest {
    /// As a frame.
    pub fn to_frame(&self) -> Frame {
        match self {
            NamespaceRequest::Create {
                user,
                name,
                uid_validity,
                special_use,
                mailbox_id,
            } => {
                let mut f = vec![
                    Field::str(1, user.as_str()),
                    Field::str(2, name.as_str()),
                    Field::uint(3, u64::from(uid_validity.0)),
                ];
                if let Some(u) = special_use {
                    f.push(Field::str(4, u.as_str()));
                }
                if let Some(id) = mailbox_id {
                    f.push(Field::bytes(5, id.0.to_vec()));
                }
                Frame::new(kind::CREATE, f)
            }
            NamespaceRequest::Delete { user, name } => Frame::new(
                kind::DELETE,
                vec![Field::str(1, user.as_str()), Field::str(2, name.as_str())],
            ),
            NamespaceRequest::Rename { user, from, to } => Frame::new(
                kind::RENAME,
                vec![
                    Field::str(1, user.as_str()),
                    Field::str(2, from.as_str()),
                    Field::str(4, to.as_str()),
                ],
            ),
            NamespaceRequest::Attributes {
                user,
                name,
                special_use,
                acl,
                mailbox_id,
            } => {
                let mut f = vec![Field::str(1, user.as_str()), Field::str(2, name.as_str())];
                if let Some(u) = special_use {
                    f.push(Field::str(4, u.as_str()));
                }
                f.extend(acl_fields(5, acl));
                if let Some(id) = mailbox_id {
                    f.push(Field::bytes(6, id.0.to_vec()));
                }
                Frame::new(kind::ATTRIBUTES, f)
            }
            NamespaceRequest::Subscriptions { user, names } => {
                let mut f = vec![Field::str(1, user.as_str())];
                f.extend(names.iter().map(|n| Field::str(4, n.as_str())));
                Frame::new(kind::SUBSCRIPTIONS, f)
            }
            NamespaceRequest::Quota { user, limits } => {
                let mut f = vec![Field::str(1, user.as_str())];
                if let Some(b) = limits.storage_bytes {
                    f.push(Field::uint(5, b));
                }
                if let Some(m) = limits.messages {
                    f.push(Field::uint(6, m));
                }
                Frame::new(kind::QUOTA, f)
            }
        }
    }

    /// From a frame of one of the namespace kinds.
    pub fn from_frame(frame: &Frame) -> Result<NamespaceRequest> {
        let r = FieldReader::new(&frame.fields);
        let user = r.str(1, "request without user")?.to_owned();
        let mailbox = || -> Result<MailboxName> { name(r.str(2, "request without mailbox")?) };
        Ok(match frame.kind {
            kind::CREATE => NamespaceRequest::Create {
                user,
                name: mailbox()?,
                uid_validity: UidValidity(r.u32(3, "CREATE without UIDVALIDITY")?),
                special_use: special_use(r.opt_str(4)?)?,
                mailbox_id: mailbox_id(r.opt_bytes(5)?)?,
            },
            kind::DELETE => NamespaceRequest::Delete {
                user,
                name: mailbox()?,
            },
            kind::RENAME => NamespaceRequest::Rename {
                user,
                from: mailbox()?,
                to: name(r.str(4, "RENAME without new name")?)?,
            },
            kind::ATTRIBUTES => NamespaceRequest::Attributes {
                user,
                name: mailbox()?,
                special_use: special_use(r.opt_str(4)?)?,
                acl: acl_from(&r, 5)?,
                mailbox_id: mailbox_id(r.opt_bytes(6)?)?,
            },
            kind::SUBSCRIPTIONS => NamespaceRequest::Subscriptions {
                user,
                names: r
                    .strs(4)?
                    .into_iter()
                    .map(name)
                    .collect::<Result<Vec<_>>>()?,
            },
            kind::QUOTA => NamespaceRequest::Quota {
                user,
                limits: QuotaLimits {
                    storage_bytes: r.opt_uint(5)?,
                    messages: r.opt_uint(6)?,
                },
            },
            _ => return Err(SyncError::Unexpected("not a namespace request")),
        })
    }
}

// ---- records ----

/// RECORDS: a batch for one mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Records {
    /// The mailbox.
    pub key: MailboxKey,
    /// Messages (records, with bytes where the replica needs them).
    pub messages: Vec<ReplicaMessage>,
    /// Expunged UIDs with the modseq of their expunge.
    pub expunged: Vec<(Uid, ModSeq)>,
    /// The primary's UIDNEXT, on the last batch of a round.
    pub uid_next: Option<Uid>,
    /// The primary's HIGHESTMODSEQ, on the last batch of a round.
    pub highest_modseq: Option<ModSeq>,
    /// The primary's head as of the batch, on the last batch of a round:
    /// if the replica's head equals it afterwards, both ends record it as
    /// their sync point.
    pub expected: Option<MailboxHead>,
}

/// Bytes a message group takes on the wire without its content.
pub const RECORD_OVERHEAD: usize = 160;

fn record_fields(m: &ReplicaMessage) -> Vec<Field> {
    let r = &m.record;
    let mut g = vec![
        Field::uint(1, u64::from(r.uid.0)),
        Field::uint(2, r.modseq.0),
        Field::int(3, r.internal_date.timestamp),
        Field::int(4, i64::from(r.internal_date.offset_minutes)),
        Field::uint(5, r.size),
        Field::bytes(6, Bytes::copy_from_slice(&r.guid.0)),
        Field::uint(7, u64::from(r.flags.system_bits())),
    ];
    g.extend(r.flags.keywords().map(|k| Field::str(8, k)));
    g.extend(r.seen_by.iter().map(|u| Field::str(9, u.as_str())));
    if let Some(c) = &m.content {
        g.push(Field::bytes(10, c.clone()));
    }
    if let Some(d) = r.save_date {
        g.push(Field::int(11, d));
    }
    g
}

fn record_from(g: &FieldReader<'_>) -> Result<ReplicaMessage> {
    let guid: [u8; 20] = g.bytes(6, "record without GUID")?[..]
        .try_into()
        .map_err(|_| SyncError::Malformed("GUID is not 20 bytes"))?;
    let bits = g.uint(7, "record without flags")?;
    let keywords = g.strs(8)?;
    let mut flags = Flags::from_parts(u8::try_from(bits & 0x1f).unwrap_or(0), []);
    for k in keywords {
        let flag =
            mailroom_core::Flag::parse(k).map_err(|_| SyncError::Malformed("invalid keyword"))?;
        if !matches!(flag, mailroom_core::Flag::Keyword(_)) {
            return Err(SyncError::Malformed("system flag among keywords"));
        }
        flags.insert(flag);
    }
    let offset = g.opt_int(4)?.unwrap_or(0);
    let uid = g.u32(1, "record without UID")?;
    if uid == 0 {
        return Err(SyncError::Malformed("UID 0"));
    }
    Ok(ReplicaMessage {
        record: ReplicaRecord {
            uid: Uid(uid),
            modseq: ModSeq(g.uint(2, "record without modseq")?),
            flags,
            internal_date: InternalDate {
                timestamp: g.opt_int(3)?.unwrap_or(0),
                offset_minutes: i16::try_from(offset)
                    .map_err(|_| SyncError::Malformed("zone offset out of range"))?,
            },
            size: g.uint(5, "record without size")?,
            guid: MessageGuid(guid),
            seen_by: g.strs(9)?.into_iter().map(str::to_owned).collect(),
            save_date: g.opt_int(11)?,
        },
        content: g.opt_bytes(10)?.cloned(),
    })
}

fn pairs_u32_u64(pairs: &[(Uid, ModSeq)]) -> Bytes {
    let mut b = BytesMut::with_capacity(pairs.len() * 12);
    for (u, m) in pairs {
        b.put_u32(u.0);
        b.put_u64(m.0);
    }
    b.freeze()
}

fn pairs_from(b: &Bytes) -> Result<Vec<(Uid, ModSeq)>> {
    if !b.len().is_multiple_of(12) {
        return Err(SyncError::Malformed(
            "expunge list is not a multiple of 12 bytes",
        ));
    }
    let mut b = b.clone();
    let mut out = Vec::with_capacity(b.len() / 12);
    while b.has_remaining() {
        out.push((Uid(b.get_u32()), ModSeq(b.get_u64())));
    }
    Ok(out)
}

impl Records {
    /// As a frame.
    pub fn to_frame(&self) -> Frame {
        let mut f: Vec<Field> = self.key.fields().into();
        for m in &self.messages {
            f.push(Field::group(4, record_fields(m)));
        }
        if !self.expunged.is_empty() {
            f.push(Field::bytes(5, pairs_u32_u64(&self.expunged)));
        }
        if let Some(u) = self.uid_next {
            f.push(Field::uint(6, u64::from(u.0)));
        }
        if let Some(m) = self.highest_modseq {
            f.push(Field::uint(7, m.0));
        }
        if let Some(head) = &self.expected {
            f.push(Field::group(8, head_fields(head).into()));
        }
        Frame::new(kind::RECORDS, f)
    }

    /// From a RECORDS frame.
    pub fn from_frame(frame: &Frame) -> Result<Records> {
        expect(frame, kind::RECORDS)?;
        let r = FieldReader::new(&frame.fields);
        let messages = r
            .groups(4)?
            .iter()
            .map(record_from)
            .collect::<Result<Vec<_>>>()?;
        let expunged = match r.opt_bytes(5)? {
            Some(b) => pairs_from(b)?,
            None => Vec::new(),
        };
        Ok(Records {
            key: MailboxKey::from(&r)?,
            messages,
            expunged,
            uid_next: r
                .opt_uint(6)?
                .map(|v| Uid(u32::try_from(v).unwrap_or(u32::MAX))),
            highest_modseq: r.opt_uint(7)?.map(ModSeq),
            expected: match r.opt_group(8)? {
                Some(g) => Some(head_from(&g)?),
                None => None,
            },
        })
    }
}

/// GET_RECORDS: the replica's records of a mailbox changed after `since`
/// with a UID above `after`, at most `limit`, with bytes for UIDs at or
/// above `content_from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetRecords {
    /// The mailbox.
    pub key: MailboxKey,
    /// Records with a modseq above this.
    pub since: ModSeq,
    /// Records with a UID above this.
    pub after: Uid,
    /// At most this many (the replica may send fewer).
    pub limit: u32,
    /// Message bytes for UIDs at or above this.
    pub content_from: Uid,
}

impl GetRecords {
    /// As a frame.
    pub fn to_frame(&self) -> Frame {
        let mut f: Vec<Field> = self.key.fields().into();
        f.push(Field::uint(4, self.since.0));
        f.push(Field::uint(5, u64::from(self.after.0)));
        f.push(Field::uint(6, u64::from(self.limit)));
        f.push(Field::uint(7, u64::from(self.content_from.0)));
        Frame::new(kind::GET_RECORDS, f)
    }

    /// From a GET_RECORDS frame.
    pub fn from_frame(frame: &Frame) -> Result<GetRecords> {
        expect(frame, kind::GET_RECORDS)?;
        let r = FieldReader::new(&frame.fields);
        Ok(GetRecords {
            key: MailboxKey::from(&r)?,
            since: ModSeq(r.uint(4, "GET_RECORDS without since")?),
            after: Uid(r.u32(5, "GET_RECORDS without after")?),
            limit: r.u32(6, "GET_RECORDS without limit")?,
            content_from: Uid(r.u32(7, "GET_RECORDS without content_from")?),
        })
    }
}

/// RECORDS_PAGE: the answer to GET_RECORDS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordsPage {
    /// The mailbox's head as of the read.
    pub head: MailboxHead,
    /// The records, ascending UID, with bytes where asked.
    pub messages: Vec<ReplicaMessage>,
    /// Whether more records follow (ask again after the last UID).
    pub more: bool,
    /// Expunges after `since` (on the last page only).
    pub expunged: Vec<(Uid, ModSeq)>,
    /// False if expunges that old are no longer remembered.
    pub expunged_complete: bool,
}

impl RecordsPage {
    /// As a frame.
    pub fn to_frame(&self) -> Frame {
        let mut f: Vec<Field> = head_fields(&self.head).into();
        for m in &self.messages {
            f.push(Field::group(4, record_fields(m)));
        }
        if !self.expunged.is_empty() {
            f.push(Field::bytes(5, pairs_u32_u64(&self.expunged)));
        }
        f.push(Field::uint(6, u64::from(self.more)));
        f.push(Field::uint(7, u64::from(self.expunged_complete)));
        Frame::new(kind::RECORDS_PAGE, f)
    }

    /// From a RECORDS_PAGE frame.
    pub fn from_frame(frame: &Frame) -> Result<RecordsPage> {
        expect(frame, kind::RECORDS_PAGE)?;
        let r = FieldReader::new(&frame.fields);
        Ok(RecordsPage {
            head: head_from(&r)?,
            messages: r
                .groups(4)?
                .iter()
                .map(record_from)
                .collect::<Result<Vec<_>>>()?,
            expunged: match r.opt_bytes(5)? {
                Some(b) => pairs_from(b)?,
                None => Vec::new(),
            },
            more: r.uint(6, "RECORDS_PAGE without more")? != 0,
            expunged_complete: r.uint(7, "RECORDS_PAGE without expunged_complete")? != 0,
        })
    }
}

/// APPLIED: the replica's head after a batch, and what it lacked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedFrame {
    /// The head.
    pub head: MailboxHead,
    /// Records that came without bytes for a message the replica lacks.
    pub missing: Vec<Uid>,
}

impl AppliedFrame {
    /// As a frame.
    pub fn to_frame(&self) -> Frame {
        let mut f: Vec<Field> = head_fields(&self.head).into();
        if !self.missing.is_empty() {
            let mut b = BytesMut::with_capacity(self.missing.len() * 4);
            self.missing.iter().for_each(|u| b.put_u32(u.0));
            f.push(Field::bytes(1, b.freeze()));
        }
        Frame::new(kind::APPLIED, f)
    }

    /// From an APPLIED frame.
    pub fn from_frame(frame: &Frame) -> Result<AppliedFrame> {
        expect(frame, kind::APPLIED)?;
        let r = FieldReader::new(&frame.fields);
        let missing = match r.opt_bytes(1)? {
            Some(b) if b.len().is_multiple_of(4) => {
                b.chunks_exact(4).map(|c| Uid(be32(c))).collect()
            }
            Some(_) => return Err(SyncError::Malformed("missing list is not a multiple of 4")),
            None => Vec::new(),
        };
        Ok(AppliedFrame {
            head: head_from(&r)?,
            missing,
        })
    }
}

fn be32(c: &[u8]) -> u32 {
    u32::from_be_bytes([c[0], c[1], c[2], c[3]])
}

/// GET_DIGESTS.
pub fn get_digests(key: &MailboxKey) -> Frame {
    Frame::new(kind::GET_DIGESTS, key.fields().into())
}

/// GET_DIGESTS asking the replica also to read every message and check it
/// against its GUID (field 4 = 1); damaged ones come back in DIGESTS
/// field 2. An older replica ignores the field and reports none.
pub fn get_digests_checked(key: &MailboxKey) -> Frame {
    let mut f: Vec<Field> = key.fields().into();
    f.push(Field::uint(4, 1));
    Frame::new(kind::GET_DIGESTS, f)
}

/// Whether a GET_DIGESTS asks for the message bytes to be checked.
pub fn get_digests_check_content(frame: &Frame) -> Result<bool> {
    Ok(FieldReader::new(&frame.fields).opt_uint(4)?.unwrap_or(0) != 0)
}

/// The mailbox of a GET_DIGESTS.
pub fn get_digests_key(frame: &Frame) -> Result<MailboxKey> {
    MailboxKey::from(&FieldReader::new(&frame.fields))
}

/// The mailbox of a RECORDS or GET_DIGESTS frame, for logs.
pub fn key_of(frame: &Frame) -> Result<MailboxKey> {
    MailboxKey::from(&FieldReader::new(&frame.fields))
}

/// DIGESTS: a head and every record's (UID, record CRC).
pub fn digests(head: &MailboxHead, digests: &[(Uid, u32)]) -> Frame {
    let mut f: Vec<Field> = head_fields(head).into();
    let mut b = BytesMut::with_capacity(digests.len() * 8);
    for (u, c) in digests {
        b.put_u32(u.0);
        b.put_u32(*c);
    }
    f.push(Field::bytes(1, b.freeze()));
    Frame::new(kind::DIGESTS, f)
}

/// DIGESTS with the UIDs whose bytes failed their GUID check (field 2).
pub fn digests_with_damage(head: &MailboxHead, list: &[(Uid, u32)], damaged: &[Uid]) -> Frame {
    let mut frame = digests(head, list);
    if !damaged.is_empty() {
        let mut b = BytesMut::with_capacity(damaged.len() * 4);
        damaged.iter().for_each(|u| b.put_u32(u.0));
        frame.fields.push(Field::bytes(2, b.freeze()));
    }
    frame
}

/// The damaged UIDs of a DIGESTS frame (none if the field is absent).
pub fn digests_damaged(frame: &Frame) -> Result<Vec<Uid>> {
    match FieldReader::new(&frame.fields).opt_bytes(2)? {
        None => Ok(Vec::new()),
        Some(b) if b.len().is_multiple_of(4) => {
            Ok(b.chunks_exact(4).map(|c| Uid(be32(c))).collect())
        }
        Some(_) => Err(SyncError::Malformed("damaged list is not a multiple of 4")),
    }
}

/// From a DIGESTS frame.
pub fn digests_from(frame: &Frame) -> Result<(MailboxHead, Vec<(Uid, u32)>)> {
    expect(frame, kind::DIGESTS)?;
    let r = FieldReader::new(&frame.fields);
    let b = r.bytes(1, "DIGESTS without digests")?;
    if !b.len().is_multiple_of(8) {
        return Err(SyncError::Malformed("digest list is not a multiple of 8"));
    }
    let list = b
        .chunks_exact(8)
        .map(|c| (Uid(be32(&c[..4])), be32(&c[4..])))
        .collect();
    Ok((head_from(&r)?, list))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mailroom_core::{Flag, Right};

    #[test]
    fn exact_bytes_of_a_pending_frame() {
        // PROTOCOL.md's example: PENDING, ignorable, 3 pending changes.
        let f = pending(3);
        let b = f.to_bytes(1024).unwrap();
        let want = [
            0, 0, 0, 18, 0, 7, 1, 0, 1, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 3, 0xfe, 0xfb, 0x73,
            0x15,
        ];
        assert_eq!(&b[..], &want[..]);
        assert_eq!(pending_from(&f).unwrap(), 3);
        assert!(pending_from(&ok()).is_err());
    }

    #[test]
    fn file_round_trip_and_damage() {
        let f = file("users.toml", Bytes::from_static(b"[users.a]\n"));
        let (name, content) = file_from_frame(&f).unwrap();
        assert_eq!(
            (name.as_str(), &content[..]),
            ("users.toml", &b"[users.a]\n"[..])
        );
        let mut bad = f.clone();
        bad.fields[1] = Field::bytes(2, Bytes::from_static(b"[users.b]\n"));
        assert!(matches!(
            file_from_frame(&bad),
            Err(SyncError::Malformed(m)) if m.contains("SHA-256")
        ));
        bad.fields.truncate(2);
        assert!(file_from_frame(&bad).is_err());
    }

    #[test]
    fn records_round_trip() {
        let content = Bytes::from_static(b"Subject: x\r\n\r\nhi\r\n");
        let mut flags: Flags = [Flag::Seen, Flag::Keyword("$Label1".into())]
            .into_iter()
            .collect();
        flags.insert(Flag::Flagged);
        let rec = Records {
            key: MailboxKey {
                user: "alice".into(),
                name: MailboxName::new("Archive/2026").unwrap(),
                uid_validity: UidValidity(77),
            },
            messages: vec![ReplicaMessage {
                record: ReplicaRecord {
                    uid: Uid(3),
                    modseq: ModSeq(9),
                    flags,
                    internal_date: InternalDate {
                        timestamp: -5,
                        offset_minutes: -330,
                    },
                    size: content.len() as u64,
                    guid: MessageGuid::of(&content),
                    seen_by: vec!["bob".into()],
                    save_date: Some(1_700_000_000),
                },
                content: Some(content),
            }],
            expunged: vec![(Uid(1), ModSeq(4)), (Uid(2), ModSeq(8))],
            uid_next: Some(Uid(4)),
            highest_modseq: Some(ModSeq(9)),
            expected: Some(MailboxHead {
                uid_validity: UidValidity(77),
                uid_next: Uid(4),
                highest_modseq: ModSeq(9),
                messages: 1,
                state_crc: StateCrc(5),
            }),
        };
        assert_eq!(Records::from_frame(&rec.to_frame()).unwrap(), rec);
        let page = RecordsPage {
            head: rec.expected.unwrap(),
            messages: rec.messages.clone(),
            more: true,
            expunged: rec.expunged.clone(),
            expunged_complete: false,
        };
        assert_eq!(RecordsPage::from_frame(&page.to_frame()).unwrap(), page);
        let get = GetRecords {
            key: rec.key.clone(),
            since: ModSeq(3),
            after: Uid(0),
            limit: 10,
            content_from: Uid(2),
        };
        assert_eq!(GetRecords::from_frame(&get.to_frame()).unwrap(), get);
    }

    #[test]
    fn account_round_trip() {
        let mut acl = Acl::default();
        let mut rights = Rights::none();
        rights.insert(Right::Lookup);
        rights.insert(Right::Read);
        acl.set("bob", Some(rights));
        let state = AccountState {
            user: "alice".into(),
            mailboxes: vec![MailboxState {
                name: MailboxName::new("Sent").unwrap(),
                head: MailboxHead {
                    uid_validity: UidValidity(5),
                    uid_next: Uid(10),
                    highest_modseq: ModSeq(20),
                    messages: 9,
                    state_crc: StateCrc(0xdead_beef),
                },
                special_use: Some(SpecialUse::Sent),
                acl,
                mailbox_id: Some(MailboxId([7; 16])),
                sync_point: Some(SyncPoint {
                    uid_next: Uid(10),
                    highest_modseq: ModSeq(19),
                    namespace: None,
                }),
            }],
            subscriptions: vec![MailboxName::inbox()],
            quota: QuotaLimits {
                storage_bytes: Some(1000),
                messages: None,
            },
        };
        let f = account("alice", Some(&state));
        assert_eq!(account_from(&f).unwrap(), Some(state));
        assert_eq!(account_from(&account("x", None)).unwrap(), None);
    }

    #[test]
    fn create_carries_the_mailbox_id_and_an_older_peer_skips_it() {
        let create = |mailbox_id| NamespaceRequest::Create {
            user: "alice".into(),
            name: MailboxName::new("Archive").unwrap(),
            uid_validity: UidValidity(9),
            special_use: Some(SpecialUse::Archive),
            mailbox_id,
        };
        let with = create(Some(MailboxId([0xab; 16])));
        let f = with.to_frame();
        assert_eq!(NamespaceRequest::from_frame(&f).unwrap(), with);
        // an older primary sends no field 5: the replica makes its own id
        let without = create(None);
        let f = without.to_frame();
        assert!(f.fields.iter().all(|x| x.tag != 5));
        assert_eq!(NamespaceRequest::from_frame(&f).unwrap(), without);
        // a MAILBOXID that is not 16 bytes is malformed, not truncated
        let mut f = create(None).to_frame();
        f.fields.push(Field::bytes(5, vec![1u8; 15]));
        assert!(matches!(
            NamespaceRequest::from_frame(&f),
            Err(SyncError::Malformed(_))
        ));
        // ATTRIBUTES gives an existing replica mailbox the primary's id
        let attributes = NamespaceRequest::Attributes {
            user: "alice".into(),
            name: MailboxName::inbox(),
            special_use: None,
            acl: Acl::default(),
            mailbox_id: Some(MailboxId([0xcd; 16])),
        };
        assert_eq!(
            NamespaceRequest::from_frame(&attributes.to_frame()).unwrap(),
            attributes
        );
    }
}
