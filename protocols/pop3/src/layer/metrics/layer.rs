use std::sync::Arc;

use mailroom_core::metrics::{Metrics, Protocol};

use super::Metered;

/// Builds [`Metered`] services that record into one shared [`Metrics`]
/// registry. Cheap to clone. [`Pop3Server::serve_with`](crate::Pop3Server::serve_with)
/// applies it once per connection; each service it builds counts as one
/// open connection until it is dropped.
#[derive(Debug, Clone)]
pub struct MetricsLayer {
    metrics: Arc<Metrics>,
}

impl MetricsLayer {
    /// A layer recording into `metrics` (share one registry between every
    /// server and listener).
    pub fn new(metrics: Arc<Metrics>) -> MetricsLayer {
        MetricsLayer { metrics }
    }

    /// The registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
}

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = Metered<S>;

    fn layer(&self, inner: S) -> Metered<S> {
        let connection = self.metrics.connection_opened(Protocol::Pop3);
        Metered::new(inner, Arc::new(connection))
    }
}
