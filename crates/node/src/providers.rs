//! Finding the provider a class names: `azure` (and any other built-in) runs in-process; any
//! other name is an external provider reached over the secrets-store provider gRPC protocol at
//! `<dir>/<name>.sock`, searched in upstream's directories and order.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use keyvol_core::{
    MountRequest, MountResponse, ObjectVersion, Provider, ProviderError, ProviderErrorKind,
    ProviderFile, RelPath, Sensitive,
};
use keyvol_proto::provider::v1alpha1 as pb;
use pb::csi_driver_provider_client::CsiDriverProviderClient;
use tonic::transport::Channel;

use crate::error::NodeError;

/// Largest provider response accepted by default (upstream's `--max-call-recv-msg-size`).
pub const DEFAULT_MAX_RECV_BYTES: usize = 4 * 1024 * 1024;
/// Deadline of one external Mount call: below kubelet's two-minute NodePublishVolume deadline.
pub const DEFAULT_PROVIDER_TIMEOUT: Duration = Duration::from_secs(100);
/// The protocol version the driver announces.
pub const PROVIDER_API_VERSION: &str = "v1alpha1";

/// True for names upstream accepts (`^[a-zA-Z0-9_-]{0,30}$`); this also keeps socket paths inside
/// the provider directories.
pub fn valid_provider_name(name: &str) -> bool {
    name.len() <= 30
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Provider lookup for the node.
pub struct Providers {
    builtin: HashMap<String, Arc<dyn Provider>>,
    dirs: Vec<PathBuf>,
    max_recv_bytes: usize,
    timeout: Duration,
    clients: Mutex<HashMap<PathBuf, Arc<ExternalProvider>>>,
}

impl Providers {
    /// `dirs` in search order (upstream: the additional paths first, then `--provider-volume`).
    pub fn new(
        builtin: HashMap<String, Arc<dyn Provider>>,
        dirs: Vec<PathBuf>,
        max_recv_bytes: usize,
        timeout: Duration,
    ) -> Self {
        Self {
            builtin,
            dirs,
            max_recv_bytes,
            timeout,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The provider called `name`.
    pub fn get(&self, name: &str) -> Result<Arc<dyn Provider>, NodeError> {
        if !valid_provider_name(name) || name.is_empty() {
            return Err(NodeError::InvalidClass(format!(
                "invalid provider {name:?}: must match ^[a-zA-Z0-9_-]{{1,30}}$"
            )));
        }
        if let Some(p) = self.builtin.get(name) {
            return Ok(p.clone());
        }
        let socket = self
            .dirs
            .iter()
            .map(|d| d.join(format!("{name}.sock")))
            .find(|p| p.exists())
            .ok_or_else(|| NodeError::ProviderNotFound(name.to_owned()))?;
        let mut clients = self
            .clients
            .lock()
            .map_err(|_| NodeError::Internal("provider cache poisoned".into()))?;
        let client = clients
            .entry(socket.clone())
            .or_insert_with(|| {
                Arc::new(ExternalProvider::new(
                    name,
                    socket,
                    self.max_recv_bytes,
                    self.timeout,
                ))
            })
            .clone();
        Ok(client)
    }

    /// Every external provider seen so far (for health checks).
    pub fn external(&self) -> Vec<Arc<ExternalProvider>> {
        self.clients
            .lock()
            .map(|c| c.values().cloned().collect())
            .unwrap_or_default()
    }
}

/// A provider in another process, over `<dir>/<name>.sock`.
pub struct ExternalProvider {
    name: String,
    socket: PathBuf,
    client: CsiDriverProviderClient<Channel>,
    timeout: Duration,
}

impl ExternalProvider {
    /// A lazily connecting client (`:authority` localhost, receive limit `max_recv_bytes`).
    pub fn new(name: &str, socket: PathBuf, max_recv_bytes: usize, timeout: Duration) -> Self {
        let channel = keyvol_proto::uds::connect_lazy(&socket);
        let client =
            CsiDriverProviderClient::new(channel).max_decoding_message_size(max_recv_bytes);
        Self {
            name: name.to_owned(),
            socket,
            client,
            timeout,
        }
    }

    /// The `Version` RPC.
    pub async fn version(&self) -> Result<pb::VersionResponse, tonic::Status> {
        let mut req = tonic::Request::new(pb::VersionRequest {
            version: PROVIDER_API_VERSION.into(),
        });
        req.set_timeout(Duration::from_secs(5));
        self.client
            .clone()
            .version(req)
            .await
            .map(|r| r.into_inner())
    }
}

fn grpc_to_provider_error(name: &str, s: &tonic::Status) -> ProviderError {
    let kind = match s.code() {
        tonic::Code::InvalidArgument
        | tonic::Code::FailedPrecondition
        | tonic::Code::OutOfRange => ProviderErrorKind::InvalidArgument,
        tonic::Code::Unauthenticated => ProviderErrorKind::Unauthenticated,
        tonic::Code::PermissionDenied => ProviderErrorKind::PermissionDenied,
        tonic::Code::NotFound => ProviderErrorKind::NotFound,
        tonic::Code::Unavailable | tonic::Code::ResourceExhausted | tonic::Code::Aborted => {
            ProviderErrorKind::Unavailable
        }
        tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
            ProviderErrorKind::DeadlineExceeded
        }
        _ => ProviderErrorKind::Internal,
    };
    let mut message = format!("provider {name}: {}", s.message());
    if s.code() == tonic::Code::ResourceExhausted {
        message.push_str(" (raise --max-call-recv-msg-size if the provider returns large objects)");
    }
    ProviderError::new(kind, "GRPCProviderError", message)
}

#[async_trait]
impl Provider for ExternalProvider {
    async fn mount(&self, request: MountRequest) -> Result<MountResponse, ProviderError> {
        let internal =
            |m: String| ProviderError::new(ProviderErrorKind::Internal, "GRPCProviderError", m);
        let attributes =
            serde_json::to_string(&request.attributes).map_err(|e| internal(e.to_string()))?;
        let secrets: BTreeMap<&str, &str> = request
            .secrets
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose().as_str()))
            .collect();
        let secrets =
            Sensitive::new(serde_json::to_string(&secrets).map_err(|e| internal(e.to_string()))?);
        let current_object_version = request
            .current_versions
            .iter()
            .map(|v| pb::ObjectVersion {
                id: v.id.clone(),
                version: v.version.clone(),
            })
            .collect();
        let mut req = tonic::Request::new(pb::MountRequest {
            attributes,
            secrets: secrets.expose().clone(),
            target_path: request.target_path.clone(),
            // The file mode as JSON: upstream sends the decimal number, e.g. "420" for 0644.
            permission: request.default_mode.to_string(),
            current_object_version,
        });
        req.set_timeout(self.timeout);
        let resp = self
            .client
            .clone()
            .mount(req)
            .await
            .map_err(|s| grpc_to_provider_error(&self.name, &s))?
            .into_inner();
        if let Some(err) = resp.error.as_ref().filter(|e| !e.code.is_empty()) {
            return Err(ProviderError::new(
                ProviderErrorKind::Internal,
                "ProviderError",
                format!("provider {} failed: {}", self.name, err.code),
            ));
        }
        if resp.object_version.is_empty() {
            return Err(internal(format!(
                "provider {} returned no object versions",
                self.name
            )));
        }
        let mut files = Vec::with_capacity(resp.files.len());
        for (i, f) in resp.files.into_iter().enumerate() {
            let path = RelPath::new(&f.path).map_err(|e| {
                ProviderError::new(
                    ProviderErrorKind::Internal,
                    "FileWriteError",
                    format!("provider {} file {i} ({:?}): {e}", self.name, f.path),
                )
            })?;
            let mode = u32::try_from(f.mode).map_err(|_| {
                internal(format!(
                    "provider {} file {i}: mode {} is negative",
                    self.name, f.mode
                ))
            })?;
            files.push(ProviderFile {
                path,
                mode,
                contents: Sensitive::new(f.contents),
            });
        }
        if files.is_empty() {
            // Upstream treats this as "the provider wrote the files itself"; keyvol never lets a
            // provider write into the volume, so it is an error here.
            return Err(internal(format!(
                "provider {} returned no files (providers that write into the volume themselves are not supported)",
                self.name
            )));
        }
        let object_versions = resp
            .object_version
            .into_iter()
            .map(|v| ObjectVersion {
                id: v.id,
                version: v.version,
            })
            .collect();
        Ok(MountResponse {
            files,
            object_versions,
        })
    }

    fn runtime(&self) -> (&'static str, &'static str) {
        ("external", "")
    }
}

impl std::fmt::Debug for ExternalProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalProvider")
            .field("name", &self.name)
            .field("socket", &self.socket)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names_follow_upstreams_rule() {
        for ok in ["azure", "vault", "gcp", "e2e-provider", "a_b"] {
            assert!(valid_provider_name(ok), "{ok}");
        }
        for bad in ["../etc", "a/b", "a.b", &"x".repeat(31)] {
            assert!(!valid_provider_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_missing_socket_is_provider_not_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = Providers::new(
            HashMap::new(),
            vec![dir.path().to_path_buf()],
            DEFAULT_MAX_RECV_BYTES,
            DEFAULT_PROVIDER_TIMEOUT,
        );
        assert!(matches!(
            p.get("vault"),
            Err(NodeError::ProviderNotFound(_))
        ));
        assert!(matches!(p.get("../x"), Err(NodeError::InvalidClass(_))));
    }
}
