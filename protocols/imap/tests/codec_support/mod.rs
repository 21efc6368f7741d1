//! Shared helpers of the codec tests (and of the fuzz target).
#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod arb;
pub mod format;
pub mod harness;
