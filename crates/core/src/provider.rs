//! The provider contract: what the volume plumbing asks a secrets provider, and what it gets back.
//!
//! This mirrors the secrets-store provider protocol (`v1alpha1.CSIDriverProvider/Mount`) in typed
//! form, so the in-process Azure provider, an external provider over gRPC and the one-shot
//! `keyvol mount` all speak the same shapes. Providers return files; they never write them.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;

use crate::relpath::RelPath;
use crate::sensitive::Sensitive;

/// Default file mode the upstream driver asks for (0644, sent as `"420"` on the wire).
pub const DEFAULT_FILE_MODE: u32 = 0o644;

/// One mount request.
///
/// `attributes` are the SecretProviderClass parameters merged with the volume context; `secrets`
/// are the nodePublishSecretRef data (and service-account tokens, where kubelet puts them there).
/// This struct deliberately has no `Debug`: log [`MountRequest::summary`] instead.
pub struct MountRequest {
    /// SecretProviderClass parameters merged with the volume context.
    pub attributes: BTreeMap<String, String>,
    /// Credentials handed over by the node (nodePublishSecretRef data, tokens).
    pub secrets: BTreeMap<String, Sensitive<String>>,
    /// Default mode for files whose object does not set one.
    pub default_mode: u32,
    /// Where the files will land (informational; providers must not write there).
    pub target_path: String,
    /// Versions currently mounted, when the caller knows them (rotation).
    pub current_versions: Vec<ObjectVersion>,
}

impl MountRequest {
    /// A log-safe one-line description: counts and non-secret names only.
    pub fn summary(&self) -> String {
        format!(
            "attributes={} secrets={} target={}",
            self.attributes.len(),
            self.secrets.len(),
            self.target_path
        )
    }
}

/// One file a provider returns.
#[derive(Clone)]
pub struct ProviderFile {
    /// Where the file goes, relative to the volume root.
    pub path: RelPath,
    /// Permission bits (0..=0o777).
    pub mode: u32,
    /// File contents.
    pub contents: Sensitive<Vec<u8>>,
}

impl fmt::Debug for ProviderFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderFile")
            .field("path", &self.path)
            .field("mode", &format_args!("{:04o}", self.mode))
            .field("bytes", &self.contents.expose().len())
            .finish()
    }
}

/// The version of one mounted object, as recorded in SecretProviderClassPodStatus.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectVersion {
    /// Object id, e.g. `secret/db-password` or `secret/db-password/0`.
    pub id: String,
    /// The version the vault returned.
    pub version: String,
}

/// What a provider returns for one mount.
#[derive(Debug, Clone, Default)]
pub struct MountResponse {
    /// Files to write.
    pub files: Vec<ProviderFile>,
    /// Versions of the objects the files came from.
    pub object_versions: Vec<ObjectVersion>,
}

/// Broad class of a provider failure, used to pick a gRPC code or an exit status at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderErrorKind {
    /// The request (class parameters, objects) is invalid.
    InvalidArgument,
    /// The identity could not be authenticated.
    Unauthenticated,
    /// The identity is authenticated but not allowed.
    PermissionDenied,
    /// An object does not exist.
    NotFound,
    /// The backend could not be reached or refused service for now.
    Unavailable,
    /// The caller's deadline passed.
    DeadlineExceeded,
    /// Anything else.
    Internal,
}

/// A provider failure: a class, a stable machine-readable code, and a message that holds no
/// secret material.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    /// Broad class.
    pub kind: ProviderErrorKind,
    /// Stable code (used as the metric `error_type` and in SecretProviderClassPodStatus).
    pub code: &'static str,
    /// Human-readable message, already free of secret values.
    pub message: String,
}

impl ProviderError {
    /// Builds an error.
    pub fn new(kind: ProviderErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
        }
    }
}

/// Sees every request a provider sends to its backend (Key Vault for the Azure provider), for
/// metrics: the object's type and name, how long the request took, and the error code when it
/// failed (a closed set of codes, never error text).
pub trait RequestObserver: Send + Sync {
    /// One request ended.
    fn request(
        &self,
        object_type: &'static str,
        object_name: &str,
        elapsed: std::time::Duration,
        error: Option<&'static str>,
    );
}

impl fmt::Debug for dyn RequestObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RequestObserver")
    }
}

/// A secrets provider.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Fetches everything the request names and returns it as files, all or nothing.
    async fn mount(&self, request: MountRequest) -> Result<MountResponse, ProviderError>;

    /// Name and version of the provider runtime.
    fn runtime(&self) -> (&'static str, &'static str);
}
