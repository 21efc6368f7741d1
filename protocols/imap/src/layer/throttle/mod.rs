//! A throttle on failed logins: after a failed LOGIN or AUTHENTICATE, the
//! next attempt from the same peer IP or for the same user waits
//! `base × 2^(failures−1)` (capped) before it is even checked, and the
//! failing answer itself is delayed by the same amount. The counters live
//! in a [`LoginFailures`] table from `mailroom-core` (bounded, per IP and per
//! user, forgotten after a quiet period; a success clears the user's
//! counter), which POP3's throttle can share so that a guesser cannot
//! switch protocols to escape it.

//!
//! The tower layer is [`mailroom_server::throttle`]'s, shared with POP3;
//! [`ImapLogins`] tells it which IMAP commands are login attempts.

pub use mailroom_core::throttle::{LoginFailures, ThrottleConfig};

use mailroom_server::throttle::LoginCommands;

use crate::command::{Command, Request};
use crate::session::Reply;

/// Delays login attempts after failures (see the [module docs](self)).
pub type LoginThrottle<S> = mailroom_server::throttle::LoginThrottle<S, ImapLogins>;

/// Builds [`LoginThrottle`]s; [`LoginThrottleLayer::for_peer`] gives the
/// one for a connection.
pub type LoginThrottleLayer = mailroom_server::throttle::LoginThrottleLayer<ImapLogins>;

/// The future of a [`LoginThrottle`] call.
pub type ResponseFuture<E> = mailroom_server::throttle::ResponseFuture<Reply, E>;

/// Which IMAP commands are login attempts: LOGIN, and AUTHENTICATE once it
/// carries a response (the driver calls it again with each line of the
/// exchange); the reply's [`Reply::login`] says how it went.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImapLogins;

impl LoginCommands<Request, Reply> for ImapLogins {
    fn attempt(&mut self, request: &Request) -> Option<(Option<String>, bool)> {
        match &request.command {
            Command::Login { username, .. } => Some((Some(username.clone()), true)),
            Command::Authenticate {
                initial_response: Some(_),
                ..
            } => Some((None, true)),
            _ => None,
        }
    }

    fn outcome(reply: &Reply) -> Option<(&str, bool)> {
        reply.login.as_ref().map(|l| (l.user.as_str(), l.success))
    }
}
