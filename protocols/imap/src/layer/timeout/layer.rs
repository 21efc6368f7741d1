use std::time::Duration;

use super::CommandTimeout;

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
