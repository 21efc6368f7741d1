//! REPLACE and UID REPLACE (RFC 8508); the work is in
//! [`crate::extension::replace`].

use crate::command::AppendMessage;
use crate::extension::replace;

use super::super::{Context, Reply, State};

/// REPLACE / UID REPLACE.
pub(crate) async fn handle(
    state: &mut State,
    ctx: &Context,
    tag: &str,
    uid: bool,
    target: u32,
    mailbox: &str,
    message: AppendMessage,
) -> Reply {
    replace::replace(state, ctx, tag, uid, target, mailbox, message).await
}
