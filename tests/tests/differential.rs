//! The same mailbox and commands against mailroomd and Dovecot (the
//! reference implementation, Debian's dovecot-imapd): SEARCH results,
//! FLAGS after STORE, CONDSTORE and QRESYNC states must agree.

use mailroom_e2e::{Dovecot, Server, Store};

#[test]
fn search_condstore_qresync_agree_with_dovecot() {
    let dovecot = Dovecot::start("alice@example.com", "secret");
    let server = Server::start(Store::Memory);
    server.add_user("alice@example.com", "secret");
    let port = dovecot.port().to_string();
    let out = server.run_python("differential.py", &[], &[("MR_DOVECOT_PORT", &port)]);
    assert!(
        out.contains("ALL OK"),
        "{out}\n--- dovecot log ---\n{}",
        dovecot.log()
    );
}
