//! NOTIFY (RFC 5465 §8):
//!
//! ```text
//! notify           = "NOTIFY" SP (notify-set / notify-none)
//! notify-none      = "NONE"
//! notify-set       = "SET" [status-indicator] SP event-group *(SP event-group)
//! status-indicator = SP "STATUS"
//! event-group      = "(" filter-mailboxes SP events ")"
//! filter-mailboxes = "selected" / "selected-delayed" / "inboxes" / "personal"
//!                  / "subscribed" / "subtree" SP one-or-more-mailbox
//!                  / "mailboxes" SP one-or-more-mailbox
//! one-or-more-mailbox = mailbox / "(" mailbox *(SP mailbox) ")"
//! events           = "(" event *(SP event) ")" / "NONE"
//! event            = "MessageNew" [SP "(" fetch-att *(SP fetch-att) ")"]
//!                  / "MessageExpunge" / "FlagChange" / "AnnotationChange"
//!                  / "MailboxName" / "SubscriptionChange"
//!                  / "MailboxMetadataChange" / "ServerMetadataChange" / atom
//! ```
//!
//! `SET (STATUS)`, which this parser took until the NOTIFY differential
//! test against Dovecot (issue 10) showed the RFC's form is the bare word
//! (Dovecot answers `(STATUS)` with BAD; Archiveopteryx, whose authors
//! wrote the RFC, parses the bare word), is still accepted: no filter is
//! called STATUS, so it cannot be taken for an event group.

use crate::command::Command;
use crate::extension::notify::{Event, EventGroup, Filter, NotifySet};

use super::fetch::fetch_att;
use super::primitives::{Cursor, PResult, err};

/// The most event groups one NOTIFY SET may have.
const MAX_GROUPS: usize = 16;

/// `NOTIFY SP (notify-set / notify-none)`.
pub(super) fn notify(c: &mut Cursor<'_>) -> PResult<Command> {
    c.sp()?;
    match c.keyword()?.as_str() {
        "NONE" => {
            c.end()?;
            Ok(Command::Notify(None))
        }
        "SET" => {
            c.sp()?;
            // `STATUS`, or the `(STATUS)` of old (see the module docs).
            let legacy = c
                .rest()
                .get(..8)
                .is_some_and(|w| w.eq_ignore_ascii_case(b"(STATUS)"));
            let status = if legacy {
                c.eat(b'(');
                c.eat_word("STATUS");
                c.expect(b')', "expected (STATUS)")?;
                true
            } else {
                c.eat_word("STATUS")
            };
            if status {
                c.sp()?;
            }
            let mut groups = Vec::new();
            loop {
                if groups.len() >= MAX_GROUPS {
                    return err("too many NOTIFY event groups");
                }
                groups.push(event_group(c)?);
                if c.at_end() {
                    break;
                }
                c.sp()?;
            }
            Ok(Command::Notify(Some(NotifySet { status, groups })))
        }
        _ => err("NOTIFY takes SET or NONE"),
    }
}

/// `"(" filter-mailboxes SP events ")"`.
fn event_group(c: &mut Cursor<'_>) -> PResult<EventGroup> {
    c.expect(b'(', "expected '(' to open an event group")?;
    c.enter()?;
    let filter = match c.keyword()?.as_str() {
        "SELECTED" => Filter::Selected,
        "SELECTED-DELAYED" => Filter::SelectedDelayed,
        "INBOXES" => Filter::Inboxes,
        "PERSONAL" => Filter::Personal,
        "SUBSCRIBED" => Filter::Subscribed,
        "SUBTREE" => {
            c.sp()?;
            Filter::Subtree(mailboxes(c)?)
        }
        "MAILBOXES" => {
            c.sp()?;
            Filter::Mailboxes(mailboxes(c)?)
        }
        _ => return err("unknown NOTIFY mailbox filter"),
    };
    c.sp()?;
    let events = if c.eat_word("NONE") {
        Vec::new()
    } else {
        c.enter()?;
        let events = c.list(false, event)?;
        c.leave();
        events
    };
    c.expect(b')', "expected ')' to close an event group")?;
    c.leave();
    Ok(EventGroup { filter, events })
}

/// `one-or-more-mailbox`.
fn mailboxes(c: &mut Cursor<'_>) -> PResult<Vec<String>> {
    if c.peek() == Some(b'(') {
        c.enter()?;
        let names = c.list(false, Cursor::mailbox)?;
        c.leave();
        Ok(names)
    } else {
        Ok(vec![c.mailbox()?])
    }
}

/// One `event`.
fn event(c: &mut Cursor<'_>) -> PResult<Event> {
    Ok(match c.keyword()?.as_str() {
        "MESSAGENEW" => {
            let mut atts = Vec::new();
            if c.rest().starts_with(b" (") {
                c.sp()?;
                c.enter()?;
                atts = c.list(false, fetch_att)?;
                c.leave();
            }
            Event::MessageNew(atts)
        }
        "MESSAGEEXPUNGE" => Event::MessageExpunge,
        "FLAGCHANGE" => Event::FlagChange,
        "ANNOTATIONCHANGE" => Event::AnnotationChange,
        "MAILBOXNAME" => Event::MailboxName,
        "SUBSCRIPTIONCHANGE" => Event::SubscriptionChange,
        "MAILBOXMETADATACHANGE" => Event::MailboxMetadataChange,
        "SERVERMETADATACHANGE" => Event::ServerMetadataChange,
        other => Event::Other(other.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use crate::command::{Command, FetchAttr};
    use crate::extension::notify::{Event, EventGroup, Filter, NotifySet};
    use crate::parser::primitives::Cursor;

    fn parse(text: &str) -> Result<Command, String> {
        let mut c = Cursor::new(text.as_bytes(), &[], &[], false, 8);
        let cmd = super::notify(&mut c).map_err(|e| e.reason.to_string())?;
        c.end().map_err(|e| e.reason.to_string())?;
        Ok(cmd)
    }

    #[test]
    fn set_none_status_filters_and_events() {
        assert_eq!(parse(" NONE"), Ok(Command::Notify(None)));
        assert_eq!(
            parse(
                " SET (STATUS) (selected (MessageNew (UID FLAGS) MessageExpunge)) \
                 (subtree (Lists \"a b\") (MailboxName)) (mailboxes inbox NONE) (personal (FlagChange x-Other))"
            ),
            Ok(Command::Notify(Some(NotifySet {
                status: true,
                groups: vec![
                    EventGroup {
                        filter: Filter::Selected,
                        events: vec![
                            Event::MessageNew(vec![FetchAttr::Uid, FetchAttr::Flags]),
                            Event::MessageExpunge
                        ],
                    },
                    EventGroup {
                        filter: Filter::Subtree(vec!["Lists".into(), "a b".into()]),
                        events: vec![Event::MailboxName],
                    },
                    EventGroup {
                        filter: Filter::Mailboxes(vec!["inbox".into()]),
                        events: vec![],
                    },
                    EventGroup {
                        filter: Filter::Personal,
                        events: vec![Event::FlagChange, Event::Other("X-OTHER".into())],
                    },
                ],
            })))
        );
        assert!(
            matches!(parse(" set (inboxes (messagenew messageexpunge))"), Ok(Command::Notify(Some(s))) if !s.status)
        );
        // RFC 5465 §8 `status-indicator = SP "STATUS"`, as Dovecot takes it.
        assert_eq!(
            parse(" SET STATUS (mailboxes (Other) (MessageNew MessageExpunge))"),
            Ok(Command::Notify(Some(NotifySet {
                status: true,
                groups: vec![EventGroup {
                    filter: Filter::Mailboxes(vec!["Other".into()]),
                    events: vec![Event::MessageNew(vec![]), Event::MessageExpunge],
                }],
            })))
        );
        assert!(
            matches!(parse(" set status (inboxes (messagenew messageexpunge))"), Ok(Command::Notify(Some(s))) if s.status)
        );
    }

    #[test]
    fn malformed_is_refused() {
        for bad in [
            "",
            " ",
            " SET",
            " SET ()",
            " SET (inboxes)",
            " SET (inboxes ())",
            " SET (nowhere (MailboxName))",
            " SET (subtree (MailboxName))",
            " SET (STATUS)",
            " SET STATUS",
            " SET STATUS ",
            " SET STATUSX (inboxes (MailboxName))",
            " SET (inboxes (MailboxName)",
            " SET (inboxes (MailboxName)) extra",
            " NONE extra",
            " SET (selected (MessageNew (NOSUCHATT) MessageExpunge))",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
