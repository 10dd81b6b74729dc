//! # odradek-tokio
//!
//! Drives the sans-IO [`odradek_core`] with this runtime's sockets and timers.
//! The consumer itself arrives with the next milestone; today the crate
//! re-exports the core so a user depends on one crate only.

pub use odradek_core::*;
