//! The credential cache as a client meets it: the second login skips the
//! argon2 hash; a password changed on disk invalidates the cached one.

use std::time::{Duration, Instant};

use mailroom_core::{Authenticator, Credentials, Error};
use mailroomd::auth::FileAuthenticator;
use mailroomd::users::{UserDb, hash_password};

fn creds(user: &str, password: &str) -> Credentials {
    Credentials {
        authzid: None,
        authcid: user.into(),
        password: password.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_login_is_fast_and_password_change_invalidates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.toml");
    UserDb::modify(&path, |db| {
        db.add("dana@example.net", hash_password("first")?, vec![])
    })
    .unwrap();
    let auth = FileAuthenticator::new(&path, Duration::from_secs(60)).unwrap();

    let t = Instant::now();
    auth.authenticate(&creds("dana@example.net", "first"))
        .await
        .unwrap();
    let first = t.elapsed();
    assert_eq!(auth.verifications(), 1);

    let mut fastest = Duration::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        auth.authenticate(&creds("dana@EXAMPLE.net", "first"))
            .await
            .unwrap();
        fastest = fastest.min(t.elapsed());
    }
    assert_eq!(
        auth.verifications(),
        1,
        "cached logins run no argon2 verification"
    );
    assert!(
        fastest * 4 < first,
        "cached login ({fastest:?}) should be far faster than the first ({first:?})"
    );

    // `mailroomd user passwd` from another process rewrites the file
    UserDb::modify(&path, |db| {
        db.set_password("dana@example.net", hash_password("second")?)
    })
    .unwrap();
    assert!(matches!(
        auth.authenticate(&creds("dana@example.net", "first")).await,
        Err(Error::AuthFailed)
    ));
    auth.authenticate(&creds("dana@example.net", "second"))
        .await
        .unwrap();
    assert_eq!(auth.verifications(), 3);

    // a wrong password is never cached, however often it is tried
    for _ in 0..3 {
        assert!(
            auth.authenticate(&creds("dana@example.net", "guess"))
                .await
                .is_err()
        );
    }
    assert_eq!(auth.verifications(), 6);
}

#[tokio::test]
async fn users_added_later_are_seen_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.toml");
    let auth = FileAuthenticator::new(&path, Duration::from_secs(60)).unwrap();
    assert_eq!(auth.lookup("erin@example.net").await.unwrap(), None);
    UserDb::modify(&path, |db| {
        db.add("erin@example.net", hash_password("pw")?, vec![])
    })
    .unwrap();
    let p = auth.lookup("erin@Example.NET").await.unwrap().unwrap();
    assert_eq!(p.user, "erin@example.net");
    assert_eq!(p.domain.as_deref(), Some("example.net"));
    auth.authenticate(&creds("erin@example.net", "pw"))
        .await
        .unwrap();
}
