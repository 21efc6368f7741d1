//! Property test of the session's sequence-number bookkeeping: while other
//! writers append and expunge, a client that applies every EXISTS, EXPUNGE
//! and FETCH it receives always agrees with the server about which UID has
//! which sequence number, never sees EXPUNGE during FETCH/SEARCH/STORE, and
//! after NOOP sees exactly the store's messages. Talks to the
//! [`Session`](mailroom_imap::Session) service directly, without sockets.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use mailroom_core::{
    Flag, Flags, MailboxName, MailboxRef, NewMessage, SeqSet, Storage, StoreOp, Uid,
};
use mailroom_imap::command::{
    Command, FetchAttr, Request, SearchKey, Section, SelectParams, StoreKind,
};
use mailroom_imap::response::{Data, FetchItem, Response};
use mailroom_imap::{ConnectionInfo, ImapConfig, ImapServer, Reply, Session};
use mailroom_store_memory::MemoryStore;
use proptest::prelude::*;
use tower::{Service, ServiceExt};

#[derive(Debug, Clone)]
enum Op {
    /// Another writer appends a message.
    Append,
    /// Another writer expunges the n-th present message (modulo count).
    Expunge(usize),
    /// Another writer flags the n-th present message.
    Flag(usize),
    /// The session: FETCH 1:* (UID FLAGS).
    Fetch,
    /// The session: UID FETCH 1:* (FLAGS).
    UidFetch,
    /// The session: UID FETCH 1:* (FLAGS BODY.PEEK[]) — responses streamed
    /// while message files are read (regression: updates found at the end
    /// of the command were written before the stream, so an EXPUNGE shifted
    /// the sequence numbers of the FETCH responses that followed it).
    UidFetchBody,
    /// The session: SEARCH ALL.
    Search,
    /// The session: STORE 1:* +FLAGS (\Answered).
    Store,
    /// The session: NOOP.
    Noop,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Append),
        2 => (0usize..50).prop_map(Op::Expunge),
        1 => (0usize..50).prop_map(Op::Flag),
        2 => Just(Op::Fetch),
        1 => Just(Op::UidFetch),
        1 => Just(Op::UidFetchBody),
        1 => Just(Op::Search),
        1 => Just(Op::Store),
        2 => Just(Op::Noop),
    ]
}

const USER: &str = "alice@example.com";

/// What the client believes: UID per sequence number (None until told).
#[derive(Default)]
struct ClientView {
    seqs: Vec<Option<Uid>>,
}

impl ClientView {
    fn apply(&mut self, reply: &Reply, expunge_allowed: bool) -> Result<(), String> {
        for r in &reply.responses {
            match r {
                Response::Data(Data::Exists(n)) => {
                    let n = *n as usize;
                    if n < self.seqs.len() {
                        return Err(format!("EXISTS {n} shrinks {}", self.seqs.len()));
                    }
                    self.seqs.resize(n, None);
                }
                Response::Data(Data::Expunge(s)) => {
                    if !expunge_allowed {
                        return Err("EXPUNGE where RFC 3501 forbids it".into());
                    }
                    let s = *s as usize;
                    if s == 0 || s > self.seqs.len() {
                        return Err(format!("EXPUNGE {s} out of range"));
                    }
                    self.seqs.remove(s - 1);
                }
                Response::Data(Data::Fetch { seq, items }) => {
                    let s = *seq as usize;
                    if s == 0 || s > self.seqs.len() {
                        return Err(format!("FETCH {s} beyond {}", self.seqs.len()));
                    }
                    for item in items {
                        if let FetchItem::Uid(u) = item {
                            match self.seqs[s - 1] {
                                Some(old) if old != *u => {
                                    return Err(format!("seq {s} was UID {old:?}, now {u:?}"));
                                }
                                _ => self.seqs[s - 1] = Some(*u),
                            }
                        }
                    }
                }
                Response::Data(Data::Vanished { .. }) => {
                    return Err("VANISHED without QRESYNC".into());
                }
                _ => {}
            }
        }
        Ok(())
    }
}

async fn call(session: &mut Session, command: Command) -> Reply {
    let request = Request {
        tag: "t".into(),
        command,
    };
    let mut reply = session.ready().await.unwrap().call(request).await.unwrap();
    reply.drain_tail().await;
    reply
}

async fn run(ops: Vec<Op>) -> Result<(), String> {
    let store = Arc::new(MemoryStore::new());
    store.ensure_account(USER).await.unwrap();
    let inbox = MailboxRef::new(USER, MailboxName::inbox());
    let config = ImapConfig {
        allow_plaintext_auth: true,
        ..ImapConfig::default()
    };
    #[derive(Debug)]
    struct Anyone;
    #[async_trait::async_trait]
    impl mailroom_core::Authenticator for Anyone {
        async fn authenticate(
            &self,
            c: &mailroom_core::Credentials,
        ) -> mailroom_core::Result<mailroom_core::Principal> {
            Ok(mailroom_core::Principal::user(c.authcid.clone()))
        }
        async fn lookup(&self, _: &str) -> mailroom_core::Result<Option<mailroom_core::Principal>> {
            Ok(None)
        }
    }
    let server = ImapServer::new(store.clone(), None, Arc::new(Anyone), config);
    let mut session = server.session(ConnectionInfo::new(None, true, 1));
    call(
        &mut session,
        Command::Login {
            username: USER.into(),
            password: "x".into(),
        },
    )
    .await;
    let mut view = ClientView::default();
    let r = call(
        &mut session,
        Command::Select {
            mailbox: "INBOX".into(),
            params: SelectParams::default(),
        },
    )
    .await;
    view.apply(&r, true)?;
    let other = store.open(&inbox, USER).await.unwrap();
    let mut n = 0;
    for op in ops {
        let present: Vec<Uid> = other
            .snapshot()
            .await
            .unwrap()
            .messages
            .iter()
            .map(|m| m.uid)
            .collect();
        match op {
            Op::Append => {
                n += 1;
                store
                    .append(
                        &inbox,
                        NewMessage {
                            flags: Flags::default(),
                            internal_date: None,
                            content: Bytes::from(format!("Subject: {n}\r\n\r\nx\r\n")),
                        },
                    )
                    .await
                    .unwrap();
            }
            Op::Expunge(i) | Op::Flag(i) if present.is_empty() => {
                let _ = i;
            }
            Op::Expunge(i) => {
                let uid = present[i % present.len()];
                let deleted: Flags = [Flag::Deleted].into_iter().collect();
                other
                    .store(&[uid], &StoreOp::Add(deleted), None)
                    .await
                    .unwrap();
                other.expunge(Some(&[uid])).await.unwrap();
            }
            Op::Flag(i) => {
                let uid = present[i % present.len()];
                let f: Flags = [Flag::Flagged].into_iter().collect();
                other.store(&[uid], &StoreOp::Add(f), None).await.unwrap();
            }
            Op::Fetch | Op::UidFetch | Op::UidFetchBody => {
                let uid = matches!(op, Op::UidFetch | Op::UidFetchBody);
                let mut items = vec![FetchAttr::Uid, FetchAttr::Flags];
                if matches!(op, Op::UidFetchBody) {
                    items.push(FetchAttr::BodySection {
                        peek: true,
                        section: Section::default(),
                        partial: None,
                    });
                }
                let r = call(
                    &mut session,
                    Command::Fetch {
                        uid,
                        set: SeqSet::all(),
                        items,
                        changed_since: None,
                        vanished: false,
                    },
                )
                .await;
                view.apply(&r, uid)?;
            }
            Op::Search => {
                let r = call(
                    &mut session,
                    Command::Search {
                        uid: false,
                        charset: None,
                        return_options: None,
                        criteria: SearchKey::All,
                    },
                )
                .await;
                view.apply(&r, false)?;
                for resp in &r.responses {
                    if let Response::Data(Data::Search { ids, .. }) = resp
                        && ids.iter().any(|&s| s as usize > view.seqs.len())
                    {
                        return Err(format!("SEARCH result {ids:?} beyond {}", view.seqs.len()));
                    }
                }
            }
            Op::Store => {
                let r = call(
                    &mut session,
                    Command::Store {
                        uid: false,
                        set: SeqSet::all(),
                        kind: StoreKind::Add,
                        silent: false,
                        flags: vec![Flag::Answered],
                        unchanged_since: None,
                    },
                )
                .await;
                view.apply(&r, false)?;
            }
            Op::Noop => {
                let r = call(&mut session, Command::Noop).await;
                view.apply(&r, true)?;
                // Caught up: learn every UID and compare with the store.
                let r = call(
                    &mut session,
                    Command::Fetch {
                        uid: false,
                        set: SeqSet::all(),
                        items: vec![FetchAttr::Uid],
                        changed_since: None,
                        vanished: false,
                    },
                )
                .await;
                view.apply(&r, false)?;
                let now: Vec<Uid> = other
                    .snapshot()
                    .await
                    .unwrap()
                    .messages
                    .iter()
                    .map(|m| m.uid)
                    .collect();
                let seen: Vec<Option<Uid>> = view.seqs.clone();
                let expected: Vec<Option<Uid>> = now.iter().copied().map(Some).collect();
                if seen != expected {
                    return Err(format!(
                        "after NOOP the client has {seen:?}, store has {now:?}"
                    ));
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn client_view_stays_consistent(ops in proptest::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let result = rt.block_on(run(ops));
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}
