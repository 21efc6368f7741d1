//! A server task on an ephemeral loopback port, with a shutdown trigger.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long [`Spawned::stop_and_join`] waits for the server to return.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The shutdown future handed to the server: it completes when
/// [`Spawned`] signals the stop, or is dropped.
#[derive(Debug)]
pub struct Shutdown(oneshot::Receiver<()>);

impl Future for Shutdown {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

/// A server task spawned by [`spawn_on_loopback`]. Dropping it signals the
/// shutdown (without waiting for the task).
#[derive(Debug)]
pub struct Spawned<T> {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<T>>,
}

/// Binds `127.0.0.1:0` and spawns `serve(listener, shutdown)`, the way
/// `ImapServer::serve`, `Pop3Server::serve` and `LmtpServer::serve_tcp` are
/// called.
pub async fn spawn_on_loopback<F, Fut>(serve: F) -> Spawned<Fut::Output>
where
    F: FnOnce(TcpListener, Shutdown) -> Fut,
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(serve(listener, Shutdown(rx)));
    Spawned {
        addr,
        stop: Some(tx),
        task: Some(task),
    }
}

impl<T> Spawned<T> {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Takes the shutdown trigger, for a test that fires it itself; `None`
    /// once taken or fired.
    pub fn take_stop(&mut self) -> Option<oneshot::Sender<()>> {
        self.stop.take()
    }

    /// Signals the shutdown (once; later calls do nothing).
    pub fn signal_stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    /// Signals the shutdown and waits (at most 10 s) for the server to
    /// return; its result, or `None` if an earlier call already took it.
    /// Panics if the server task panicked or did not stop in time.
    pub async fn stop_and_join(&mut self) -> Option<T> {
        self.signal_stop();
        let task = self.task.take()?;
        let joined = tokio::time::timeout(JOIN_TIMEOUT, task)
            .await
            .expect("the server returns after shutdown");
        Some(joined.expect("the server task does not panic"))
    }
}

impl<E: std::fmt::Debug> Spawned<Result<(), E>> {
    /// [`Spawned::stop_and_join`], asserting that the server returned `Ok`
    /// (a second call does nothing).
    pub async fn shutdown(&mut self) {
        if let Some(Err(e)) = self.stop_and_join().await {
            panic!("the server failed: {e:?}");
        }
    }
}

impl<T> Drop for Spawned<T> {
    fn drop(&mut self) {
        self.signal_stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_reaches_the_server_and_join_returns_its_result_once() {
        let mut s = spawn_on_loopback(|listener, shutdown| async move {
            shutdown.await;
            listener.local_addr().unwrap()
        })
        .await;
        let addr = s.addr();
        assert_eq!(s.stop_and_join().await, Some(addr));
        assert_eq!(s.stop_and_join().await, None);
    }

    #[tokio::test]
    async fn dropping_the_trigger_also_stops() {
        let mut s = spawn_on_loopback(|_, shutdown| async move {
            shutdown.await;
            "stopped"
        })
        .await;
        drop(s.take_stop());
        assert_eq!(s.stop_and_join().await, Some("stopped"));
    }

    #[tokio::test]
    #[should_panic(expected = "the server failed: \"refused\"")]
    async fn shutdown_asserts_the_server_succeeded() {
        let mut s = spawn_on_loopback(|_, _| async { Err::<(), _>("refused") }).await;
        s.shutdown().await;
    }
}
