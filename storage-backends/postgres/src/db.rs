//! Conversions between rows and core types, and error mapping.

use mailroom_core::{
    Error, Flag, Flags, InternalDate, MessageGuid, MessageMeta, ModSeq, Uid, UidValidity,
};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

/// Statement parameters, as `tokio_postgres` takes them.
pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Runs statements through the connection's statement cache (deadpool's,
/// one per pooled connection): a statement's text is parsed and described
/// once per connection, and every later run is one round trip (Bind and
/// Execute) instead of two (Parse and Describe, then Bind and Execute) and
/// a Close. Implemented for the pool's connections
/// ([`deadpool_postgres::Object`]) and their transactions
/// ([`deadpool_postgres::Transaction`]).
///
/// Only fixed statement texts go through here (a literal, or a `format!`
/// of constants and of a choice among a few fixed parts): the cache keeps
/// every text it sees for the life of the connection, and each is a
/// prepared statement held by the server. The store never puts a value
/// into a statement's text; values are parameters.
pub(crate) trait Cached: deadpool_postgres::GenericClient {
    /// `query` of the cached statement `sql`.
    fn cached_query<'a>(
        &'a self,
        sql: &'a str,
        params: Params<'a>,
    ) -> impl Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send + 'a {
        async move {
            let statement = self.prepare_cached(sql).await?;
            self.query(&statement, params).await
        }
    }

    /// `query_one` of the cached statement `sql`.
    fn cached_query_one<'a>(
        &'a self,
        sql: &'a str,
        params: Params<'a>,
    ) -> impl Future<Output = Result<Row, tokio_postgres::Error>> + Send + 'a {
        async move {
            let statement = self.prepare_cached(sql).await?;
            self.query_one(&statement, params).await
        }
    }

    /// `query_opt` of the cached statement `sql`.
    fn cached_query_opt<'a>(
        &'a self,
        sql: &'a str,
        params: Params<'a>,
    ) -> impl Future<Output = Result<Option<Row>, tokio_postgres::Error>> + Send + 'a {
        async move {
            let statement = self.prepare_cached(sql).await?;
            self.query_opt(&statement, params).await
        }
    }

    /// `execute` of the cached statement `sql`.
    fn cached_execute<'a>(
        &'a self,
        sql: &'a str,
        params: Params<'a>,
    ) -> impl Future<Output = Result<u64, tokio_postgres::Error>> + Send + 'a {
        async move {
            let statement = self.prepare_cached(sql).await?;
            self.execute(&statement, params).await
        }
    }
}

impl<C: deadpool_postgres::GenericClient> Cached for C {}

/// The columns [`meta`] reads, for a `messages` row aliased `x` and a
/// viewer whose name is parameter `$V` (replaced by the caller).
pub(crate) const META_COLUMNS: &str = "x.uid, x.modseq, x.flags, x.keywords, x.internal_date, \
     x.date_offset, x.size, x.guid, \
     CASE WHEN $OWNER THEN (x.flags & 1) <> 0 \
          ELSE EXISTS (SELECT 1 FROM seen s WHERE s.mailbox_id = x.mailbox_id \
                       AND s.viewer = $V AND s.uid = x.uid) END, \
     x.save_date";

/// [`META_COLUMNS`] for a viewer given as parameter `param` (1-based) and
/// an owner flag known in advance.
pub(crate) fn meta_columns(owner: bool, param: usize) -> String {
    META_COLUMNS
        .replace("$OWNER", if owner { "true" } else { "false" })
        .replace("$V", &format!("${param}"))
}

/// A message row (see [`META_COLUMNS`]) as the viewer sees it.
pub(crate) fn meta(row: &Row) -> Result<MessageMeta, Error> {
    let bits: i16 = row.try_get(2).map_err(db)?;
    let keywords: Vec<String> = row.try_get(3).map_err(db)?;
    let viewer_seen: bool = row.try_get(8).map_err(db)?;
    let mut flags = Flags::from_parts((bits as u8) & !Flags::SEEN, keywords);
    if viewer_seen {
        flags.insert(Flag::Seen);
    }
    Ok(MessageMeta {
        uid: uid(row.try_get(0).map_err(db)?),
        flags,
        modseq: ModSeq(row.try_get::<_, i64>(1).map_err(db)? as u64),
        internal_date: InternalDate {
            timestamp: row.try_get(4).map_err(db)?,
            offset_minutes: row.try_get(5).map_err(db)?,
        },
        size: row.try_get::<_, i64>(6).map_err(db)? as u64,
        guid: guid(row.try_get(7).map_err(db)?)?,
        // Set by the insert, in the database's clock (null: a row from
        // before schema version 2).
        save_date: row.try_get::<_, Option<i64>>(9).map_err(db)?,
    })
}

/// The MAILBOXID (RFC 8474) of mailbox row `id`: 16 bytes of the SHA-1
/// of the row's `bigserial` key, which is never reused (RENAME keeps the
/// row; a mailbox made again gets a new row).
pub(crate) fn mailbox_id(id: i64) -> mailroom_core::MailboxId {
    use sha1::Digest as _;
    let d = sha1::Sha1::digest([b"mailroom-pg-mailbox".as_slice(), &id.to_be_bytes()].concat());
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    mailroom_core::MailboxId(out)
}

/// The MAILBOXID of mailbox row `id` whose `object_id` column is
/// `object_id`: the column if set (a replica keeps its primary's), else
/// [`mailbox_id`].
pub(crate) fn object_id(id: i64, object_id: Option<&[u8]>) -> mailroom_core::MailboxId {
    match object_id.and_then(|b| <[u8; 16]>::try_from(b).ok()) {
        Some(b) => mailroom_core::MailboxId(b),
        None => mailbox_id(id),
    }
}

/// The `state_crc` of a `messages` row
/// ([`ReplicaRecord::state_crc`](mailroom_core::replication::ReplicaRecord::state_crc)
/// of the row as the owner sees it), as the `integer` column stores it.
pub(crate) fn record_crc(
    uid: i64,
    modseq: i64,
    flags: &Flags,
    date: InternalDate,
    size: i64,
    guid: &MessageGuid,
) -> i32 {
    let record = mailroom_core::replication::ReplicaRecord {
        uid: self::uid(uid),
        modseq: ModSeq(modseq.max(0) as u64),
        flags: flags.clone(),
        internal_date: date,
        size: size.max(0) as u64,
        guid: *guid,
        seen_by: Vec::new(),
        save_date: None,
    };
    record.state_crc() as i32
}

/// Keywords as a PostgreSQL array literal (`{"a","b"}`), for statements
/// that pass one keyword list per row as one `text` element.
pub(crate) fn keywords_literal<'a>(keywords: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::from("{");
    for (i, k) in keywords.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for c in k.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    out.push('}');
    out
}

pub(crate) fn uid(v: i64) -> Uid {
    Uid(u32::try_from(v).unwrap_or(u32::MAX))
}

pub(crate) fn uid_validity(v: i64) -> UidValidity {
    UidValidity(u32::try_from(v).unwrap_or(u32::MAX))
}

pub(crate) fn guid(b: &[u8]) -> Result<MessageGuid, Error> {
    let arr: [u8; 20] = b
        .try_into()
        .map_err(|_| Error::Corruption("a stored GUID is not 20 bytes".into()))?;
    Ok(MessageGuid(arr))
}

pub(crate) fn uids_param(uids: &[Uid]) -> Vec<i64> {
    let mut v: Vec<i64> = uids.iter().map(|u| i64::from(u.0)).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Whether a statement failed on a unique constraint.
pub(crate) fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// Whether a statement failed on a foreign key.
pub(crate) fn is_fk_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION)
}

/// A database failure as the core error: a connection that is gone or
/// could not be had, or a server shutting down, is [`Error::Unavailable`]
/// (IMAP `NO [UNAVAILABLE]`, LMTP 451 4.3.0: retry later); a failed
/// statement is the server's fault ([`Error::Backend`]).
pub(crate) fn db(e: tokio_postgres::Error) -> Error {
    if e.is_closed() || e.code().is_none() {
        tracing::warn!(error = %e, "PostgreSQL unavailable");
        return unavailable();
    }
    let state = e.code().map(|c| c.code().to_owned()).unwrap_or_default();
    match e.code() {
        Some(c) if *c == SqlState::ADMIN_SHUTDOWN || *c == SqlState::CANNOT_CONNECT_NOW => {
            tracing::warn!(error = %e, "PostgreSQL shutting down");
            unavailable()
        }
        _ => {
            tracing::error!(error = %e, state, "PostgreSQL statement failed");
            Error::Backend(format!("PostgreSQL error {state}"))
        }
    }
}

/// A read-only transaction that sees one snapshot throughout
/// (REPEATABLE READ): reads that must agree with each other.
pub(crate) async fn snapshot_tx(
    client: &mut deadpool_postgres::Object,
) -> Result<deadpool_postgres::Transaction<'_>, Error> {
    client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(db)
}

/// The pool could not hand out a connection.
pub(crate) fn pool(e: deadpool_postgres::PoolError) -> Error {
    tracing::warn!(error = %e, "no PostgreSQL connection");
    unavailable()
}

/// The store's "database unavailable" error.
pub(crate) fn unavailable() -> Error {
    Error::Unavailable("mail storage database unavailable".into())
}
