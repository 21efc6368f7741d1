//! LMTP on the shared runtime: a connection over the limit gets `421 4.3.2`
//! and is closed; one that stays silent gets `421 4.4.2` after the idle
//! timeout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Harness, test_config};

#[tokio::test]
async fn over_the_limit_the_refusal_is_421() {
    let mut config = test_config();
    config.max_connections = 1;
    let h = Harness::start_with(config).await;
    let first = h.session().await;
    let mut second = h.connect().await;
    assert_eq!(
        second.line().await,
        "421 4.3.2 too many connections; try again later"
    );
    second.expect_closed().await;
    drop(first);
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_idle_timeout() {
    let mut config = test_config();
    config.idle_timeout = Duration::from_millis(300);
    let h = Harness::start_with(config).await;
    let mut c = h.session().await;
    assert_eq!(
        c.line().await,
        "421 4.4.2 idle for too long; closing connection"
    );
    c.expect_closed().await;
}
