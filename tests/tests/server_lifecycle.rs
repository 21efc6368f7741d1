//! mailroomd as an operator meets it: start, greeting, SIGTERM.

use mailroom_e2e::{Server, Store};

#[test]
fn greets_and_stops_cleanly_on_sigterm() {
    let mut server = Server::start(Store::Memory);
    let greeting = server.greeting();
    assert!(greeting.starts_with("* OK"), "greeting: {greeting:?}");
    assert!(
        greeting.contains("STARTTLS") || greeting.contains("CAPABILITY") || greeting.contains("OK")
    );
    assert!(server.stop(), "mailroomd must exit 0 on SIGTERM");
}
