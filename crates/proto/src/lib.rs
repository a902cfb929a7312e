//! keyvol-proto: the gRPC protocols keyvol speaks, generated at build time, and the unix-socket
//! plumbing they run over.
//!
//! - [`csi::v1`]: the Container Storage Interface (spec v1.12.0 on the wire): the `Identity`
//!   and `Node` services in full and `Controller` reduced to `ControllerGetCapabilities`.
//!   kubelet is the client; keyvol's node service is the server.
//! - [`provider::v1alpha1`]: the Secrets Store CSI Driver provider protocol
//!   (`CSIDriverProvider` with `Version` and `Mount`), spoken between the driver (client) and a
//!   provider (server) over `<dir>/<provider>.sock`.
//! - [`pluginregistration`]: kubelet's plugin registration API (`Registration` with `GetInfo`
//!   and `NotifyRegistrationStatus`).
//! - [`redact`]: `Debug` for the messages that carry secrets (the CSI `secrets` maps,
//!   service-account tokens, provider attributes and file contents), which never prints them.
//! - [`uds`]: bind a server socket with mode 0600 and dial a client with `:authority`
//!   `localhost`.
//! - [`authority`]: the adapter every accepted unix-socket connection goes through, which
//!   rewrites each request's `:authority` to `localhost` in front of h2 (kubelet's plugin
//!   watcher sends the socket path, percent-encoded, which h2 would refuse).
//! - `rawclient` (feature `raw-client`, tests only): a minimal HTTP/2 gRPC client that sends any
//!   `:authority`, or none, to reproduce what other clients send.
//!
//! Each protocol module holds the prost messages plus a `*_client` and a `*_server` module per
//! service (for example [`csi::v1::identity_server::IdentityServer`] and
//! [`provider::v1alpha1::csi_driver_provider_client::CsiDriverProviderClient`]). The `.proto`
//! sources live in `crates/proto/proto/` and record which upstream version they match.
//! [`tonic`] and [`prost`] are re-exported so dependants use exactly the versions the code was
//! generated for.

pub use prost;
pub use tonic;

pub mod authority;
#[cfg(feature = "raw-client")]
pub mod rawclient;
pub mod redact;
pub mod uds;

pub mod csi {
    //! The Container Storage Interface.

    pub mod v1 {
        //! CSI package `csi.v1`, wire-compatible with spec v1.12.0 (see `proto/csi/v1/csi.proto`).
        #![allow(missing_docs, clippy::all, clippy::pedantic)]
        include!(concat!(env!("OUT_DIR"), "/csi.v1.rs"));
    }
}

pub mod provider {
    //! The Secrets Store CSI Driver provider protocol.

    pub mod v1alpha1 {
        //! Package `v1alpha1`, service `CSIDriverProvider` (see
        //! `proto/provider/v1alpha1/service.proto`).
        #![allow(missing_docs, clippy::all, clippy::pedantic)]
        include!(concat!(env!("OUT_DIR"), "/v1alpha1.rs"));
    }
}

pub mod pluginregistration {
    //! Kubelet plugin registration, package `pluginregistration` (see
    //! `proto/pluginregistration/api.proto`).
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    include!(concat!(env!("OUT_DIR"), "/pluginregistration.rs"));
}
