//! The auth plugin built as a cdylib by the workspace and loaded through
//! the loader, as mailroomd loads it: logins, roles, failures, lookups.

use mailroom_auth_sqlite::{Role, add_domain, add_user, create_database, set_enabled};
use mailroom_core::{Authenticator, Credentials, Error};
use mailroom_plugin::{CallLimits, PluginAuthenticator, load_authenticator};
use mailroom_testkit::cdylib;

fn creds(user: &str, password: &str) -> Credentials {
    Credentials {
        authzid: None,
        authcid: user.into(),
        password: password.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_through_the_loaded_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("users.sqlite");
    create_database(&db).unwrap();
    add_domain(&db, "example.com").unwrap();
    add_user(&db, "alice@example.com", "alice-pw", Role::User).unwrap();
    add_user(&db, "admin@example.com", "admin-pw", Role::DomainAdmin).unwrap();
    add_user(&db, "root@example.com", "root-pw", Role::ServerAdmin).unwrap();

    let path = cdylib::build("mailroom-auth-sqlite");
    let settings = format!("database = {:?}\n", db.display().to_string());
    let plugin = PluginAuthenticator::load(&path, &settings, CallLimits::default()).unwrap();
    assert_eq!(plugin.info().name, "mailroom-auth-sqlite");
    let auth: std::sync::Arc<dyn Authenticator> = std::sync::Arc::new(plugin);

    let alice = auth
        .authenticate(&creds("alice@Example.com", "alice-pw"))
        .await
        .unwrap();
    assert_eq!(alice.user, "alice@example.com");
    assert_eq!(alice.domain.as_deref(), Some("example.com"));
    assert!(!alice.roles.domain_admin && !alice.roles.server_admin);
    let admin = auth
        .authenticate(&creds("admin@example.com", "admin-pw"))
        .await
        .unwrap();
    assert!(admin.roles.domain_admin && !admin.roles.server_admin);
    let root = auth
        .authenticate(&creds("root@example.com", "root-pw"))
        .await
        .unwrap();
    assert!(root.roles.server_admin);

    for (user, pw) in [
        ("alice@example.com", "admin-pw"),
        ("ghost@example.com", "alice-pw"),
        ("no-at-sign", "x"),
    ] {
        let err = auth.authenticate(&creds(user, pw)).await;
        assert!(matches!(err, Err(Error::AuthFailed)), "{user}: {err:?}");
    }

    // The admin acts as alice (SASL authzid).
    let mut as_alice = creds("admin@example.com", "admin-pw");
    as_alice.authzid = Some("alice@example.com".into());
    assert_eq!(
        auth.authenticate(&as_alice).await.unwrap().user,
        "alice@example.com"
    );

    assert_eq!(
        auth.lookup("alice@example.com")
            .await
            .unwrap()
            .map(|p| p.user),
        Some("alice@example.com".into())
    );
    assert_eq!(auth.lookup("ghost@example.com").await.unwrap(), None);

    // Changes to the database take effect without reloading the plugin.
    set_enabled(&db, "alice@example.com", false).unwrap();
    assert!(matches!(
        auth.authenticate(&creds("alice@example.com", "alice-pw"))
            .await,
        Err(Error::AuthFailed)
    ));
    add_user(&db, "bob@example.com", "bob-pw", Role::User).unwrap();
    assert_eq!(
        auth.authenticate(&creds("bob@example.com", "bob-pw"))
            .await
            .unwrap()
            .user,
        "bob@example.com"
    );
}

#[test]
fn bad_settings_are_a_clear_init_error() {
    let path = cdylib::build("mailroom-auth-sqlite");
    let err = load_authenticator(
        &path,
        "database = \"/nonexistent/x.sqlite\"",
        CallLimits::default(),
    )
    .map(|_| ())
    .map_err(|e| e.to_string());
    assert!(
        matches!(&err, Err(m) if m.contains("init") && m.contains("/nonexistent/x.sqlite")),
        "{err:?}"
    );
    let err = load_authenticator(&path, "", CallLimits::default())
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert!(
        matches!(&err, Err(m) if m.contains("missing field `database`")),
        "{err:?}"
    );
}
