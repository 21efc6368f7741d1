//! The IMAP command parser (being written).
