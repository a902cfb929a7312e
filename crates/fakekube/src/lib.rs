//! keyvol-fakekube: an in-process fake Kubernetes API server for tests — the one stand-in for
//! a cluster the project accepts, so it aims to be honest: real HTTP on `127.0.0.1`, real
//! kube-rs clients, and the API server's semantics where keyvol depends on them.
//!
//! Start with [`FakeKube::start`] (or [`FakeKube::builder`]); hand [`FakeKube::client`] to the
//! code under test; set up and inspect state with the direct accessors ([`FakeKube::insert`],
//! [`FakeKube::get`], [`FakeKube::list`], [`FakeKube::delete`], [`FakeKube::requests`]); make
//! the API slow, failing or unreachable with [`FakeKube::set_fault`] and
//! [`FakeKube::fail_requests`].
//!
//! Modules: [`server`] (HTTP, routing, faults, counters), [`store`] (objects, resource
//! versions, write rules, watches' history, garbage collection), [`watch`] (watch streams),
//! [`selector`] (label and field selectors), [`patch`] (merge, JSON and apply patches),
//! [`resources`] (what is served), [`discovery`], [`status`] (errors as `Status` objects) and
//! [`meta`] (object metadata helpers). What is faithful and what is simplified is listed in
//! the crate's README.

pub mod discovery;
pub mod meta;
pub mod patch;
pub mod resources;
pub mod selector;
pub mod server;
pub mod status;
pub mod store;
pub mod watch;

pub use resources::ResourceDef;
pub use server::{FakeError, FakeKube, FakeKubeBuilder, Fault, RequestRecord, Verb};
pub use status::ApiError;
pub use store::GcMode;
