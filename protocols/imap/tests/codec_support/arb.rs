//! proptest strategies for valid commands.

use bytes::Bytes;
use mailroom_core::{
    Flag, InternalDate, ModSeq, SeqBound, SeqRange, SeqSet, SpecialUse, UidValidity,
};
use mailroom_imap::command::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

pub fn tag() -> impl Strategy<Value = String> {
    "[A-Za-z0-9.]{1,8}"
}

/// Any text a mailbox name may be (no control characters).
pub fn mailbox() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("INBOX".to_string()),
        "[A-Za-z0-9 ./&_-]{0,12}",
        "[^\\p{C}]{0,8}",
    ]
}

/// A pattern: a mailbox name with wildcards.
pub fn pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_string()),
        Just("%".to_string()),
        "[A-Za-z0-9/%*é]{1,10}"
    ]
}

/// Text for strings (UTF-8, may hold quotes, backslashes, CR/LF).
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9]{1,10}",
        "[ -~]{0,16}",
        "[^\\x00]{0,12}",
        Just("NIL".to_string()),
        Just("a\r\nb".to_string()),
    ]
}

pub fn atom() -> impl Strategy<Value = String> {
    "[A-Za-z0-9$_.-]{1,10}"
}

pub fn seq_set() -> impl Strategy<Value = SeqSet> {
    let bound = prop_oneof![
        4 => (1u32..=u32::MAX).prop_map(SeqBound::Value),
        4 => (1u32..100).prop_map(SeqBound::Value),
        1 => Just(SeqBound::Largest),
    ];
    vec((bound.clone(), option::of(bound)), 1..5).prop_map(|r| SeqSet {
        ranges: r
            .into_iter()
            .map(|(a, b)| SeqRange {
                start: a,
                end: b.unwrap_or(a),
            })
            .collect(),
    })
}

pub fn flag() -> impl Strategy<Value = Flag> {
    prop_oneof![
        Just(Flag::Seen),
        Just(Flag::Answered),
        Just(Flag::Flagged),
        Just(Flag::Deleted),
        Just(Flag::Draft),
        "[A-Za-z$][A-Za-z0-9_$-]{0,10}".prop_map(Flag::Keyword),
    ]
}

pub fn modseq() -> impl Strategy<Value = u64> {
    prop_oneof![1u64..1000, 1u64..=(i64::MAX as u64)]
}

pub fn search_date() -> impl Strategy<Value = SearchDate> {
    (-300_000i64..2_900_000).prop_map(SearchDate)
}

pub fn internal_date() -> impl Strategy<Value = InternalDate> {
    (-30_000_000_000i64..200_000_000_000, -1439i16..=1439).prop_map(|(t, o)| InternalDate {
        timestamp: t,
        offset_minutes: o,
    })
}

pub fn status_item() -> impl Strategy<Value = StatusItem> {
    prop_oneof![
        Just(StatusItem::Messages),
        Just(StatusItem::Recent),
        Just(StatusItem::UidNext),
        Just(StatusItem::UidValidity),
        Just(StatusItem::Unseen),
        Just(StatusItem::HighestModSeq),
        Just(StatusItem::Size),
        Just(StatusItem::Deleted),
    ]
}

pub fn search_key() -> impl Strategy<Value = SearchKey> {
    use SearchKey as K;
    let leaf = prop_oneof![
        seq_set().prop_map(K::SeqSet),
        Just(K::SavedResult),
        Just(K::All),
        Just(K::Answered),
        text().prop_map(K::Bcc),
        search_date().prop_map(K::Before),
        text().prop_map(K::Body),
        text().prop_map(K::Cc),
        Just(K::Deleted),
        Just(K::Draft),
        Just(K::Flagged),
        text().prop_map(K::From),
        (text(), text()).prop_map(|(a, b)| K::Header(a, b)),
        atom().prop_map(K::Keyword),
        (0u64..=(i64::MAX as u64)).prop_map(K::Larger),
        Just(K::New),
        Just(K::Old),
        search_date().prop_map(K::On),
        Just(K::Recent),
        Just(K::Seen),
        search_date().prop_map(K::SentBefore),
        search_date().prop_map(K::SentOn),
        search_date().prop_map(K::SentSince),
        search_date().prop_map(K::Since),
        (0u64..100_000).prop_map(K::Smaller),
        text().prop_map(K::Subject),
        text().prop_map(K::Text),
        text().prop_map(K::To),
        seq_set().prop_map(K::Uid),
        Just(K::Unanswered),
        Just(K::Undeleted),
        Just(K::Undraft),
        Just(K::Unflagged),
        atom().prop_map(K::Unkeyword),
        Just(K::Unseen),
        (0u64..=(i64::MAX as u64)).prop_map(|m| K::ModSeq(ModSeq(m))),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 1..4).prop_map(K::And),
            inner.clone().prop_map(|k| K::Not(Box::new(k))),
            (inner.clone(), inner).prop_map(|(a, b)| K::Or(Box::new(a), Box::new(b))),
        ]
    })
}

pub fn section() -> impl Strategy<Value = Section> {
    let names = vec("[A-Za-z0-9-]{1,12}", 1..4);
    (
        vec(1u32..20, 0..4),
        prop_oneof![
            Just(None),
            Just(Some(SectionText::Header)),
            Just(Some(SectionText::Text)),
            Just(Some(SectionText::Mime)),
            names
                .clone()
                .prop_map(|n| Some(SectionText::HeaderFields(n))),
            names.prop_map(|n| Some(SectionText::HeaderFieldsNot(n))),
        ],
    )
        .prop_map(|(part, text)| {
            // MIME needs a part number.
            let text = if part.is_empty() && text == Some(SectionText::Mime) {
                Some(SectionText::Text)
            } else {
                text
            };
            Section { part, text }
        })
}

pub fn fetch_attr() -> impl Strategy<Value = FetchAttr> {
    prop_oneof![
        Just(FetchAttr::Envelope),
        Just(FetchAttr::Flags),
        Just(FetchAttr::InternalDate),
        Just(FetchAttr::Rfc822),
        Just(FetchAttr::Rfc822Header),
        Just(FetchAttr::Rfc822Size),
        Just(FetchAttr::Rfc822Text),
        Just(FetchAttr::Body),
        Just(FetchAttr::BodyStructure),
        Just(FetchAttr::Uid),
        Just(FetchAttr::ModSeq),
        (any::<bool>(), section(), option::of(partial())).prop_map(|(peek, section, partial)| {
            FetchAttr::BodySection {
                peek,
                section,
                partial,
            }
        }),
        (
            any::<bool>(),
            vec(1u32..=u32::MAX, 0..4),
            option::of(partial())
        )
            .prop_map(|(peek, part, partial)| FetchAttr::Binary {
                peek,
                part,
                partial
            }),
        vec(1u32..=u32::MAX, 0..4).prop_map(|part| FetchAttr::BinarySize { part }),
    ]
}

/// `<origin.length>`: `number64` and `nz-number64` (RFC 9051), mostly in
/// 32 bits as clients send them.
fn partial() -> impl Strategy<Value = (u64, u64)> {
    const NUMBER64_MAX: u64 = 0x7fff_ffff_ffff_ffff;
    prop_oneof![
        3 => (0..=u64::from(u32::MAX), 1..=u64::from(u32::MAX)),
        1 => (0..=NUMBER64_MAX, 1..=NUMBER64_MAX),
    ]
}

/// A CATENATE part: TEXT (possibly with NUL, a literal8) or URL.
pub fn cat_part() -> impl Strategy<Value = CatPart> {
    prop_oneof![
        vec(any::<u8>(), 0..60).prop_map(|t| CatPart::Text(Bytes::from(t))),
        "[!-~&&[^\\\"%{}()]]{1,60}".prop_map(CatPart::Url),
    ]
}

/// One `append-message`: flags, date, literal or CATENATE.
pub fn append_message() -> impl Strategy<Value = AppendMessage> {
    (
        vec(flag(), 0..3),
        option::of(internal_date()),
        prop_oneof![
            vec(any::<u8>(), 1..100).prop_map(|m| AppendContent::Literal(Bytes::from(m))),
            vec(cat_part(), 1..4).prop_map(AppendContent::Catenate),
        ],
    )
        .prop_map(|(flags, date, content)| AppendMessage {
            flags,
            date,
            content,
        })
}

fn dedup<T: PartialEq>(v: Vec<T>) -> Vec<T> {
    let mut out = Vec::new();
    for x in v {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

/// Any valid command.
pub fn command() -> impl Strategy<Value = Command> {
    let any_state = prop_oneof![
        Just(Command::Capability),
        Just(Command::Noop),
        Just(Command::Logout),
        Just(Command::StartTls),
        Just(Command::Namespace),
        Just(Command::Idle),
        Just(Command::Check),
        Just(Command::Close),
        Just(Command::Unselect),
        Just(Command::Expunge { uids: None }),
        seq_set().prop_map(|s| Command::Expunge { uids: Some(s) }),
        option::of(vec(("[a-z-]{1,30}", option::of("[ -~]{0,40}")), 0..5)).prop_map(Command::Id),
        vec("[A-Z0-9=+-]{1,12}", 1..4).prop_map(Command::Enable),
        (
            "[A-Z0-9-]{1,12}",
            option::of(prop_oneof![
                Just("=".to_string()),
                vec(any::<u8>(), 1..30).prop_map(|b| b64(&b)),
            ])
        )
            .prop_map(|(mechanism, initial_response)| Command::Authenticate {
                mechanism,
                initial_response
            }),
        (text(), text()).prop_map(|(username, password)| Command::Login { username, password }),
    ];
    let mailbox_cmds = prop_oneof![
        (
            mailbox(),
            any::<bool>(),
            option::of((
                1u32..=u32::MAX,
                modseq(),
                option::of(seq_set()),
                option::of((seq_set(), seq_set()))
            )),
            any::<bool>()
        )
            .prop_map(|(mailbox, condstore, q, examine)| {
                let params = SelectParams {
                    condstore,
                    qresync: q.map(|(v, m, k, s)| QresyncParams {
                        uid_validity: UidValidity(v),
                        modseq: ModSeq(m),
                        known_uids: k,
                        seq_match: s,
                    }),
                };
                if examine {
                    Command::Examine { mailbox, params }
                } else {
                    Command::Select { mailbox, params }
                }
            }),
        (
            mailbox(),
            vec(proptest::sample::select(SpecialUse::ALL.to_vec()), 0..3)
        )
            .prop_map(|(mailbox, u)| Command::Create {
                mailbox,
                special_use: dedup(u)
            }),
        mailbox().prop_map(|mailbox| Command::Delete { mailbox }),
        (mailbox(), mailbox()).prop_map(|(from, to)| Command::Rename { from, to }),
        mailbox().prop_map(|mailbox| Command::Subscribe { mailbox }),
        mailbox().prop_map(|mailbox| Command::Unsubscribe { mailbox }),
        (
            mailbox(),
            vec(pattern(), 1..4),
            vec(
                proptest::sample::select(vec![
                    "SUBSCRIBED",
                    "REMOTE",
                    "RECURSIVEMATCH",
                    "SPECIAL-USE"
                ]),
                0..3
            ),
            any::<(bool, bool, bool)>(),
            option::of(vec(status_item(), 1..4)),
        )
            .prop_map(
                |(reference, patterns, sel, (subscribed, children, special_use), status)| {
                    Command::List(ListArgs {
                        reference,
                        patterns,
                        selection: sel.into_iter().map(str::to_string).collect(),
                        returns: ListReturn {
                            subscribed,
                            children,
                            special_use,
                            status,
                        },
                    })
                }
            ),
        (mailbox(), pattern(), any::<bool>()).prop_map(|(reference, pattern, x)| if x {
            Command::Xlist { reference, pattern }
        } else {
            Command::Lsub { reference, pattern }
        }),
        (mailbox(), vec(status_item(), 1..9))
            .prop_map(|(mailbox, items)| Command::Status { mailbox, items }),
        (
            mailbox(),
            vec(flag(), 0..4),
            option::of(internal_date()),
            vec(any::<u8>(), 0..200)
        )
            .prop_map(|(mailbox, flags, date, m)| Command::Append {
                mailbox,
                flags,
                date,
                message: Bytes::from(m)
            }),
        (mailbox(), vec(append_message(), 1..4))
            .prop_filter("one literal message is Command::Append", |(_, ms)| {
                ms.len() > 1 || matches!(ms[0].content, AppendContent::Catenate(_))
            })
            .prop_map(|(mailbox, messages)| Command::AppendMany { mailbox, messages }),
        Just(Command::Compress("DEFLATE".into())),
        option::of(notify_set()).prop_map(Command::Notify),
        mailbox().prop_map(|mailbox| Command::GetAcl { mailbox }),
        (mailbox(), text(), "[+-]?[a-z]{0,11}").prop_map(|(mailbox, identifier, rights)| {
            Command::SetAcl {
                mailbox,
                identifier,
                rights,
            }
        }),
        (mailbox(), text()).prop_map(|(mailbox, identifier)| Command::DeleteAcl {
            mailbox,
            identifier
        }),
        (mailbox(), text()).prop_map(|(mailbox, identifier)| Command::ListRights {
            mailbox,
            identifier
        }),
        mailbox().prop_map(|mailbox| Command::MyRights { mailbox }),
        text().prop_map(|root| Command::GetQuota { root }),
        mailbox().prop_map(|mailbox| Command::GetQuotaRoot { mailbox }),
        (text(), vec(("[A-Z]{1,10}", 0u64..=(i64::MAX as u64)), 0..3))
            .prop_map(|(root, limits)| Command::SetQuota { root, limits }),
    ];
    let selected = prop_oneof![
        (
            any::<bool>(),
            option::of("[A-Z0-9-]{1,10}"),
            option::of(vec(
                proptest::sample::select(vec![
                    SearchReturn::Min,
                    SearchReturn::Max,
                    SearchReturn::All,
                    SearchReturn::Count,
                    SearchReturn::Save
                ]),
                1..4
            )),
            search_key()
        )
            .prop_map(|(uid, charset, ret, criteria)| Command::Search {
                uid,
                charset,
                return_options: ret.map(dedup),
                criteria
            }),
        (
            any::<bool>(),
            vec(
                (
                    any::<bool>(),
                    proptest::sample::select(vec![
                        SortKey::Arrival,
                        SortKey::Cc,
                        SortKey::Date,
                        SortKey::From,
                        SortKey::Size,
                        SortKey::Subject,
                        SortKey::To,
                        SortKey::DisplayFrom,
                        SortKey::DisplayTo
                    ])
                )
                    .prop_map(|(reverse, key)| SortCriterion { reverse, key }),
                1..4
            ),
            "[A-Z0-9-]{1,10}",
            search_key()
        )
            .prop_flat_map(|(uid, criteria, charset, search)| {
                option::of(vec(
                    proptest::sample::select(vec![
                        SearchReturn::Min,
                        SearchReturn::Max,
                        SearchReturn::All,
                        SearchReturn::Count,
                        SearchReturn::Save,
                    ]),
                    1..4,
                ))
                .prop_map(move |ret| Command::Sort {
                    uid,
                    return_options: ret.map(dedup),
                    criteria: criteria.clone(),
                    charset: charset.clone(),
                    search: search.clone(),
                })
            }),
        (
            any::<bool>(),
            proptest::sample::select(vec![
                ThreadAlgorithm::OrderedSubject,
                ThreadAlgorithm::References,
                ThreadAlgorithm::Refs
            ]),
            "[A-Z0-9-]{1,10}",
            search_key()
        )
            .prop_map(|(uid, algorithm, charset, search)| Command::Thread {
                uid,
                algorithm,
                charset,
                search
            }),
        (
            any::<bool>(),
            seq_set(),
            vec(fetch_attr(), 1..6),
            option::of(modseq()),
            any::<bool>()
        )
            .prop_map(|(uid, set, items, cs, v)| Command::Fetch {
                uid,
                set,
                items,
                changed_since: cs.map(ModSeq),
                vanished: uid && cs.is_some() && v,
            }),
        (
            any::<bool>(),
            seq_set(),
            proptest::sample::select(vec![StoreKind::Replace, StoreKind::Add, StoreKind::Remove]),
            any::<bool>(),
            vec(flag(), 0..4),
            option::of(0u64..=(i64::MAX as u64))
        )
            .prop_map(|(uid, set, kind, silent, flags, us)| Command::Store {
                uid,
                set,
                kind,
                silent,
                flags,
                unchanged_since: us.map(ModSeq)
            }),
        (any::<bool>(), 1u32..=u32::MAX, mailbox(), append_message()).prop_map(
            |(uid, target, mailbox, message)| Command::Replace {
                uid,
                target,
                mailbox,
                message
            }
        ),
        (any::<bool>(), seq_set(), mailbox(), any::<bool>()).prop_map(|(uid, set, mailbox, m)| {
            if m {
                Command::Move { uid, set, mailbox }
            } else {
                Command::Copy { uid, set, mailbox }
            }
        }),
    ];
    prop_oneof![any_state, mailbox_cmds, selected]
}

/// Standard base64 with padding.
pub fn b64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A NOTIFY SET (RFC 5465).
pub fn notify_set() -> impl Strategy<Value = mailroom_imap::extension::notify::NotifySet> {
    use mailroom_imap::extension::notify::{Event, EventGroup, Filter, NotifySet};
    let filter = prop_oneof![
        Just(Filter::Selected),
        Just(Filter::SelectedDelayed),
        Just(Filter::Inboxes),
        Just(Filter::Personal),
        Just(Filter::Subscribed),
        vec(mailbox(), 1..3).prop_map(Filter::Subtree),
        vec(mailbox(), 1..3).prop_map(Filter::Mailboxes),
    ];
    let event = prop_oneof![
        vec(fetch_attr(), 0..3).prop_map(Event::MessageNew),
        Just(Event::MessageExpunge),
        Just(Event::FlagChange),
        Just(Event::AnnotationChange),
        Just(Event::MailboxName),
        Just(Event::SubscriptionChange),
        Just(Event::MailboxMetadataChange),
        Just(Event::ServerMetadataChange),
        "X[A-Z]{1,8}".prop_map(Event::Other),
    ];
    (any::<bool>(), vec((filter, vec(event, 0..4)), 1..4)).prop_map(|(status, groups)| NotifySet {
        status,
        groups: groups
            .into_iter()
            .map(|(filter, events)| EventGroup { filter, events })
            .collect(),
    })
}
