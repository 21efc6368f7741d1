//! Commands naming a mailbox that is not valid modified UTF-7 (RFC 3501
//! §5.1.3), parsed as [`Command::InvalidMailboxName`]. No mailbox can have
//! such a name, so they are answered as Dovecot answers them: LIST, LSUB
//! and XLIST match nothing (`OK`, no rows); every other command gets `NO`
//! (`[NONEXISTENT]`, or `[CANNOT]` where the name would be created: CREATE,
//! the new name of RENAME). SELECT and EXAMINE still leave the mailbox
//! that was selected, as any failed SELECT does.

use super::super::{Reply, State};
use crate::command::Command;
use crate::response::{Code, StatusKind, StatusResponse};

/// Answers `command`, whose mailbox name `name` is not modified UTF-7.
pub(crate) fn handle(state: &mut State, tag: &str, command: &Command, name: &str) -> Reply {
    let text = "mailbox name is not valid modified UTF-7";
    match command {
        Command::List(_) | Command::Lsub { .. } | Command::Xlist { .. } => {
            return super::ok(tag, &format!("{} completed", command.name()));
        }
        Command::Select { .. } | Command::Examine { .. } => {
            let mut out = Vec::new();
            if state.selected.take().is_some() && state.enabled.qresync {
                out.push(StatusResponse::untagged(
                    StatusKind::Ok,
                    Some(Code::Closed),
                    "previous mailbox closed",
                ));
            }
            out.push(StatusResponse::no(tag, Some(Code::NonExistent), text));
            return Reply::new(out);
        }
        _ => {}
    }
    let created = match command {
        Command::Create { .. } => true,
        Command::Rename { to, .. } => to == name,
        _ => false,
    };
    let code = if created {
        Code::Cannot
    } else {
        Code::NonExistent
    };
    super::reply(StatusResponse::no(tag, Some(code), text))
}
