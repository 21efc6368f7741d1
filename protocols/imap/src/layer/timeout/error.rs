/// A command ran longer than its [`CommandTimeout`](super::CommandTimeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("command timed out")]
pub struct Elapsed(pub(super) ());

impl Elapsed {
    /// The error.
    pub fn new() -> Elapsed {
        Elapsed(())
    }
}

impl Default for Elapsed {
    fn default() -> Elapsed {
        Elapsed::new()
    }
}
