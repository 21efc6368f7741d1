//! IMAP4rev2 (RFC 9051), advertised beside IMAP4rev1.
//!
//! A session speaks IMAP4rev1 until the client sends `ENABLE IMAP4rev2`
//! (RFC 9051 §6.3.1, Appendix A: a server advertising both answers as
//! RFC 3501 until then); from then on, in that session only, the
//! differences below apply. RFC 9051 Appendix E ("Changes from RFC 3501 /
//! IMAP4rev1") lists 30 changes; each, by its number there, with what it
//! means here (*changes the wire* marks a per-session switch; the tests
//! are in `tests/session_imap4rev2.rs`):
//!
//! 1. **64-bit message and body part sizes.** Sizes are written as 64-bit
//!    numbers already (RFC822.SIZE, BINARY.SIZE, STATUS SIZE). Appendix D
//!    lets a server keep its messages under 4 GiB, which the stores and
//!    APPENDLIMIT do. A FETCH partial (`BODY[...]<origin.length>`,
//!    `BINARY[...]<origin.length>`) takes RFC 9051's `number64` for both
//!    numbers (up to 2^63-1), in both versions: `<5000000000.10>` is an
//!    empty substring labelled `<5000000000>`, and a length past the end is
//!    the rest. Tested (the parser test and `partials_take_64_bit_numbers`,
//!    which was answered BAD before).
//! 2. **Extensions folded in**: NAMESPACE, UNSELECT, UIDPLUS, ESEARCH,
//!    SEARCHRES, ENABLE, IDLE, SASL-IR, LIST-EXTENDED, LIST-STATUS, MOVE,
//!    LITERAL-, the ABNF of RFC 4466, the response codes of RFC 5530, the
//!    FETCH side of BINARY and the SPECIAL-USE attributes. All were
//!    already offered to IMAP4rev1 sessions and behave the same; the
//!    literal capability is LITERAL+ or LITERAL- by configuration, either
//!    satisfies RFC 9051's LITERAL-. BINARY (APPEND of literal8 too) and
//!    LIST-EXTENDED stay advertised by name, as Appendices B and C ask of
//!    a server offering more than RFC 9051 folds in.
//! 3. **STATUS SIZE and STATUS DELETED**: offered to every session.
//! 4. **SEARCH answers ESEARCH**: a SEARCH or UID SEARCH without RETURN is
//!    answered as `RETURN (ALL)`: `* ESEARCH (TAG "t") [UID] ALL set`
//!    (just `* ESEARCH (TAG "t") [UID]` when nothing matches), never
//!    `* SEARCH`. *Changes the wire.*
//! 5. **Which SEARCH keys match substrings** (BCC, BODY, CC, FROM, HEADER,
//!    SUBJECT, TEXT, TO; KEYWORD and the flags do not): the search code
//!    already works this way for both versions.
//! 6. **RFC 2231 parameter continuations decoded** in BODYSTRUCTURE:
//!    done for both versions (`mailroom_core::mime`, `name*0`/`name*1`
//!    joined, charsets decoded). A parameter whose value had a charset is
//!    returned under its plain name (`filename`) with the UTF-8 value,
//!    where §7.5.2 suggests the name `filename*`: kept, as clients look
//!    attachment names up by the plain name (a SHOULD).
//! 7. **COPYUID for MOVE as well as UID MOVE**: sent for both, to every
//!    session. Tested.
//! 8. **COPY/MOVE never create their target**; a missing one is
//!    `NO [TRYCREATE]`: so for both versions. Tested.
//! 9. **CLOSED**: `OK [CLOSED]` whenever SELECT or EXAMINE leaves a
//!    selected mailbox (before, only with QRESYNC). *Changes the wire.*
//! 10. **SELECT/EXAMINE send an untagged LIST** with the mailbox's name
//!     and attributes. *Changes the wire.*
//! 11. **No `OK [UNSEEN n]`** after SELECT/EXAMINE. *Changes the wire.*
//! 12. **No RECENT, no `\Recent`**: no `* n RECENT` after SELECT, EXAMINE
//!     or new messages, no `\Recent` in FETCH FLAGS; the session still
//!     claims recent messages (so an IMAP4rev1 session elsewhere does not
//!     also get them). The SEARCH keys RECENT, NEW and OLD are still
//!     accepted and see no recent message (RECENT and NEW match nothing,
//!     OLD everything); STATUS RECENT is still answered (deprecated, not
//!     removed). *Changes the wire.*
//! 13. **No new PERMANENTFLAGS needed for a new keyword** once `\*` was
//!     advertised: the server still sends `FLAGS` and `OK [PERMANENTFLAGS]`
//!     before a keyword new to the session shows in a FETCH (both
//!     versions; what RFC 3501 clients need, and allowed by RFC 9051).
//! 14. **`tagged-ext-simple` may be a bare number64**: only matters to a
//!     generic parser of extension parameters; the parser knows each
//!     parameter it accepts and refuses others, as before.
//! 15. **`$MDNSent`, `$Forwarded`, `$Junk`, `$NotJunk`, `$Phishing`**
//!     (the appendix spells `$NonJunk`, §2.3.2 `$NotJunk`): ordinary
//!     keywords, stored and shown as any other (`\*` is in PERMANENTFLAGS
//!     wherever keywords may be set).
//! 16. **UTF-8 mailbox names and headers**: after ENABLE IMAP4rev2,
//!     mailbox names go both ways in UTF-8 and quoted strings may carry
//!     UTF-8 (the driver switches its codec as for UTF8=ACCEPT); modified
//!     UTF-7 stays for IMAP4rev1 sessions (Appendix A.1). Unlike
//!     UTF8=ACCEPT, SEARCH still takes a CHARSET. *Changes the wire.*
//! 17. **CHECK removed** (clients use NOOP): still answered, as NOOP is.
//! 18. **RFC822, RFC822.HEADER, RFC822.TEXT deprecated** (clients use the
//!     BODY[] forms): still answered, for both versions.
//! 19. **LSUB deprecated** (clients use `LIST (SUBSCRIBED)`): still
//!     answered.
//! 20. **IDLE may report more than the selected mailbox**: with NOTIFY
//!     (RFC 5465, [`crate::extension::notify`]) IDLE pushes STATUS and
//!     LIST for other mailboxes, to either version.
//! 21. **Every unsolicited FETCH carries UID** (§7.5.2): flag changes told
//!     after any command (not only UID commands) and during IDLE include
//!     `UID n` in IMAP4rev2 sessions (IMAP4rev1 sessions keep RFC 3501's
//!     form unless QRESYNC is on). *Changes the wire; the test failed
//!     before.*
//! 22. **Clients MUST ignore unknown response codes**: a client
//!     requirement; nothing to do.
//! 23. **`resp-text` may be empty**: the server always sends text; nothing
//!     to do.
//! 24. **UTF-8 in human-readable text after ENABLE**: allowed, not used
//!     (the texts are ASCII).
//! 25. **TLS recommendations** (RFC 7525, 7817, 8314): rustls, TLS 1.2
//!     and 1.3 only, implicit TLS on 993 and STARTTLS (the driver and
//!     `mailroom-server`); the same for both versions.
//! 26. **ALERT and PREAUTH warnings**: the server sends no ALERT and no
//!     PREAUTH greeting.
//! 27. **SCRAM-SHA-256 replaces DIGEST-MD5**: SCRAM-SHA-256 (and -PLUS)
//!     is offered when the authenticator supports it; DIGEST-MD5 never
//!     was.
//! 28. **Any command resets the autologout timer**: the idle timer
//!     measures silence between commands, whatever they are
//!     (`mailroom_server::timeout`).
//! 29. **IANA registration, no "X" convention**: nothing to do.
//! 30. **Looser rules on closing connections**: the server's `* BYE`
//!     before closing (LOGOUT, autologout, shutdown) satisfies both.
//!
//! ENABLE IMAP4rev2 answers `* ENABLED IMAP4rev2` once; a second ENABLE
//! names nothing new. With UIDONLY ([`crate::extension::uidonly`]) the two
//! combine: ESEARCH with the UID marker, UIDFETCH, VANISHED.

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
