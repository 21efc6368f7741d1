//! Application files replicated beside the store (FILE frames): mailroomd
//! carries its users file, so that a promoted replica accepts the same
//! logins. The primary reads them at connect and on every check
//! ([`crate::PrimaryConfig::file_check_interval`]) and sends a file whose
//! SHA-256 differs from what it last sent on this connection; the replica
//! checks the digest and installs it. A replica without [`AppFiles`] (or an
//! older one) answers UNSUPPORTED and the primary stops sending files on
//! that connection, with a warning.

use bytes::Bytes;

/// The application side of FILE frames.
pub trait AppFiles: Send + Sync + std::fmt::Debug {
    /// On the primary: every replicated file by name with its current
    /// content (a file that does not exist is left out). Called from a
    /// blocking task.
    fn read(&self) -> std::io::Result<Vec<(String, Bytes)>>;

    /// On the replica: installs `content` as the file `name` durably and
    /// atomically and puts it in force; an unknown name is an error.
    /// Called from a blocking task.
    fn install(&self, name: &str, content: &[u8]) -> std::io::Result<()>;
}
