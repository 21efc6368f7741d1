//! The auth plugin built as a cdylib by the workspace and loaded through
//! the loader, as mailroomd loads it: logins, roles, failures, lookups.

use mailroom_auth_sqlite::{Role, add_domain, add_user, create_database, set_enabled};
use mailroom_core::sasl::scram::ScramClient;
use mailroom_core::sasl::{Exchange, ScramCredentials, Security, Step};
use mailroom_core::{Authenticator, Credentials, Error, Mechanism};
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

/// Runs one SCRAM-SHA-256 exchange (core's server side, core's client)
/// against `auth`; returns the last step.
#[allow(clippy::unwrap_used)]
async fn scram_login(auth: &dyn Authenticator, user: &str, password: &str) -> Step {
    let security = Security {
        plaintext_allowed: false,
        exporter: None,
    };
    let mut exchange = Exchange::start(auth, Mechanism::ScramSha256, security).unwrap();
    let mut client = ScramClient::new(user, password, None);
    let Step::Challenge(server_first) = exchange.step(auth, client.client_first().as_bytes()).await
    else {
        panic!("no server-first");
    };
    let fin = client.client_final(&server_first).unwrap();
    match exchange.step(auth, fin.as_bytes()).await {
        Step::Challenge(server_final) => {
            client.verify_server_final(&server_final).unwrap();
            exchange.step(auth, b"").await
        }
        other => other,
    }
}

/// The plugin hands the host SCRAM verifiers through the ABI's SCRAM
/// extension: the loaded plugin offers SCRAM-SHA-256 and -PLUS, a right
/// proof logs in (roles and authzid as with PLAIN), a wrong one, an unknown
/// user and a disabled one are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_through_the_loaded_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("users.sqlite");
    create_database(&db).unwrap();
    add_domain(&db, "example.com").unwrap();
    add_user(&db, "alice@example.com", "alice-pw", Role::User).unwrap();
    add_user(&db, "admin@example.com", "admin-pw", Role::DomainAdmin).unwrap();
    let path = cdylib::build("mailroom-auth-sqlite");
    let settings = format!("database = {:?}\n", db.display().to_string());
    let auth = load_authenticator(&path, &settings, CallLimits::default()).unwrap();
    assert_eq!(
        auth.mechanisms(),
        [
            Mechanism::Plain,
            Mechanism::Login,
            Mechanism::ScramSha256,
            Mechanism::ScramSha256Plus
        ]
    );
    let v = auth
        .scram_credentials("alice@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        v,
        ScramCredentials::derive("alice-pw", &v.salt, v.iterations)
    );

    match scram_login(&*auth, "alice@Example.com", "alice-pw").await {
        Step::Success { principal, .. } => assert_eq!(principal.user, "alice@example.com"),
        other => panic!("{other:?}"),
    }
    match scram_login(&*auth, "admin@example.com", "admin-pw").await {
        Step::Success { principal, .. } => assert!(principal.roles.domain_admin),
        other => panic!("{other:?}"),
    }
    // The domain admin acts as alice (authzid), through the plugin's rules.
    assert_eq!(
        auth.authorize("admin@example.com", Some("alice@example.com"))
            .await
            .unwrap()
            .user,
        "alice@example.com"
    );
    assert!(matches!(
        auth.authorize("alice@example.com", Some("admin@example.com"))
            .await,
        Err(Error::AuthFailed)
    ));
    for (user, pw) in [
        ("alice@example.com", "admin-pw"),
        ("ghost@example.com", "alice-pw"),
        ("no-at-sign", "x"),
    ] {
        let step = scram_login(&*auth, user, pw).await;
        assert!(matches!(step, Step::Refused { .. }), "{user}: {step:?}");
    }
    set_enabled(&db, "alice@example.com", false).unwrap();
    let step = scram_login(&*auth, "alice@example.com", "alice-pw").await;
    assert!(matches!(step, Step::Refused { .. }), "{step:?}");
}
