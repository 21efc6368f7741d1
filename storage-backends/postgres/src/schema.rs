//! The schema and its migrations (described column by column in SCHEMA.md).
//!
//! `mailroom_schema` holds the version the database is at; the migrations
//! run in one transaction under an advisory lock, so two frontends starting
//! at once migrate once and the second waits, then finds nothing to do.

use tokio_postgres::Client;

use crate::PgStoreError;

/// The migrations, in order: the database is at version `n` once the first
/// `n` have run.
const MIGRATIONS: &[&str] = &[
    // 1: accounts, mailboxes, bodies, messages, expunges, seen, ACLs,
    // subscriptions.
    r#"
CREATE TABLE accounts (
    id             bigserial PRIMARY KEY,
    name           text NOT NULL UNIQUE,
    initialised    boolean NOT NULL DEFAULT false,
    used_bytes     bigint NOT NULL DEFAULT 0,
    used_messages  bigint NOT NULL DEFAULT 0,
    limit_bytes    bigint,
    limit_messages bigint
);
CREATE SEQUENCE uid_validity_seq MINVALUE 1 MAXVALUE 4294967295 CYCLE;
SELECT setval('uid_validity_seq', GREATEST(1, (extract(epoch FROM now())::bigint) % 4294967295));
CREATE TABLE mailboxes (
    id             bigserial PRIMARY KEY,
    account_id     bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,
    name           text NOT NULL,
    uid_validity   bigint NOT NULL,
    uid_next       bigint NOT NULL DEFAULT 1,
    highest_modseq bigint NOT NULL DEFAULT 1,
    recent_from    bigint NOT NULL DEFAULT 1,
    special_use    text,
    UNIQUE (account_id, name)
);
CREATE TABLE bodies (
    account_id bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,
    guid       bytea NOT NULL,
    size       bigint NOT NULL,
    summary    bytea NOT NULL,
    content    bytea,
    PRIMARY KEY (account_id, guid)
);
CREATE TABLE body_chunks (
    account_id bigint NOT NULL,
    guid       bytea NOT NULL,
    seq        integer NOT NULL,
    data       bytea NOT NULL,
    PRIMARY KEY (account_id, guid, seq),
    FOREIGN KEY (account_id, guid) REFERENCES bodies ON DELETE CASCADE
);
ALTER TABLE body_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE TABLE messages (
    mailbox_id    bigint NOT NULL REFERENCES mailboxes ON DELETE CASCADE,
    uid           bigint NOT NULL,
    modseq        bigint NOT NULL,
    flags         smallint NOT NULL,
    keywords      text[] NOT NULL,
    internal_date bigint NOT NULL,
    date_offset   smallint NOT NULL,
    size          bigint NOT NULL,
    account_id    bigint NOT NULL,
    guid          bytea NOT NULL,
    PRIMARY KEY (mailbox_id, uid),
    FOREIGN KEY (account_id, guid) REFERENCES bodies
);
CREATE INDEX messages_modseq ON messages (mailbox_id, modseq);
CREATE INDEX messages_body ON messages (account_id, guid);
CREATE TABLE expunged (
    mailbox_id bigint NOT NULL REFERENCES mailboxes ON DELETE CASCADE,
    uid        bigint NOT NULL,
    modseq     bigint NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
);
CREATE TABLE seen (
    mailbox_id bigint NOT NULL REFERENCES mailboxes ON DELETE CASCADE,
    viewer     text NOT NULL,
    uid        bigint NOT NULL,
    PRIMARY KEY (mailbox_id, viewer, uid)
);
CREATE TABLE acl (
    mailbox_id bigint NOT NULL REFERENCES mailboxes ON DELETE CASCADE,
    identifier text NOT NULL,
    rights     text NOT NULL,
    PRIMARY KEY (mailbox_id, identifier)
);
CREATE INDEX acl_identifier ON acl (identifier);
CREATE TABLE subscriptions (
    account text NOT NULL,
    name    text NOT NULL,
    PRIMARY KEY (account, name)
);
"#,
    // 2: SAVEDATE (RFC 8514) per message row; null for rows from before.
    r#"
ALTER TABLE messages ADD COLUMN save_date bigint;
"#,
    // 3: users (the `Authenticator` of `users::PgUsers`).
    r#"
CREATE TABLE users (
    name     text PRIMARY KEY,
    domain   text NOT NULL,
    password text NOT NULL,
    scram    text,
    roles    text[] NOT NULL DEFAULT '{}'
             CHECK (roles <@ ARRAY['domain-admin', 'server-admin']::text[]),
    CHECK (name LIKE '%@' || domain)
);
CREATE INDEX users_domain ON users (domain);
"#,
    // 4: expunges by modseq: every refresh of a mailbox view (and
    // `changes_since`) reads the expunges above a modseq.
    r#"
CREATE INDEX expunged_modseq ON expunged (mailbox_id, modseq);
"#,
    // 5: replication (`Replication`): the state CRC of every message row
    // and of every mailbox (kept by the triggers below, so that no write
    // path can forget it; null for rows from before, computed by the store
    // on first need), each account's change position, the MAILBOXID a
    // replica keeps from its primary, a generation that tells views a
    // replica wrote below their HIGHESTMODSEQ, and the sync points.
    r#"
ALTER TABLE messages ADD COLUMN state_crc integer;
ALTER TABLE mailboxes ADD COLUMN state_crc integer;
ALTER TABLE mailboxes ALTER COLUMN state_crc SET DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN object_id bytea CHECK (octet_length(object_id) = 16);
ALTER TABLE mailboxes ADD COLUMN generation bigint NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN changed_xid bigint NOT NULL DEFAULT 0;
ALTER TABLE accounts ALTER COLUMN changed_xid SET DEFAULT pg_current_xact_id()::text::bigint;
CREATE INDEX accounts_changed ON accounts (changed_xid);
CREATE TABLE sync_points (
    mailbox_id             bigint PRIMARY KEY REFERENCES mailboxes ON DELETE CASCADE,
    uid_validity           bigint NOT NULL,
    point_uid_next         bigint,
    point_highest_modseq   bigint,
    point_namespace        bigint,
    pending_uid_next       bigint,
    pending_highest_modseq bigint,
    pending_messages       bigint,
    pending_state_crc      bigint,
    pending_namespace      bigint
);
ALTER TABLE mailboxes ADD COLUMN messages bigint NOT NULL DEFAULT 0;
UPDATE mailboxes m SET messages = (SELECT count(*) FROM messages x WHERE x.mailbox_id = m.id);
CREATE FUNCTION mailroom_crc_delta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Each mailbox whose rows changed: XOR the CRCs of the rows gone and
    -- of the rows come into its state CRC, and count them. A row without
    -- a CRC makes its mailbox's unknown (null) until the store computes
    -- it again.
    IF TG_OP = 'INSERT' THEN
        UPDATE mailboxes m SET state_crc = m.state_crc # d.x, messages = m.messages + d.n
        FROM (SELECT mailbox_id, count(*) AS n,
                     CASE WHEN count(*) = count(state_crc) THEN bit_xor(state_crc) END AS x
              FROM new_rows GROUP BY mailbox_id) d
        WHERE m.id = d.mailbox_id;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE mailboxes m SET state_crc = m.state_crc # d.x, messages = m.messages - d.n
        FROM (SELECT mailbox_id, count(*) AS n,
                     CASE WHEN count(*) = count(state_crc) THEN bit_xor(state_crc) END AS x
              FROM old_rows GROUP BY mailbox_id) d
        WHERE m.id = d.mailbox_id;
    ELSE
        UPDATE mailboxes m SET state_crc = m.state_crc # d.x, messages = m.messages + d.n
        FROM (SELECT mailbox_id, sum(n) AS n,
                     CASE WHEN count(*) = count(state_crc) THEN bit_xor(state_crc) END AS x
              FROM (SELECT mailbox_id, state_crc, -1 AS n FROM old_rows
                    UNION ALL SELECT mailbox_id, state_crc, 1 FROM new_rows) both_rows
              GROUP BY mailbox_id) d
        WHERE m.id = d.mailbox_id AND (d.x IS DISTINCT FROM 0 OR d.n <> 0);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER messages_crc_insert AFTER INSERT ON messages
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION mailroom_crc_delta();
CREATE TRIGGER messages_crc_update AFTER UPDATE ON messages
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mailroom_crc_delta();
CREATE TRIGGER messages_crc_delete AFTER DELETE ON messages
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION mailroom_crc_delta();
"#,
];

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Brings the database to [`SCHEMA_VERSION`]; returns the version it was at.
///
/// # Errors
///
/// [`PgStoreError::Database`] if a statement fails;
/// [`PgStoreError::TooNew`] if the database was migrated by a newer build.
pub async fn migrate(client: &mut Client) -> Result<i32, PgStoreError> {
    migrate_to(client, SCHEMA_VERSION).await
}

/// Brings the database to version `target` (at most [`SCHEMA_VERSION`]),
/// never down; returns the version it was at. [`migrate`] is this with
/// [`SCHEMA_VERSION`]; an older target makes a database as an older build
/// left it (the upgrade tests start from one).
///
/// # Errors
///
/// As [`migrate`].
pub async fn migrate_to(client: &mut Client, target: i32) -> Result<i32, PgStoreError> {
    let target = target.clamp(0, SCHEMA_VERSION);
    let tx = client.transaction().await?;
    // Frontends starting together take turns (a transaction-scoped lock).
    tx.batch_execute(
        "SELECT pg_advisory_xact_lock(7162);
         CREATE TABLE IF NOT EXISTS mailroom_schema (
             id integer PRIMARY KEY CHECK (id = 1),
             version integer NOT NULL);
         INSERT INTO mailroom_schema VALUES (1, 0) ON CONFLICT DO NOTHING;",
    )
    .await?;
    let row = tx
        .query_one(
            "SELECT version FROM mailroom_schema WHERE id = 1 FOR UPDATE",
            &[],
        )
        .await?;
    let from: i32 = row.get(0);
    if from > SCHEMA_VERSION {
        return Err(PgStoreError::TooNew {
            found: from,
            known: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .take(target.max(0) as usize)
        .skip(from as usize)
    {
        tracing::info!(version = i + 1, "migrating the mailroom schema");
        tx.batch_execute(sql).await?;
    }
    tx.execute(
        "UPDATE mailroom_schema SET version = $1 WHERE id = 1",
        &[&from.max(target)],
    )
    .await?;
    tx.commit().await?;
    Ok(from)
}

/// The version the database is at (0 if it was never migrated).
///
/// # Errors
///
/// [`PgStoreError::Database`] if the query fails.
pub async fn version(client: &Client) -> Result<i32, PgStoreError> {
    let exists = client
        .query_one("SELECT to_regclass('mailroom_schema') IS NOT NULL", &[])
        .await?
        .get::<_, bool>(0);
    if !exists {
        return Ok(0);
    }
    Ok(client
        .query_one("SELECT version FROM mailroom_schema WHERE id = 1", &[])
        .await?
        .get(0))
}
