//! IMAP4rev2 (RFC 9051), advertised beside IMAP4rev1.
//!
//! A session speaks IMAP4rev1 until the client sends `ENABLE IMAP4rev2`
//! (RFC 9051 §6.3.1); from then on, in that session only, the differences
//! below apply. Each item of RFC 9051 Appendix E ("Changes from RFC 3501 /
//! IMAP4rev1"), with what it means here:
//!
//! - **Extensions folded into the base protocol** (NAMESPACE, UNSELECT,
//!   UIDPLUS, ESEARCH, SEARCHRES, ENABLE, IDLE, SASL-IR, LIST-EXTENDED,
//!   LIST-STATUS, MOVE, LITERAL-, BINARY, SPECIAL-USE): all were already
//!   offered to IMAP4rev1 sessions and behave the same; nothing to change.
//!   (The literal capability is LITERAL+ or LITERAL- by configuration; either
//!   satisfies RFC 9051's LITERAL- requirement.)
//! - **STATUS SIZE and STATUS DELETED**: offered to every session already.
//! - **SEARCH answers with ESEARCH**: a SEARCH or UID SEARCH without RETURN
//!   is answered as `RETURN (ALL)`: `* ESEARCH (TAG "t") [UID] ALL set`
//!   (just `* ESEARCH (TAG "t") [UID]` when nothing matches), never
//!   `* SEARCH`. *Changes the wire; tested.*
//! - **No `\Recent`, no RECENT**: no `* n RECENT` after SELECT, EXAMINE or
//!   new messages, no `\Recent` in FETCH FLAGS; the session still claims
//!   recent messages (so an IMAP4rev1 session elsewhere does not also get
//!   them). The SEARCH keys RECENT, NEW and OLD, removed from the grammar,
//!   are still accepted and see no recent message (RECENT and NEW match
//!   nothing, OLD everything); STATUS RECENT is still answered.
//!   *Changes the wire; tested.*
//! - **SELECT/EXAMINE**: an untagged `LIST` with the mailbox's name and
//!   attributes is required and sent; `OK [UNSEEN n]` is gone and not sent;
//!   `OK [CLOSED]` is sent whenever a selected mailbox is left by SELECT or
//!   EXAMINE (before, only with QRESYNC). *Changes the wire; tested.*
//! - **LIST**: `\NonExistent` (which implies `\Noselect`) is part of the
//!   base LIST, so a plain `LIST` marks a parent that exists only as a
//!   level of the hierarchy `\NonExistent`, not `\Noselect`; LIST-STATUS
//!   (`RETURN (STATUS ...)`) answers as it already did. *Changes the wire;
//!   tested.*
//! - **LSUB is deprecated** (clients use `LIST (SUBSCRIBED)`): still
//!   answered, as RFC 9051 lets a server do.
//! - **CHECK removed** (use NOOP): still answered as before.
//! - **UTF-8 mailbox names** (RFC 9051 §5.1, Appendix A): modified UTF-7
//!   is deprecated; after ENABLE IMAP4rev2 mailbox names go both ways in
//!   UTF-8 and quoted strings may carry UTF-8 (the driver switches its
//!   codec as for UTF8=ACCEPT). Unlike UTF8=ACCEPT, SEARCH still takes a
//!   CHARSET. *Changes the wire; tested.*
//! - **FETCH BINARY and APPEND of literal8**: the BINARY extension is
//!   offered to every session.
//! - **Response codes** of RFC 5530 (ALREADYEXISTS, NONEXISTENT, NOPERM,
//!   CANNOT, INUSE, LIMIT, OVERQUOTA, SERVERBUG, UNAVAILABLE, CLIENTBUG,
//!   ...), HASCHILDREN, CLOSED, UNKNOWN-CTE: sent to every session already;
//!   UNSEEN is no longer sent (above).
//! - **Keywords** `$Forwarded`, `$MDNSent`, `$Junk`, `$NotJunk`,
//!   `$Phishing` (RFC 9051 §2.3.2): ordinary keywords, stored and shown as
//!   any other; nothing to change.
//! - **NAMESPACE** is base protocol: answered to every session already.
//! - **ENABLE IMAP4rev2** answers `* ENABLED IMAP4rev2` once; a second
//!   ENABLE names nothing new.
//! - Clarifications (SEARCH substring rules, RFC 2231 parameters in
//!   BODYSTRUCTURE, UID EXPUNGE equal to EXPUNGE of UIDs, the mailbox name
//!   INBOX, BODY.PEEK): the server already behaves as they describe for
//!   both versions, so they need no per-session switch.

use mailroom_core::access::MailAccess;
use mailroom_core::mailbox::DELIMITER;

use crate::response::{Data, ListKind, Response};
use crate::session::op::list::{Flavour, attributes};

/// The capability, advertised right after IMAP4rev1.
pub const CAPABILITY: &str = "IMAP4rev2";

/// The untagged `LIST` RFC 9051 §6.3.2 asks SELECT and EXAMINE to send:
/// the mailbox's name as the server knows it (`INBOX` upper-cased) and its
/// attributes. `None` if the store does not list it (the SELECT already
/// succeeded, so it is left out rather than failing the command).
pub(crate) async fn select_list(access: &MailAccess, mailbox: &str) -> Option<Response> {
    let rows = access.list("", mailbox).await.ok()?;
    let e = rows.into_iter().find(|e| {
        e.name == mailbox || (e.name == "INBOX" && mailbox.eq_ignore_ascii_case("INBOX"))
    })?;
    Some(Response::Data(Data::List {
        kind: ListKind::List,
        attributes: attributes(&e, Flavour::Extended, false),
        delimiter: Some(DELIMITER),
        name: e.name,
        child_info: Vec::new(),
    }))
}
