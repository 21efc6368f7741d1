//! Every kind of change a client makes to an account, made on a primary's
//! store step by step: appends, flags (the owner's, and another user's
//! `\Seen` on a shared mailbox), expunges, COPY and MOVE, mailboxes
//! created, renamed (also a swap, and INBOX), deleted, special use, ACL,
//! subscriptions, quota; then a second account.
//!
//! [`every_kind_of_change`] runs it against a following primary, waiting
//! for the replica to be identical after each step and checking there
//! what a client of the replica would see; [`make_every_kind_of_change`]
//! makes the same changes with no replica looking (what a replica catches
//! up with when it connects), and [`check_every_kind_of_change`] checks
//! the end state on both ends once they are identical.

use mailroom_core::{
    Flag, MailboxName, MailboxStatus, ModSeq, Quota, QuotaLimits, Replication, Rights, SpecialUse,
    StoreOp, Uid,
};

use super::{append_n, assert_same_usage, inbox, mailbox, wait_identical};

/// The steps with the replica `r` followed after each; `owner`'s account
/// must not exist yet on either end, `viewer`'s neither.
pub async fn every_kind_of_change<P, R>(p: &P, r: &R, owner: &str, viewer: &str)
where
    P: Replication + Quota + ?Sized,
    R: Replication + Quota + ?Sized,
{
    steps(p, Some(r), owner, viewer).await;
    check_every_kind_of_change(p, r, owner, viewer).await;
}

/// The steps on `p` alone.
pub async fn make_every_kind_of_change<P: Replication + Quota + ?Sized>(
    p: &P,
    owner: &str,
    viewer: &str,
) {
    steps::<P, P>(p, None, owner, viewer).await;
}

/// Waits for `r` to be identical to `p` for `owner` (if following).
async fn step<P, R>(p: &P, r: Option<&R>, owner: &str)
where
    P: Replication + ?Sized,
    R: Replication + ?Sized,
{
    if let Some(r) = r {
        wait_identical(p, r, owner).await;
    }
}

async fn steps<P, R>(p: &P, r: Option<&R>, owner: &str, viewer: &str)
where
    P: Replication + Quota + ?Sized,
    R: Replication + Quota + ?Sized,
{
    // Appends, with flags and keywords.
    p.ensure_account(owner).await.unwrap();
    append_n(p, &inbox(owner), 0, 10, 600).await;
    step(p, r, owner).await;

    // Flags (owner and another user's \Seen on a shared mailbox), keywords.
    let mbox = p.open(&inbox(owner), owner).await.unwrap();
    mbox.store(
        &[Uid(1), Uid(2), Uid(3)],
        &StoreOp::Add(
            [Flag::Flagged, Flag::Keyword("$Label1".into())]
                .into_iter()
                .collect(),
        ),
        None,
    )
    .await
    .unwrap();
    p.set_acl(&inbox(owner), viewer, Rights::parse("lrs"))
        .await
        .unwrap();
    let as_viewer = p.open(&inbox(owner), viewer).await.unwrap();
    as_viewer
        .store(
            &[Uid(4)],
            &StoreOp::Add([Flag::Seen].into_iter().collect()),
            None,
        )
        .await
        .unwrap();
    step(p, r, owner).await;
    if let Some(r) = r {
        let uv = p.status(&inbox(owner), owner).await.unwrap().uid_validity;
        let seen = r.records(&inbox(owner), uv, &[Uid(4)]).await.unwrap();
        assert_eq!(
            seen[0].seen_by,
            vec![viewer.to_owned()],
            "the viewer's \\Seen replicated"
        );
    }

    // Expunges.
    mbox.store(
        &[Uid(5), Uid(6)],
        &StoreOp::Add([Flag::Deleted].into_iter().collect()),
        None,
    )
    .await
    .unwrap();
    assert_eq!(mbox.expunge(None).await.unwrap(), vec![Uid(5), Uid(6)]);
    step(p, r, owner).await;
    if let Some(r) = r {
        let replica_inbox = r.open(&inbox(owner), owner).await.unwrap();
        let changes = replica_inbox.changes_since(ModSeq(0)).await.unwrap();
        assert_eq!(
            changes.expunged.iter().map(|(u, _)| *u).collect::<Vec<_>>(),
            vec![Uid(5), Uid(6)],
            "QRESYNC on the replica reports the same expunges"
        );
    }

    // COPY and MOVE into another mailbox.
    let archive = mailbox(owner, "Archive");
    p.create(&archive, None).await.unwrap();
    mbox.copy_to(&[Uid(7), Uid(8)], &archive).await.unwrap();
    mbox.move_to(&[Uid(9)], &archive).await.unwrap();
    step(p, r, owner).await;
    if let Some(r) = r {
        assert_eq!(r.status(&archive, owner).await.unwrap().messages, 3);
        let left = r.status(&inbox(owner), owner).await.unwrap();
        assert_eq!(left.messages, 7, "UIDs 5, 6 expunged and 9 moved");
    }

    // Mailboxes: create, rename (also a swap), delete, special use, ACL,
    // subscriptions, quota, and a rename of INBOX.
    p.create(&mailbox(owner, "Projects"), None).await.unwrap();
    p.create(&mailbox(owner, "Projects/A"), Some(SpecialUse::Archive))
        .await
        .unwrap();
    append_n(p, &mailbox(owner, "Projects/A"), 100, 3, 300).await;
    step(p, r, owner).await;
    let rename = |from: &str, to: &str| {
        let (from, to) = (mailbox(owner, from), MailboxName::new(to).unwrap());
        async move { p.rename(&from, &to).await.unwrap() }
    };
    rename("Projects/A", "Old").await;
    rename("Projects", "Tmp").await;
    rename("Old", "Projects").await;
    rename("Tmp", "Old").await;
    p.delete(&mailbox(owner, "Junk")).await.unwrap();
    p.set_special_use(&mailbox(owner, "Old"), Some(SpecialUse::Trash))
        .await
        .unwrap();
    p.set_acl(&mailbox(owner, "Projects"), "anyone", Rights::parse("lr"))
        .await
        .unwrap();
    p.set_subscribed(owner, &MailboxName::new("Projects").unwrap(), true)
        .await
        .unwrap();
    p.set_subscribed(owner, &MailboxName::new("Junk").unwrap(), false)
        .await
        .unwrap();
    p.set_limits(
        owner,
        QuotaLimits {
            storage_bytes: Some(1 << 20),
            messages: Some(500),
        },
    )
    .await
    .unwrap();
    rename("INBOX", "Saved").await;
    step(p, r, owner).await;

    // A second account.
    p.ensure_account(viewer).await.unwrap();
    append_n(p, &inbox(viewer), 0, 2, 200).await;
    step(p, r, viewer).await;
}

/// The end state of the steps, on both ends (identical by now): the
/// mailboxes, the quota, a renamed mailbox's UIDVALIDITY, UIDNEXT and
/// HIGHESTMODSEQ, and every mailbox's MAILBOXID the primary's.
pub async fn check_every_kind_of_change<P, R>(p: &P, r: &R, owner: &str, viewer: &str)
where
    P: Replication + Quota + ?Sized,
    R: Replication + Quota + ?Sized,
{
    wait_identical(p, r, owner).await;
    wait_identical(p, r, viewer).await;
    assert_same_usage(p, r, owner).await;
    assert_same_usage(p, r, viewer).await;
    let names: Vec<String> = r
        .account_state(owner)
        .await
        .unwrap()
        .unwrap()
        .mailboxes
        .iter()
        .map(|m| m.name.to_string())
        .collect();
    assert_eq!(
        names,
        [
            "Archive", "Drafts", "INBOX", "Old", "Projects", "Saved", "Sent", "Trash"
        ]
    );
    assert_eq!(
        r.usage(owner).await.unwrap().limits.messages,
        Some(500),
        "quota limits replicated"
    );
    // The renamed mailbox kept its UIDVALIDITY and UIDs on the replica.
    let moved = r.status(&mailbox(owner, "Projects"), owner).await.unwrap();
    let original = p.status(&mailbox(owner, "Projects"), owner).await.unwrap();
    assert_eq!(
        (moved.uid_validity, moved.uid_next, moved.highest_modseq),
        (
            original.uid_validity,
            original.uid_next,
            original.highest_modseq
        )
    );
    assert_eq!(moved.messages, 3);
    // What INBOX held is in Saved: 10 delivered, 2 expunged, 1 moved.
    let saved = r.status(&mailbox(owner, "Saved"), owner).await.unwrap();
    assert_eq!(saved.messages, 7);
    // STATUS is the same on both ends, MAILBOXID included (RFC 8474), on
    // every mailbox; \Recent is each store's own.
    for name in names {
        let m = mailbox(owner, &name);
        let (a, b) = (
            p.status(&m, owner).await.unwrap(),
            r.status(&m, owner).await.unwrap(),
        );
        assert_eq!(a.mailbox_id, b.mailbox_id, "MAILBOXID of {name}");
        assert_eq!(
            MailboxStatus { recent: 0, ..a },
            MailboxStatus { recent: 0, ..b },
            "STATUS of {name}"
        );
    }
}
