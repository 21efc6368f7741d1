//! A throttle on failed POP3 logins, the counterpart of IMAP's.
//!
//! Before a `PASS`, an `APOP`, an `AUTH` with an initial response or a
//! line of an AUTH exchange reaches the session, the throttle waits as long
//! as the shared [`LoginFailures`] table says for the peer's IP address and,
//! when the command names one, the user (`PASS` is for the user of the
//! preceding `USER`). An AUTH exchange waits once, at its first line that
//! carries credentials (AUTH LOGIN sends two). When the session's reply
//! reports a failed login ([`Reply::login`]), the failure is counted for
//! that IP and user and the
//! `-ERR` itself waits the new, doubled delay; a successful login clears the
//! user's counter.
//!
//! The session still closes a connection after
//! [`crate::Pop3Config::max_auth_failures`] failures; the throttle is what
//! makes reconnecting useless: its counters outlive the connection, and with
//! [`LoginThrottleLayer::with_failures`] they are the same counters IMAP
//! uses.
//!
//! The delay before an attempt is taken before the authenticator is asked,
//! so a guesser also cannot make the server hash passwords at full speed.
//! Waiting inside a command counts against a command timeout layered
//! outside it (the defaults: at most 30 s of delay).

//!
//! The tower layer is [`mailroom_server::throttle`]'s, shared with IMAP;
//! [`Pop3Logins`] tells it which POP3 commands are login attempts.
//!
//! ```
//! use std::sync::Arc;
//! use mailroom_core::throttle::LoginFailures;
//! use mailroom_pop3::layer::throttle::LoginThrottleLayer;
//!
//! let shared = Arc::new(LoginFailures::default());
//! let pop3 = LoginThrottleLayer::with_failures(shared.clone());
//! let per_connection = pop3.for_peer("192.0.2.7".parse().ok());
//! assert!(Arc::ptr_eq(per_connection.failures().unwrap(), &shared));
//! assert!(LoginThrottleLayer::disabled().failures().is_none());
//! ```

pub use mailroom_core::throttle::{LoginFailures, ThrottleConfig};

use mailroom_server::throttle::LoginCommands;

use crate::codec::{Command, Reply};

/// Delays login attempts after failures (see the [module docs](self)).
pub type LoginThrottle<S> = mailroom_server::throttle::LoginThrottle<S, Pop3Logins>;

/// Builds [`LoginThrottle`]s over one [`LoginFailures`] table. Make one per
/// server (or share one table with IMAP through
/// [`LoginThrottleLayer::with_failures`]) and call
/// [`LoginThrottleLayer::for_peer`] per connection.
pub type LoginThrottleLayer = mailroom_server::throttle::LoginThrottleLayer<Pop3Logins>;

/// The future of a [`LoginThrottle`] call.
pub type ResponseFuture<E> = mailroom_server::throttle::ResponseFuture<Reply, E>;

/// Which POP3 commands are login attempts (see the [module docs](self)):
/// it remembers the `USER` for the `PASS` that follows, and that an AUTH
/// exchange has waited once already.
#[derive(Debug, Clone, Default)]
pub struct Pop3Logins {
    user: Option<String>,
    exchange_waited: bool,
}

impl LoginCommands<Command, Reply> for Pop3Logins {
    fn attempt(&mut self, command: &Command) -> Option<(Option<String>, bool)> {
        if !matches!(command, Command::SaslResponse(_)) {
            self.exchange_waited = false;
        }
        match command {
            Command::User(name) => {
                self.user = Some(name.clone());
                None
            }
            Command::Pass(_) => Some((self.user.take(), true)),
            Command::Apop { user, .. } => Some((Some(user.clone()), true)),
            Command::Auth {
                mechanism: Some(_),
                initial_response: Some(_),
            } => {
                self.exchange_waited = true;
                Some((None, true))
            }
            Command::SaslResponse(_) => {
                let wait = !std::mem::replace(&mut self.exchange_waited, true);
                Some((None, wait))
            }
            _ => None,
        }
    }

    fn outcome(reply: &Reply) -> Option<(&str, bool)> {
        reply.login.as_ref().map(|l| (l.user.as_str(), l.success))
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::future::Ready;
    use std::net::IpAddr;
    use std::sync::Arc;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use tokio::time::Instant;
    use tower::{Layer, Service, ServiceExt};

    use super::*;

    /// A session stand-in: `PASS right`, `APOP ... 00..` and any SASL line
    /// `ok` succeed as "alice"; other attempts fail as the user last named.
    #[derive(Clone, Default)]
    struct Fake {
        user: Option<String>,
    }

    impl Service<Command> for Fake {
        type Response = Reply;
        type Error = Infallible;
        type Future = Ready<Result<Reply, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, command: Command) -> Self::Future {
            let user = self.user.clone().unwrap_or_else(|| "alice".into());
            let reply = match command {
                Command::User(u) => {
                    self.user = Some(u);
                    Reply::ok("send PASS")
                }
                Command::Pass(p) => {
                    let ok = p == "right";
                    Reply::ok("").with_login(user, ok)
                }
                Command::Apop { user, digest } => Reply::ok("").with_login(user, digest == [0; 16]),
                Command::SaslResponse(line) => Reply::ok("").with_login("alice", line == "ok"),
                _ => Reply::ok(""),
            };
            std::future::ready(Ok(reply))
        }
    }

    fn table() -> Arc<LoginFailures> {
        Arc::new(LoginFailures::new(ThrottleConfig {
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(8),
            ..ThrottleConfig::default()
        }))
    }

    async fn timed(svc: &mut LoginThrottle<Fake>, command: Command) -> (Reply, Duration) {
        let start = Instant::now();
        let reply = svc.ready().await.unwrap().call(command).await.unwrap();
        (reply, start.elapsed())
    }

    const PEER: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7)));

    #[tokio::test(start_paused = true)]
    async fn failures_delay_the_answer_and_the_next_attempt_on_any_connection() {
        let table = table();
        let layer = LoginThrottleLayer::with_failures(table.clone());
        let mut first = layer.for_peer(PEER).layer(Fake::default());
        timed(&mut first, Command::User("bob".into())).await;
        let (reply, took) = timed(&mut first, Command::Pass("wrong".into())).await;
        assert!(!reply.login.unwrap().success);
        assert_eq!(took, Duration::from_secs(1), "the -ERR waits the new delay");
        // A new connection from the same IP, for another user: waits 1 s
        // before, then 2 s after its own failure.
        let mut second = layer.for_peer(PEER).layer(Fake::default());
        timed(&mut second, Command::User("carol".into())).await;
        let (_, took) = timed(&mut second, Command::Pass("wrong".into())).await;
        assert_eq!(took, Duration::from_secs(3));
        // Not a login: never delayed.
        let (_, took) = timed(&mut second, Command::Capa).await;
        assert_eq!(took, Duration::ZERO);
        // From elsewhere, for bob: bob's counter (1 failure) applies.
        let mut elsewhere = layer.for_peer(None).layer(Fake::default());
        timed(&mut elsewhere, Command::User("BOB".into())).await;
        let (reply, took) = timed(&mut elsewhere, Command::Pass("right".into())).await;
        assert!(reply.login.unwrap().success);
        assert_eq!(took, Duration::from_secs(1));
        assert_eq!(table.delay_for(None, Some("bob")), Duration::ZERO);
        assert_eq!(table.delay_for(PEER, None), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn apop_and_sasl_attempts_are_throttled_too() {
        let table = table();
        let layer = LoginThrottleLayer::with_failures(table.clone());
        let mut svc = layer.for_peer(PEER).layer(Fake::default());
        let apop = |digest| Command::Apop {
            user: "mrose".into(),
            digest,
        };
        let (_, took) = timed(&mut svc, apop([1; 16])).await;
        assert_eq!(took, Duration::from_secs(1));
        assert_eq!(table.delay_for(None, Some("mrose")), Duration::from_secs(1));
        let (_, took) = timed(&mut svc, Command::SaslResponse("bad".into())).await;
        // 1 s for the IP before, then the IP's second failure: 2 s.
        assert_eq!(took, Duration::from_secs(3));
        let (reply, took) = timed(&mut svc, apop([0; 16])).await;
        assert!(reply.login.unwrap().success);
        assert_eq!(took, Duration::from_secs(2), "the IP's 2 failures");
        assert_eq!(table.delay_for(None, Some("mrose")), Duration::ZERO);
    }

    /// AUTH LOGIN sends the user name and the password on two lines: after
    /// a failure from the IP, the exchange waits once, not once per line.
    #[tokio::test(start_paused = true)]
    async fn an_auth_exchange_waits_once() {
        let table = table();
        table.failed(PEER, None);
        let layer = LoginThrottleLayer::with_failures(table.clone());
        let mut svc = layer.for_peer(PEER).layer(Fake::default());
        let auth_login = Command::Auth {
            mechanism: Some("LOGIN".into()),
            initial_response: None,
        };
        let (_, took) = timed(&mut svc, auth_login.clone()).await;
        assert_eq!(took, Duration::ZERO, "naming the mechanism is no attempt");
        // The Fake answers every SASL line as a finished attempt; here the
        // first line stands for the user name, the second for the password.
        let (_, took) = timed(&mut svc, Command::SaslResponse("user".into())).await;
        assert_eq!(took, Duration::from_secs(1 + 2), "waits, then fails");
        let (reply, took) = timed(&mut svc, Command::SaslResponse("ok".into())).await;
        assert!(reply.login.unwrap().success);
        assert_eq!(
            took,
            Duration::ZERO,
            "the same exchange does not wait again"
        );
        // A new exchange waits again.
        timed(&mut svc, auth_login).await;
        let (_, took) = timed(&mut svc, Command::SaslResponse("ok".into())).await;
        assert_eq!(took, Duration::from_secs(2), "the IP's two failures");
    }

    #[tokio::test(start_paused = true)]
    async fn disabled_throttle_passes_everything_through() {
        let mut svc = LoginThrottleLayer::disabled()
            .for_peer(PEER)
            .layer(Fake::default());
        for _ in 0..5 {
            timed(&mut svc, Command::User("bob".into())).await;
            let (reply, took) = timed(&mut svc, Command::Pass("wrong".into())).await;
            assert!(!reply.login.unwrap().success);
            assert_eq!(took, Duration::ZERO);
        }
    }
}
