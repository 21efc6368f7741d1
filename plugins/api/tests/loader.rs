//! The loader against real plugin libraries built by the workspace: a
//! plugin of another ABI version is refused with both versions named, a
//! plugin of the wrong kind is refused, and a plugin that panics does not
//! take the host down.

use std::sync::Arc;
use std::time::Duration;

use mailroom_core::{Authenticator, Credentials, Error};
use mailroom_plugin::abi::{ABI_VERSION, PluginKind};
use mailroom_plugin::{
    CallLimits, PluginAuthenticator, PluginError, PluginLibrary, load_authenticator,
};
use mailroom_testkit::cdylib;

fn creds(user: &str, password: &str) -> Credentials {
    Credentials {
        authzid: None,
        authcid: user.into(),
        password: password.into(),
    }
}

#[test]
fn another_abi_version_is_refused_naming_both_versions() {
    let path = cdylib::build("mailroom-plugin-test-other-abi");
    let err = PluginLibrary::load(&path, PluginKind::Auth).map(|_| ());
    let Err(PluginError::AbiMismatch {
        plugin,
        plugin_abi,
        host_abi,
        plugin_api,
        host_api,
        ..
    }) = &err
    else {
        panic!("expected an ABI mismatch, got {err:?}");
    };
    assert_eq!((*plugin_abi, *host_abi), (ABI_VERSION + 1, ABI_VERSION));
    assert!(
        plugin.starts_with("mailroom-plugin-test-other-abi "),
        "{plugin}"
    );
    assert_eq!(plugin_api, host_api);
    let message = err.map_err(|e| e.to_string()).err().unwrap_or_default();
    assert!(
        message.contains(&format!("built for plugin ABI version {}", ABI_VERSION + 1))
            && message.contains(&format!("this server speaks ABI version {ABI_VERSION}"))
            && message.contains(&path.display().to_string()),
        "{message}"
    );
    // The async loader refuses it the same way (its `init` would fail with
    // another error if it had been called).
    let err = load_authenticator(&path, "", CallLimits::default()).map(|_| ());
    assert!(
        matches!(err, Err(PluginError::AbiMismatch { .. })),
        "{err:?}"
    );
}

#[test]
fn a_plugin_of_another_kind_is_refused() {
    let path = cdylib::build("mailroom-plugin-test-panics");
    let err = PluginLibrary::load(&path, PluginKind::Billing).map(|_| ());
    let message = err.map_err(|e| e.to_string()).err().unwrap_or_default();
    assert!(
        message.contains("is a auth plugin, configured as a billing plugin"),
        "{message}"
    );
}

#[test]
fn a_panic_in_init_is_an_error() {
    let path = cdylib::build("mailroom-plugin-test-panics");
    let err =
        PluginAuthenticator::load(&path, "panic_in_init = true", CallLimits::default()).map(|_| ());
    assert!(
        matches!(&err, Err(PluginError::Panicked { function: "init", message, .. })
            if message.contains("asked to panic in init")),
        "{err:?}"
    );
    let err =
        PluginAuthenticator::load(&path, "panic_in_init = 3", CallLimits::default()).map(|_| ());
    assert!(
        matches!(
            &err,
            Err(PluginError::Call {
                function: "init",
                ..
            })
        ),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_plugin_does_not_take_the_host_down() {
    let path = cdylib::build("mailroom-plugin-test-panics");
    let auth = load_authenticator(&path, "", CallLimits::default()).unwrap();

    let who = auth
        .authenticate(&creds("alice@x.org", "secret"))
        .await
        .unwrap();
    assert_eq!(
        (who.user.as_str(), who.domain.as_deref()),
        ("alice@x.org", Some("x.org"))
    );
    assert!(matches!(
        auth.authenticate(&creds("alice@x.org", "nope")).await,
        Err(Error::AuthFailed)
    ));

    for _ in 0..3 {
        let err = auth.authenticate(&creds("panic@x.org", "secret")).await;
        assert!(
            matches!(&err, Err(Error::Backend(m)) if m.contains("panicked") && m.contains("asked to panic in authenticate")),
            "{err:?}"
        );
        let err = auth.lookup("panic@x.org").await;
        assert!(
            matches!(&err, Err(Error::Backend(m)) if m.contains("panicked")),
            "{err:?}"
        );
        // ... and the same instance keeps answering.
        assert_eq!(
            auth.authenticate(&creds("bob@y.org", "secret"))
                .await
                .unwrap()
                .user,
            "bob@y.org"
        );
        assert_eq!(
            auth.lookup("carol@y.org").await.unwrap().map(|p| p.user),
            Some("carol@y.org".into())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_are_bounded_and_all_answered() {
    let path = cdylib::build("mailroom-plugin-test-panics");
    let limits = CallLimits {
        concurrency: 2,
        timeout: Duration::from_secs(30),
    };
    let auth: Arc<dyn Authenticator> =
        Arc::new(PluginAuthenticator::load(&path, "", limits).unwrap());
    let calls = (0..64).map(|i| {
        let auth = Arc::clone(&auth);
        tokio::spawn(async move {
            let user = if i % 8 == 0 {
                "panic@x.org".to_owned()
            } else {
                format!("u{i}@x.org")
            };
            (i, auth.authenticate(&creds(&user, "secret")).await)
        })
    });
    for call in calls {
        let (i, result) = call.await.unwrap();
        if i % 8 == 0 {
            assert!(matches!(result, Err(Error::Backend(_))), "{i}: {result:?}");
        } else {
            assert_eq!(result.unwrap().user, format!("u{i}@x.org"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_call_times_out_and_keeps_its_slot() {
    let path = cdylib::build("mailroom-plugin-test-panics");
    let limits = CallLimits {
        concurrency: 1,
        timeout: Duration::from_millis(300),
    };
    let auth = PluginAuthenticator::load(&path, "slow_ms = 1500", limits).unwrap();
    let started = std::time::Instant::now();
    let err = auth.authenticate(&creds("slow@x.org", "secret")).await;
    assert!(
        matches!(&err, Err(Error::Busy(m)) if m.contains("did not answer within 300ms")),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(1200),
        "{:?}",
        started.elapsed()
    );
    // The hung call still holds the only slot: the next call waits and times out too.
    let err = auth.authenticate(&creds("alice@x.org", "secret")).await;
    assert!(matches!(&err, Err(Error::Busy(_))), "{err:?}");
    // Once the slow call has returned, the slot is free again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        auth.authenticate(&creds("alice@x.org", "secret"))
            .await
            .unwrap()
            .user,
        "alice@x.org"
    );
}

/// A plugin exported without the SCRAM extension (as every plugin built
/// before the extension existed: the declaration did not change) loads,
/// logs in with PLAIN as before and offers no SCRAM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_without_the_scram_extension_offers_no_scram() {
    let path = cdylib::build("mailroom-plugin-test-panics");
    let plugin = PluginAuthenticator::load(&path, "", CallLimits::default()).unwrap();
    let auth: Arc<dyn Authenticator> = Arc::new(plugin);
    assert_eq!(
        auth.mechanisms(),
        [
            mailroom_core::Mechanism::Plain,
            mailroom_core::Mechanism::Login
        ]
    );
    assert_eq!(auth.scram_credentials("alice@x.org").await.unwrap(), None);
    assert!(
        auth.authenticate(&creds("alice@x.org", "secret"))
            .await
            .is_ok()
    );
    // Without the extension, a user may act only as itself.
    assert_eq!(
        auth.authorize("alice@x.org", None).await.unwrap().user,
        "alice@x.org"
    );
    assert!(matches!(
        auth.authorize("alice@x.org", Some("bob@x.org")).await,
        Err(Error::AuthFailed)
    ));
}
