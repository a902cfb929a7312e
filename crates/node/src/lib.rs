//! keyvol-node: the CSI node plugin `secrets-store.csi.k8s.io` and its Kubernetes glue.
//!
//! Start at [`server::run_node`]. A NodePublishVolume arrives at [`csi`], is parsed by
//! [`request`], and runs in [`publish`]: lock the volume ([`locks`]), read the
//! SecretProviderClass ([`cluster`], types in [`crd`]), find the provider ([`providers`]:
//! built-in or external over gRPC), mount, fetch and write (`keyvol_core::volume`), and record
//! the SecretProviderClassPodStatus. [`registration`] registers with kubelet, [`http`] serves
//! `/healthz` and `/metrics` ([`metrics`]), and [`provider_server`] serves a provider over the
//! provider protocol for `keyvol provider`.

pub mod cluster;
pub mod crd;
pub mod csi;
pub mod error;
pub mod http;
pub mod locks;
pub mod metrics;
pub mod provider_server;
pub mod providers;
pub mod publish;
pub mod registration;
pub mod registry;
pub mod request;
pub mod rotation;
pub mod server;
pub mod sync;

pub use error::NodeError;
