//! Tests that span every message: differential tests against
//! kafka-protocol, hostile input, and the helpers literal-byte tests use.

mod differential;
mod robustness;
pub(crate) mod testing;
