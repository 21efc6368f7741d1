//! Message bodies: stored once per GUID per account, inline up to
//! [`INLINE_MAX`] bytes, in [`CHUNK`]-byte rows above; checked against
//! their GUID on every read.

use bytes::{Bytes, BytesMut};
use deadpool_postgres::Transaction;
use mailroom_core::{Error, MessageGuid, MessageSummary};

use crate::db::{Cached, db};
use crate::{CHUNK, INLINE_MAX};

/// Stores a body (and its summary) unless the account has it already.
pub(crate) async fn put(
    tx: &Transaction<'_>,
    account: i64,
    guid: &MessageGuid,
    content: &Bytes,
) -> Result<(), Error> {
    let g: &[u8] = &guid.0;
    let exists = tx
        .cached_query_opt(
            "SELECT 1 FROM bodies WHERE account_id = $1 AND guid = $2",
            &[&account, &g],
        )
        .await
        .map_err(db)?
        .is_some();
    if exists {
        return Ok(());
    }
    write(tx, account, guid, content, false).await
}

/// Writes a body row (over one the account has when `replace`, else not
/// at all if it has one) and, if that wrote a row and the body is over
/// [`INLINE_MAX`], its chunks.
async fn write(
    tx: &Transaction<'_>,
    account: i64,
    guid: &MessageGuid,
    content: &Bytes,
    replace: bool,
) -> Result<(), Error> {
    let insert = if replace {
        "INSERT INTO bodies (account_id, guid, size, summary, content) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (account_id, guid) DO UPDATE \
         SET size = EXCLUDED.size, summary = EXCLUDED.summary, content = EXCLUDED.content"
    } else {
        "INSERT INTO bodies (account_id, guid, size, summary, content) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT DO NOTHING"
    };
    let g: &[u8] = &guid.0;
    let summary = mailroom_core::mime::codec::encode(&MessageSummary::parse(content));
    let size = content.len() as i64;
    let inline: Option<&[u8]> = (content.len() <= INLINE_MAX).then_some(&content[..]);
    let written = tx
        .cached_execute(insert, &[&account, &g, &size, &summary, &inline])
        .await
        .map_err(db)?;
    if written == 1 && inline.is_none() {
        for (seq, chunk) in content.chunks(CHUNK).enumerate() {
            let seq = seq as i32;
            tx.cached_execute(
                "INSERT INTO body_chunks (account_id, guid, seq, data) VALUES ($1, $2, $3, $4)",
                &[&account, &g, &seq, &chunk],
            )
            .await
            .map_err(db)?;
        }
    }
    Ok(())
}

/// Stores a body as [`put`] does, and if the account has it already but its
/// stored bytes no longer match the GUID, replaces them (replication's
/// repair of a damaged body: `Replication::apply_messages`).
pub(crate) async fn put_checked(
    tx: &Transaction<'_>,
    account: i64,
    guid: &MessageGuid,
    content: &Bytes,
) -> Result<(), Error> {
    match get(tx, account, guid).await {
        Ok(_) => return Ok(()),
        Err(Error::Corruption(_)) => {}
        Err(e) => return Err(e),
    }
    let g: &[u8] = &guid.0;
    // The damaged copy (or none) goes; the body row itself stays, so the
    // messages that refer to it keep their foreign key.
    tx.cached_execute(
        "DELETE FROM body_chunks WHERE account_id = $1 AND guid = $2",
        &[&account, &g],
    )
    .await
    .map_err(db)?;
    write(tx, account, guid, content, true).await
}

/// Reads a body and checks it against its GUID.
pub(crate) async fn get<C: Cached>(
    client: &C,
    account: i64,
    guid: &MessageGuid,
) -> Result<Bytes, Error> {
    let g: &[u8] = &guid.0;
    let row = client
        .cached_query_opt(
            "SELECT size, content FROM bodies WHERE account_id = $1 AND guid = $2",
            &[&account, &g],
        )
        .await
        .map_err(db)?
        .ok_or_else(|| Error::Corruption(format!("body {guid} is missing")))?;
    let size: i64 = row.get(0);
    let bytes = match row.get::<_, Option<Vec<u8>>>(1) {
        Some(v) => Bytes::from(v),
        None => chunks(client, account, guid, size).await?,
    };
    checked(bytes, size, guid, account)
}

/// The chunks of a body over [`INLINE_MAX`], joined.
async fn chunks<C: Cached>(
    client: &C,
    account: i64,
    guid: &MessageGuid,
    size: i64,
) -> Result<Bytes, Error> {
    let g: &[u8] = &guid.0;
    let rows = client
        .cached_query(
            "SELECT data FROM body_chunks WHERE account_id = $1 AND guid = $2 ORDER BY seq",
            &[&account, &g],
        )
        .await
        .map_err(db)?;
    let mut buf = BytesMut::with_capacity(usize::try_from(size).unwrap_or(0));
    for r in rows {
        buf.extend_from_slice(r.get::<_, &[u8]>(0));
    }
    Ok(buf.freeze())
}

/// `bytes` if they are `size` long and hash to `guid`, else `Corruption`
/// (logged: a body that does not match is never served).
fn checked(bytes: Bytes, size: i64, guid: &MessageGuid, account: i64) -> Result<Bytes, Error> {
    if bytes.len() as i64 != size || MessageGuid::of(&bytes) != *guid {
        tracing::error!(%guid, account, "a stored body does not match its GUID; not served");
        return Err(Error::Corruption(format!(
            "body {guid} does not match its GUID"
        )));
    }
    Ok(bytes)
}

/// The message row `uid` of mailbox row `mailbox` with its body row: the
/// GUID, the size, the inline bytes (null above [`INLINE_MAX`]) and the
/// owning account.
const MESSAGE_BODY: &str = "SELECT x.guid, b.size, b.content, x.account_id, b.guid IS NOT NULL \
     FROM messages x LEFT JOIN bodies b ON b.account_id = x.account_id AND b.guid = x.guid \
     WHERE x.mailbox_id = $1 AND x.uid = $2";

/// The bytes of message `uid` of mailbox row `mailbox`, checked against
/// its GUID; `NoSuchMessage` if the mailbox does not hold it (any more).
///
/// The message row, its body row and, above [`INLINE_MAX`], the chunks are
/// read in one snapshot (one statement; the chunks in a read-only
/// REPEATABLE READ transaction with the statement again): read one after
/// the other, an expunge and the collection of the body between them
/// would look like a missing or damaged body (`Corruption`) instead of a
/// message that is gone.
pub(crate) async fn of_message(
    client: &mut deadpool_postgres::Object,
    mailbox: i64,
    uid: mailroom_core::Uid,
) -> Result<Bytes, Error> {
    let u = i64::from(uid.0);
    let Some(row) = client
        .cached_query_opt(MESSAGE_BODY, &[&mailbox, &u])
        .await
        .map_err(db)?
    else {
        return Err(Error::NoSuchMessage(uid));
    };
    let guid = crate::db::guid(row.get(0))?;
    let account: i64 = row.get(3);
    if !row.get::<_, bool>(4) {
        return Err(Error::Corruption(format!("body {guid} is missing")));
    }
    let size: i64 = row.get(1);
    if let Some(v) = row.get::<_, Option<Vec<u8>>>(2) {
        return checked(Bytes::from(v), size, &guid, account);
    }
    let tx = crate::db::snapshot_tx(client).await?;
    if tx
        .cached_query_opt(MESSAGE_BODY, &[&mailbox, &u])
        .await
        .map_err(db)?
        .is_none()
    {
        return Err(Error::NoSuchMessage(uid));
    }
    let bytes = chunks(&tx, account, &guid, size).await?;
    tx.commit().await.map_err(db)?;
    checked(bytes, size, &guid, account)
}

/// Removes the account's bodies among `guids` that no message uses any
/// more. Runs after the change that freed them committed, in its own
/// transaction; a body taken again meanwhile stays (the foreign key of
/// `messages` refuses its deletion, which is not an error here).
pub(crate) async fn collect(client: &deadpool_postgres::Object, account: i64, guids: Vec<Vec<u8>>) {
    if guids.is_empty() {
        return;
    }
    let r = client
        .cached_execute(
            "DELETE FROM bodies b WHERE b.account_id = $1 AND b.guid = ANY($2) \
             AND NOT EXISTS (SELECT 1 FROM messages m \
                             WHERE m.account_id = b.account_id AND m.guid = b.guid)",
            &[&account, &guids],
        )
        .await;
    if let Err(e) = r
        && !crate::db::is_fk_violation(&e)
    {
        tracing::warn!(error = %e, "collecting unused bodies failed (retried at the next expunge)");
    }
}
