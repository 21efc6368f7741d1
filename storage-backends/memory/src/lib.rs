//! (crate documentation to come)
