use std::time::Duration;

use super::{CommandTimeout, IdleTimeout};

/// Builds [`CommandTimeout`] services.
#[derive(Debug, Clone, Copy)]
pub struct CommandTimeoutLayer {
    timeout: Duration,
}

impl CommandTimeoutLayer {
    /// Commands may run this long.
    pub fn new(timeout: Duration) -> CommandTimeoutLayer {
        CommandTimeoutLayer { timeout }
    }
}

impl<S> tower::Layer<S> for CommandTimeoutLayer {
    type Service = CommandTimeout<S>;

    fn layer(&self, inner: S) -> CommandTimeout<S> {
        CommandTimeout::new(inner, self.timeout)
    }
}

/// Wraps a connection's I/O in an [`IdleTimeout`].
#[derive(Debug, Clone, Copy)]
pub struct IdleTimeoutLayer {
    timeout: Duration,
}

impl IdleTimeoutLayer {
    /// Reads fail after this long without input.
    pub fn new(timeout: Duration) -> IdleTimeoutLayer {
        IdleTimeoutLayer { timeout }
    }
}

impl<IO> tower::Layer<IO> for IdleTimeoutLayer {
    type Service = IdleTimeout<IO>;

    fn layer(&self, io: IO) -> IdleTimeout<IO> {
        IdleTimeout::new(io, self.timeout)
    }
}
