//! Modified UTF-7 mailbox names (RFC 3501 §5.1.3) (being written).
