//! mailroomd
fn main() {}
