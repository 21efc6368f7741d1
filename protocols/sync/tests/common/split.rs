//! The split-brain scenarios of `split_brain.rs`, for any two backends:
//! both ends accept writes while apart (the replica promoted, the old
//! primary still running); reconnected, the merge leaves both ends
//! identical and loses nothing either acknowledged.

use std::collections::BTreeSet;
use std::sync::Arc;

use mailroom_core::{Flag, MessageGuid, Replication, Rights, Storage, StoreOp, Uid};
use mailroom_sync::{Primary, ReplicaConfig, Verdict};

use super::*;

const USER: &str = "grace@example.com";

pub fn guids(p: &Picture) -> BTreeSet<MessageGuid> {
    p.mailboxes
        .iter()
        .flat_map(|(_, records, _)| records.iter().map(|r| r.guid))
        .collect()
}

async fn flag<S: Storage + ?Sized>(store: &S, uid: u32, op: StoreOp) {
    let b = store.open(&inbox(USER), USER).await.unwrap();
    b.store(&[Uid(uid)], &op, None).await.unwrap();
}

fn add(flags: &[Flag]) -> StoreOp {
    StoreOp::Add(flags.iter().cloned().collect())
}

pub async fn both_ends_written_apart_are_merged_without_loss<
    P: Replication + mailroom_core::Quota + 'static,
    R: Replication + mailroom_core::Quota + 'static,
>(
    p: Arc<P>,
    r: Arc<R>,
) {
    let listener = listen(Arc::clone(&r), ReplicaConfig::new(secret())).await;
    p.ensure_account(USER).await.unwrap();
    append_n(&*p, &inbox(USER), 0, 5, 500).await;
    let primary = Primary::new(Arc::clone(&p) as Arc<dyn Replication>, primary_config());
    let mut conn = connect_to(&primary, listener.addr).await;
    conn.sync_all().await.unwrap();
    wait_identical(&*p, &*r, USER).await;
    let split = p.status(&inbox(USER), USER).await.unwrap();
    drop(conn);

    // Apart. The old primary: two deliveries (UIDs 6, 7), \Flagged on 1,
    // UID 2 expunged, \Answered on 3.
    append_n(&*p, &inbox(USER), 100, 2, 500).await;
    flag(&*p, 1, add(&[Flag::Flagged])).await;
    flag(&*p, 2, add(&[Flag::Deleted])).await;
    let b = p.open(&inbox(USER), USER).await.unwrap();
    assert_eq!(b.expunge(None).await.unwrap(), vec![Uid(2)]);
    // The promoted replica: two other deliveries taking the same UIDs 6, 7,
    // \Seen on 3 (before the primary's change to it), UID 4 expunged, a
    // keyword on 2 (which the primary expunged), \Draft on 5.
    append_n(&*r, &inbox(USER), 200, 2, 500).await;
    flag(&*r, 3, add(&[Flag::Seen])).await;
    flag(&*r, 4, add(&[Flag::Deleted])).await;
    let b = r.open(&inbox(USER), USER).await.unwrap();
    assert_eq!(b.expunge(None).await.unwrap(), vec![Uid(4)]);
    flag(&*r, 2, add(&[Flag::Keyword("$Important".into())])).await;
    flag(&*r, 5, add(&[Flag::Draft])).await;
    flag(&*p, 3, add(&[Flag::Answered])).await;

    let before_p = picture(&*p, USER).await.unwrap();
    let before_r = picture(&*r, USER).await.unwrap();
    let r_highest = r.status(&inbox(USER), USER).await.unwrap().highest_modseq;
    let p_highest = p.status(&inbox(USER), USER).await.unwrap().highest_modseq;

    // Reconnected: the merge.
    let mut conn = connect_to(&primary, listener.addr).await;
    let verdicts = conn.sync_all().await.unwrap();
    let inbox_verdict = verdicts[USER].iter().find(|(n, _)| n.is_inbox()).unwrap().1;
    assert_eq!(inbox_verdict, Verdict::Merged);
    let after_p = picture(&*p, USER).await.unwrap();
    let after_r = picture(&*r, USER).await.unwrap();
    assert_eq!(after_p, after_r, "both ends identical");
    assert_same_usage(&*p, &*r, USER).await;

    // Nothing acknowledged is lost: every message either end held is there,
    // except UID 4, expunged on the replica and unchanged on the primary.
    let uid4 = before_p
        .mailboxes
        .iter()
        .find(|(n, ..)| n.is_inbox())
        .unwrap()
        .1
        .iter()
        .find(|m| m.uid == Uid(4))
        .unwrap()
        .guid;
    let mut expected: BTreeSet<MessageGuid> =
        guids(&before_p).union(&guids(&before_r)).copied().collect();
    expected.remove(&uid4);
    assert_eq!(guids(&after_p), expected);

    let records = &after_p
        .mailboxes
        .iter()
        .find(|(n, ..)| n.is_inbox())
        .unwrap()
        .1;
    let by_uid = |u: u32| records.iter().find(|m| m.uid == Uid(u));
    // UID 2: expunged on the primary but changed on the replica: kept under
    // a new UID, with the replica's keyword.
    assert!(by_uid(2).is_none());
    let kept = records
        .iter()
        .find(|m| m.flags.contains(&Flag::Keyword("$Important".into())))
        .unwrap();
    assert!(kept.uid.0 >= 8, "{kept:?}");
    // The four deliveries that took UIDs 6 and 7 on either end: new UIDs
    // above both UIDNEXTs (8) on both ends.
    assert!(by_uid(6).is_none() && by_uid(7).is_none());
    assert_eq!(records.iter().filter(|m| m.uid.0 >= 8).count(), 5);
    // Flags merged per message: 1 from the primary, 5 from the replica,
    // 3 changed on both (the primary's later change wins).
    assert!(by_uid(1).unwrap().flags.contains(&Flag::Flagged));
    assert!(by_uid(5).unwrap().flags.contains(&Flag::Draft));
    assert!(by_uid(3).unwrap().flags.contains(&Flag::Answered));
    // HIGHESTMODSEQ above both ends' before, so CONDSTORE/QRESYNC clients of
    // either end resync; UIDVALIDITY unchanged.
    let status = r.status(&inbox(USER), USER).await.unwrap();
    assert!(status.highest_modseq > r_highest.max(p_highest));
    assert_eq!(status.uid_validity, split.uid_validity);
    // A QRESYNC client of the replica that had synced at the split learns of
    // UIDs 2, 4, 6, 7 as vanished and sees the changed and moved messages.
    let mbox = r.open(&inbox(USER), USER).await.unwrap();
    let changes = mbox.changes_since(split.highest_modseq).await.unwrap();
    let vanished: BTreeSet<u32> = changes.expunged.iter().map(|(u, _)| u.0).collect();
    for u in [4, 6, 7] {
        assert!(vanished.contains(&u), "{vanished:?}");
    }
    assert!(changes.changed.iter().any(|m| m.uid == Uid(1)));
    let stats = primary.stats();
    assert_eq!(stats.split_brain_merges, 1, "{stats:?}");
    assert_eq!(stats.renumbered, 5, "{stats:?}");

    // A second pass finds nothing to do.
    assert_in_step(&mut conn, USER).await;
    listener.task.abort();
}

pub async fn mailboxes_made_or_changed_apart_are_kept<
    P: Replication + mailroom_core::Quota + 'static,
    R: Replication + mailroom_core::Quota + 'static,
>(
    p: Arc<P>,
    r: Arc<R>,
) {
    let listener = listen(Arc::clone(&r), ReplicaConfig::new(secret())).await;
    p.ensure_account(USER).await.unwrap();
    for name in ["Old", "Keep"] {
        p.create(&mailbox(USER, name), None).await.unwrap();
        append_n(&*p, &mailbox(USER, name), name.len() * 100, 1, 300).await;
    }
    let primary = Primary::new(Arc::clone(&p) as Arc<dyn Replication>, primary_config());
    let mut conn = connect_to(&primary, listener.addr).await;
    conn.sync_all().await.unwrap();
    wait_identical(&*p, &*r, USER).await;
    drop(conn);

    // Apart. The old primary deletes Old and Keep and makes Notes (one
    // message); the promoted replica makes Ideas (one) and Notes too (two
    // messages), and delivers to Keep. Both ends pick UIDVALIDITYs from
    // the same past, so the replica's Ideas may well take the UIDVALIDITY
    // of the primary's Notes: it must not be taken for a rename.
    p.delete(&mailbox(USER, "Old")).await.unwrap();
    p.delete(&mailbox(USER, "Keep")).await.unwrap();
    p.create(&mailbox(USER, "Notes"), None).await.unwrap();
    append_n(&*p, &mailbox(USER, "Notes"), 1000, 1, 300).await;
    r.create(&mailbox(USER, "Ideas"), None).await.unwrap();
    append_n(&*r, &mailbox(USER, "Ideas"), 3000, 1, 300).await;
    r.create(&mailbox(USER, "Notes"), None).await.unwrap();
    append_n(&*r, &mailbox(USER, "Notes"), 2000, 2, 300).await;
    append_n(&*r, &mailbox(USER, "Keep"), 4000, 1, 300).await;
    let before_r = picture(&*r, USER).await.unwrap();
    let old_guid = before_r
        .mailboxes
        .iter()
        .find(|(n, ..)| n.as_str() == "Old")
        .unwrap()
        .1[0]
        .guid;

    let mut conn = connect_to(&primary, listener.addr).await;
    conn.sync_all().await.unwrap();
    let after_p = picture(&*p, USER).await.unwrap();
    assert_eq!(
        after_p,
        picture(&*r, USER).await.unwrap(),
        "both ends identical"
    );
    assert_same_usage(&*p, &*r, USER).await;
    let names: Vec<&str> = after_p.mailboxes.iter().map(|(n, ..)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "Drafts", "INBOX", "Ideas", "Junk", "Keep", "Notes", "Sent", "Trash"
        ],
        "Old deleted (untouched on the replica); Keep kept (written on the replica); Ideas adopted"
    );
    let count = |name: &str| {
        after_p
            .mailboxes
            .iter()
            .find(|(n, ..)| n.as_str() == name)
            .unwrap()
            .1
            .len()
    };
    assert_eq!(count("Notes"), 3, "both ends' Notes folded into one");
    assert_eq!(count("Keep"), 2);
    assert_eq!(count("Ideas"), 1);
    // Every message the replica held is still there, except Old's.
    let mut expected = guids(&before_r);
    expected.remove(&old_guid);
    assert!(expected.is_subset(&guids(&after_p)));
    assert!(
        primary.stats().split_brain_merges >= 3,
        "{:?}",
        primary.stats()
    );

    assert_in_step(&mut conn, USER).await;
    listener.task.abort();
}

/// Renames, ACLs and subscriptions changed on either end while apart: a
/// change made on one end only is kept on both, whichever end made it; of
/// two changes to one mailbox, the primary's stays.
pub async fn namespace_changes_made_apart_are_merged<
    P: Replication + mailroom_core::Quota + 'static,
    R: Replication + mailroom_core::Quota + 'static,
>(
    p: Arc<P>,
    r: Arc<R>,
) {
    let listener = listen(Arc::clone(&r), ReplicaConfig::new(secret())).await;
    p.ensure_account(USER).await.unwrap();
    for name in ["Work", "Lists", "Old", "Both", "Shared"] {
        p.create(&mailbox(USER, name), None).await.unwrap();
    }
    p.set_subscribed(USER, &name("Work"), true).await.unwrap();
    let primary = Primary::new(Arc::clone(&p) as Arc<dyn Replication>, primary_config());
    let mut conn = connect_to(&primary, listener.addr).await;
    conn.sync_all().await.unwrap();
    wait_identical(&*p, &*r, USER).await;
    drop(conn);

    // Apart. The promoted replica: renames Work to Projects, gives bob
    // read access to Lists and subscribes it, renames Both to Mine. The
    // old primary: renames Old to Older, renames Both to Theirs, gives
    // carol access to Shared.
    let bob = "bob@example.com";
    let carol = "carol@example.com";
    r.rename(&mailbox(USER, "Work"), &name("Projects"))
        .await
        .unwrap();
    r.set_acl(&mailbox(USER, "Lists"), bob, Rights::parse("lr"))
        .await
        .unwrap();
    r.set_subscribed(USER, &name("Lists"), true).await.unwrap();
    r.rename(&mailbox(USER, "Both"), &name("Mine"))
        .await
        .unwrap();
    p.rename(&mailbox(USER, "Old"), &name("Older"))
        .await
        .unwrap();
    p.rename(&mailbox(USER, "Both"), &name("Theirs"))
        .await
        .unwrap();
    p.set_acl(&mailbox(USER, "Shared"), carol, Rights::parse("lrs"))
        .await
        .unwrap();

    let mut conn = connect_to(&primary, listener.addr).await;
    conn.sync_all().await.unwrap();
    let after = picture(&*p, USER).await.unwrap();
    assert_eq!(
        after,
        picture(&*r, USER).await.unwrap(),
        "both ends identical"
    );
    assert_same_usage(&*p, &*r, USER).await;
    let names: Vec<&str> = after.mailboxes.iter().map(|(n, ..)| n.as_str()).collect();
    for kept in ["Projects", "Older", "Theirs", "Lists", "Shared"] {
        assert!(names.contains(&kept), "{kept} missing from {names:?}");
    }
    for gone in ["Work", "Old", "Both", "Mine"] {
        assert!(!names.contains(&gone), "{gone} still in {names:?}");
    }
    let acl = |n: &str| {
        after
            .state
            .mailboxes
            .iter()
            .find(|m| m.name.as_str() == n)
            .unwrap()
            .acl
            .clone()
    };
    assert_eq!(
        acl("Lists").rights_of(bob),
        Rights::parse("lr").unwrap(),
        "the replica's ACL"
    );
    assert_eq!(
        acl("Shared").rights_of(carol),
        Rights::parse("lrs").unwrap(),
        "the primary's ACL"
    );
    let subs: Vec<&str> = after
        .state
        .subscriptions
        .iter()
        .map(|n| n.as_str())
        .collect();
    assert!(
        subs.contains(&"Lists"),
        "the replica's subscription: {subs:?}"
    );
    assert_eq!(
        primary.stats().split_brain_merges,
        2,
        "Projects and Lists kept from the replica: {:?}",
        primary.stats()
    );
    assert_in_step(&mut conn, USER).await;
    assert_eq!(
        picture(&*p, USER).await.unwrap(),
        after,
        "a second pass changes nothing"
    );
    listener.task.abort();
}

fn name(s: &str) -> mailroom_core::MailboxName {
    mailroom_core::MailboxName::new(s).unwrap()
}
