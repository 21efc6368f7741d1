//! Code that belongs to one IMAP extension rather than to one command,
//! one file per extension, named after it (the commands themselves stay in
//! [`crate::session::op`] and [`crate::parser`], one file per command).
//! Each extension is advertised (in `op/capability.rs`) only when
//! everything its RFC asks for is in place.

pub mod appendlimit;
pub mod binary;
pub mod catenate;
pub mod compress;
pub mod context;
pub mod esort;
pub mod i18nlevel;
pub mod imap4rev2;
pub mod literal_minus;
pub mod multiappend;
pub mod notify;
pub mod objectid;
pub mod preview;
pub mod replace;
pub mod savedate;
pub mod searchres;
pub mod sort;
pub mod thread;
pub mod uidonly;
pub mod within;
