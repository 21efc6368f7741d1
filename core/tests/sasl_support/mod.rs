pub(crate) mod harness;
