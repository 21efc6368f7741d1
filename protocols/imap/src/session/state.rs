//! The connection state a session keeps between commands.

use mailroom_core::access::MailAccess;
use mailroom_core::sasl::{Exchange, ExporterSlot};

use super::{ConnectionInfo, SelectedMailbox};

/// Extensions the client turned on (RFC 5161 ENABLE, or implicitly).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Enabled {
    /// CONDSTORE (RFC 7162): MODSEQ in unsolicited FETCH responses.
    pub(crate) condstore: bool,
    /// QRESYNC (RFC 7162): VANISHED instead of EXPUNGE, `[CLOSED]`.
    pub(crate) qresync: bool,
    /// UTF8=ACCEPT (RFC 6855): mailbox names and strings in UTF-8 both
    /// ways, no SEARCH CHARSET.
    pub(crate) utf8: bool,
    /// IMAP4rev2 (RFC 9051): the differences listed in
    /// [`crate::extension::imap4rev2`].
    pub(crate) imap4rev2: bool,
    /// UIDONLY (RFC 9586): UIDs only, both ways
    /// ([`crate::extension::uidonly`]).
    pub(crate) uidonly: bool,
}

/// What the client told about itself with ID, kept for logs and quirks.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClientQuirks {
    /// The `name` field of the client's ID.
    pub(crate) name: Option<String>,
    /// The `version` field.
    pub(crate) version: Option<String>,
}

/// The state of one connection.
#[derive(Debug)]
pub(crate) struct State {
    /// Whether the connection is encrypted (implicit TLS or after STARTTLS).
    pub(crate) tls: bool,
    /// Set once authenticated.
    pub(crate) access: Option<MailAccess>,
    /// Set while a mailbox is selected.
    pub(crate) selected: Option<SelectedMailbox>,
    pub(crate) enabled: Enabled,
    pub(crate) client: ClientQuirks,
    /// The APPENDLIMIT (RFC 7889) STATUS reports.
    pub(crate) append_limit: u64,
    /// The connection's `tls-exporter` value, once TLS is up.
    pub(crate) exporter: ExporterSlot,
    /// An AUTHENTICATE exchange waiting for the client's next line.
    pub(crate) sasl: Option<Exchange>,
    /// COMPRESS=DEFLATE (RFC 4978) is active.
    pub(crate) compressed: bool,
    /// NOTIFY SET (RFC 5465) in force.
    pub(crate) notify: Option<crate::extension::notify::NotifyState>,
}

impl State {
    pub(crate) fn new(conn: ConnectionInfo, append_limit: u64) -> State {
        State {
            tls: conn.tls,
            access: None,
            selected: None,
            enabled: Enabled::default(),
            client: ClientQuirks::default(),
            append_limit,
            exporter: conn.exporter,
            sasl: None,
            compressed: false,
            notify: None,
        }
    }
}
