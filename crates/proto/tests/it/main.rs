//! keyvol-proto's integration tests, one test binary: real unix sockets in temp dirs, tonic
//! servers and clients from the generated code, raw HTTP/2 for the `:authority` forms other
//! clients send, and the wire bytes of each protocol against hand-encoded references.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod authority;
mod roundtrip;
mod wire;
