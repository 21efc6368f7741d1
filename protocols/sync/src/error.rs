//! The one error type of the crate.

/// Everything replication can fail with.
///
/// The first group says the **peer** sent something wrong (bad bytes, a
/// failed proof, an unsupported version): the connection is closed with a
/// logged reason and nothing it sent after the last good frame is applied;
/// retrying the same bytes cannot help. The second group says **this node**
/// or its store failed; [`SyncError::is_retryable`] tells whether a later
/// attempt may succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// A frame announced a body longer than the configured maximum. Refused
    /// as soon as its 4-byte length is read, before any of it is buffered.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// The length the frame announced.
        len: u64,
        /// The configured maximum.
        max: u64,
    },
    /// A frame's CRC-32 did not match its bytes.
    #[error("frame CRC mismatch (computed {computed:08x}, received {received:08x})")]
    CrcMismatch {
        /// The CRC of the bytes as received.
        computed: u32,
        /// The CRC the frame carried.
        received: u32,
    },
    /// A frame or field is malformed (a field running past its frame, a
    /// length that does not fit its type, a missing required field, a value
    /// out of range).
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
    /// A frame holds more fields than the configured maximum.
    #[error("frame holds more than {max} fields")]
    TooManyFields {
        /// The configured maximum.
        max: usize,
    },
    /// A string field is longer than the configured maximum.
    #[error("string field of {len} bytes exceeds the limit of {max} bytes")]
    StringTooLong {
        /// Its length.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// Groups nested deeper than the configured maximum.
    #[error("fields nested deeper than {max} levels")]
    NestingTooDeep {
        /// The configured maximum.
        max: usize,
    },
    /// The connection ended inside a frame.
    #[error("connection closed inside a frame ({buffered} bytes buffered)")]
    Truncated {
        /// Bytes of the unfinished frame that had arrived.
        buffered: usize,
    },
    /// The peer's protocol version range and ours do not overlap.
    #[error(
        "unsupported replication protocol version: peer speaks {peer_min}..={peer_max}, \
         this node speaks {ours_min}..={ours_max}"
    )]
    VersionUnsupported {
        /// Lowest version the peer speaks.
        peer_min: u32,
        /// Highest version the peer speaks.
        peer_max: u32,
        /// Lowest version this node speaks.
        ours_min: u32,
        /// Highest version this node speaks.
        ours_max: u32,
    },
    /// The peer's challenge-response proof was wrong (a different shared
    /// secret, or a replayed or reflected proof).
    #[error("authentication failed: the peer's proof does not match the shared secret")]
    AuthFailed,
    /// The peer sent a frame that is not allowed at this point of the
    /// conversation (data before authentication, an answer to no request).
    #[error("protocol violation: {0}")]
    Unexpected(&'static str),
    /// A message's bytes do not hash to the GUID its record carries.
    #[error("message UID {uid} does not match its GUID")]
    GuidMismatch {
        /// The UID of the message.
        uid: u32,
    },
    /// The peer reported an error and closed or refused the request.
    #[error("peer reported error {code}: {message}")]
    Remote {
        /// The error code (see PROTOCOL.md, "ERROR").
        code: u64,
        /// The peer's explanation.
        message: String,
    },

    /// The store failed (the replica could not apply, the primary could not read).
    #[error("store: {0}")]
    Store(#[from] mailroom_core::Error),
    /// A socket failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The peer did not answer in time.
    #[error("timed out waiting for the peer")]
    Timeout,
}

impl SyncError {
    /// Whether the peer is at fault (bad bytes, wrong secret, wrong version)
    /// rather than this node.
    pub fn is_peer_fault(&self) -> bool {
        !matches!(
            self,
            SyncError::Store(_) | SyncError::Io(_) | SyncError::Timeout
        )
    }

    /// Whether reconnecting and trying again later may succeed: I/O
    /// failures, timeouts, a transient store failure, a frame damaged in
    /// transit (CRC), a connection cut inside a frame. A wrong secret or an
    /// unsupported version will fail again the same way.
    pub fn is_retryable(&self) -> bool {
        match self {
            SyncError::Io(_)
            | SyncError::Timeout
            | SyncError::CrcMismatch { .. }
            | SyncError::Truncated { .. } => true,
            SyncError::Store(e) => e.is_temporary(),
            SyncError::Remote { code, .. } => *code == crate::msgs::error_code::TEMPORARY,
            _ => false,
        }
    }

    /// The code of the ERROR frame this node sends when it refuses a
    /// connection or a request because of this error.
    pub fn code(&self) -> u64 {
        use crate::msgs::error_code;
        match self {
            SyncError::VersionUnsupported { .. } => error_code::VERSION,
            SyncError::AuthFailed => error_code::AUTH,
            SyncError::Store(e) if e.is_temporary() => error_code::TEMPORARY,
            SyncError::Store(_) => error_code::STORE,
            SyncError::GuidMismatch { .. } => error_code::GUID,
            SyncError::Io(_) | SyncError::Timeout => error_code::TEMPORARY,
            _ => error_code::PROTOCOL,
        }
    }
}

/// `Result` with [`SyncError`].
pub type Result<T, E = SyncError> = std::result::Result<T, E>;
