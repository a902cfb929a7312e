//! keyvol-core: the pieces every keyvol front end shares.
//!
//! Start with [`spc`] (the SecretProviderClass manifest), [`provider`] (the contract between the
//! volume plumbing and a secrets provider), [`relpath`] (the path rules that keep files inside a
//! volume) and [`writer`] (the kubelet-style atomic writer). [`tmpfs`] mounts and inspects the
//! memory-backed filesystems that secrets live on, [`sensitive`] is the wrapper type that keeps
//! secret bytes out of logs, and [`report`] renders an error with its causes for whatever edge
//! shows it (gRPC status, FlexVolume JSON, CLI).

pub mod bounded;
pub mod layout;
pub mod provider;
pub mod relpath;
pub mod report;
pub mod sensitive;
pub mod spc;
pub mod tmpfs;
pub mod volume;
pub mod writer;

pub use provider::{
    MountRequest, MountResponse, ObjectVersion, Provider, ProviderError, ProviderErrorKind,
    ProviderFile, RequestObserver,
};
pub use relpath::{RelPath, RelPathError};
pub use sensitive::Sensitive;
pub use spc::{SecretProviderClass, SpcError};
pub use writer::{AtomicWriter, WriteError, WriteOutcome};
