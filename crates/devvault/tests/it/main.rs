//! The dev vault's integration tests, one test binary: the real server on loopback over HTTPS,
//! driven with reqwest as the SDKs drive Key Vault and Entra ID — the data plane, identities,
//! long-running operations, and real recorded exchanges with Azure replayed against it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

mod dataplane;
mod identity;
mod operations;
mod recordings;
