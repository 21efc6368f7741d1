//! The admin commands and config errors, through the built binary.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{run, stderr, stdout, write_config};

#[test]
fn user_add_list_passwd_del() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let cfg = cfg.to_str().unwrap();

    let out = run(
        dir.path(),
        &[
            "--config",
            cfg,
            "user",
            "add",
            "Alice@Example.COM",
            "--password-stdin",
        ],
        "s3cret pass\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "user Alice@example.com added\n");

    let out = run(
        dir.path(),
        &[
            "user",
            "add",
            "boss@example.com",
            "--password-stdin",
            "--role",
            "domain-admin",
            "--config",
            cfg,
        ],
        "pw",
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let out = run(dir.path(), &["-c", cfg, "user", "list"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "Alice@example.com\nboss@example.com\tdomain-admin\n"
    );

    // the users file: 0600, argon2 hashes, no plaintext
    let users = dir.path().join("data/users.toml");
    let mode = std::fs::metadata(&users).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&users).unwrap();
    assert!(text.contains("$argon2id$"));
    assert!(!text.contains("s3cret"));
    let before = text.clone();

    // duplicates (domain is case-insensitive) are refused, file untouched
    let out = run(
        dir.path(),
        &[
            "-c",
            cfg,
            "user",
            "add",
            "Alice@example.com",
            "--password-stdin",
        ],
        "x\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&users).unwrap(), before);

    let out = run(
        dir.path(),
        &[
            "-c",
            cfg,
            "user",
            "passwd",
            "Alice@EXAMPLE.com",
            "--password-stdin",
        ],
        "new\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_ne!(std::fs::read_to_string(&users).unwrap(), before);
    let mode = std::fs::metadata(&users).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "rewrites keep 0600");

    let out = run(
        dir.path(),
        &["-c", cfg, "user", "del", "boss@example.com"],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(
        dir.path(),
        &["-c", cfg, "user", "del", "boss@example.com"],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no such user"), "{}", stderr(&out));
    let out = run(
        dir.path(),
        &[
            "-c",
            cfg,
            "user",
            "passwd",
            "nobody@example.com",
            "--password-stdin",
        ],
        "x\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no such user"), "{}", stderr(&out));

    let out = run(dir.path(), &["-c", cfg, "user", "list"], "");
    assert_eq!(stdout(&out), "Alice@example.com\n");
}

#[test]
fn bad_input_to_user_commands() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let cfg = cfg.to_str().unwrap();
    // empty password
    let out = run(
        dir.path(),
        &["-c", cfg, "user", "add", "a@b.org", "--password-stdin"],
        "\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("invalid password: empty"),
        "{}",
        stderr(&out)
    );
    // bad names
    for name in ["alice", "a b@c.org", "a+tag@b.org", "../x@b.org"] {
        let out = run(
            dir.path(),
            &["-c", cfg, "user", "add", name, "--password-stdin"],
            "pw\n",
        );
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert!(
            stderr(&out).contains("invalid user name"),
            "{name}: {}",
            stderr(&out)
        );
    }
    // password on the command line is not a thing
    let out = run(dir.path(), &["-c", cfg, "user", "add", "a@b.org"], "pw\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--password-stdin"),
        "{}",
        stderr(&out)
    );
    let out = run(
        dir.path(),
        &[
            "-c",
            cfg,
            "user",
            "add",
            "a@b.org",
            "--password-stdin",
            "--role",
            "god",
        ],
        "pw\n",
    );
    assert_eq!(out.status.code(), Some(2));
    // nothing was written
    assert!(!dir.path().join("data/users.toml").exists());
}

#[test]
fn config_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");

    std::fs::write(&cfg, "[imap]\nlisten = \"127.0.0.1:0\"\nbogus = 1\n").unwrap();
    let out = run(
        dir.path(),
        &["--config", cfg.to_str().unwrap(), "user", "list"],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("unknown field `bogus`"), "{err}");
    assert!(err.contains("bad.toml"), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert_eq!(err.matches("unknown field").count(), 1, "said once: {err}");

    std::fs::write(&cfg, "[imap\n").unwrap();
    let out = run(
        dir.path(),
        &["--config", cfg.to_str().unwrap(), "serve"],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("invalid config file"),
        "{}",
        stderr(&out)
    );

    std::fs::write(&cfg, "store = \"tape\"\n").unwrap();
    let out = run(
        dir.path(),
        &["--config", cfg.to_str().unwrap(), "serve"],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("memory"), "{}", stderr(&out));

    std::fs::write(&cfg, "[imap]\nlisten = \"localhost\"\n").unwrap();
    let out = run(
        dir.path(),
        &["--config", cfg.to_str().unwrap(), "serve"],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("socket address"), "{}", stderr(&out));

    // a config with no listener at all cannot serve
    std::fs::write(&cfg, "data_dir = \"d\"\n").unwrap();
    let out = run(
        dir.path(),
        &["--config", cfg.to_str().unwrap(), "serve"],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no listener"), "{}", stderr(&out));

    let missing = dir.path().join("missing.toml");
    let out = run(
        dir.path(),
        &["--config", missing.to_str().unwrap(), "serve"],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("cannot read config file") && err.contains("missing.toml"),
        "{err}"
    );
}
