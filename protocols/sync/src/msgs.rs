//! Frame kinds, field tags and error codes (`PROTOCOL.md`, "Frame kinds").

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
