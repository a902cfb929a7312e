//! keyvol's end-to-end tests, one test binary: the real `keyvol` binary (`CARGO_BIN_EXE_keyvol`)
//! driven as kubelet, the upstream driver, an operator or a user would drive it, against an
//! in-process dev vault over real HTTPS, the in-process fake Kubernetes API server, real unix
//! sockets and — as root — real tmpfs mounts. Each module is one surface; `util` is the harness.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

mod beyond;
mod chart;
mod flexvol;
mod hostile;
mod identities;
mod manifests;
mod mount;
mod node;
mod node_kube;
mod objects;
mod provider;
mod reliability;
