//! Serving a keyvol provider over the secrets-store provider gRPC protocol, so `keyvol provider`
//! can stand in for the upstream Azure provider under the upstream driver.

use std::collections::BTreeMap;
use std::sync::Arc;

use keyvol_core::provider::DEFAULT_FILE_MODE;
use keyvol_core::{MountRequest, Provider, Sensitive};
use keyvol_proto::provider::v1alpha1 as pb;
use tonic::{Request, Response, Status};

use crate::error::provider_code;
use crate::providers::PROVIDER_API_VERSION;

/// The gRPC service around a provider.
pub struct ProviderService {
    provider: Arc<dyn Provider>,
}

impl ProviderService {
    /// Wraps `provider`.
    pub fn new(provider: Arc<dyn Provider>) -> Self {
        Self { provider }
    }

    /// The tonic server for this service.
    pub fn into_server(self) -> pb::csi_driver_provider_server::CsiDriverProviderServer<Self> {
        pb::csi_driver_provider_server::CsiDriverProviderServer::new(self)
    }
}

#[tonic::async_trait]
impl pb::csi_driver_provider_server::CsiDriverProvider for ProviderService {
    async fn version(
        &self,
        _request: Request<pb::VersionRequest>,
    ) -> Result<Response<pb::VersionResponse>, Status> {
        let (name, version) = self.provider.runtime();
        Ok(Response::new(pb::VersionResponse {
            version: PROVIDER_API_VERSION.into(),
            runtime_name: name.into(),
            runtime_version: version.into(),
        }))
    }

    async fn mount(
        &self,
        request: Request<pb::MountRequest>,
    ) -> Result<Response<pb::MountResponse>, Status> {
        let req = request.into_inner();
        let attributes: BTreeMap<String, String> =
            serde_json::from_str(&req.attributes).map_err(|_| {
                Status::invalid_argument(
                    "failed to unmarshal attributes: not a JSON object of strings",
                )
            })?;
        let secrets: BTreeMap<String, String> = if req.secrets.trim().is_empty() {
            BTreeMap::new()
        } else {
            // Never echo the text: it holds credentials.
            serde_json::from_str(&req.secrets).map_err(|_| {
                Status::invalid_argument(
                    "failed to unmarshal secrets: not a JSON object of strings",
                )
            })?
        };
        let default_mode = if req.permission.trim().is_empty() {
            DEFAULT_FILE_MODE
        } else {
            serde_json::from_str::<u32>(&req.permission).map_err(|_| {
                Status::invalid_argument(format!(
                    "failed to unmarshal file permission {:?}",
                    req.permission
                ))
            })?
        };
        let mount = MountRequest {
            attributes,
            secrets: secrets
                .into_iter()
                .map(|(k, v)| (k, Sensitive::new(v)))
                .collect(),
            default_mode,
            target_path: req.target_path,
            current_versions: req
                .current_object_version
                .into_iter()
                .map(|v| keyvol_core::ObjectVersion {
                    id: v.id,
                    version: v.version,
                })
                .collect(),
        };
        match self.provider.mount(mount).await {
            Ok(resp) => Ok(Response::new(pb::MountResponse {
                object_version: resp
                    .object_versions
                    .into_iter()
                    .map(|v| pb::ObjectVersion {
                        id: v.id,
                        version: v.version,
                    })
                    .collect(),
                error: None,
                files: resp
                    .files
                    .into_iter()
                    .map(|f| pb::File {
                        path: f.path.to_string(),
                        mode: f.mode as i32,
                        contents: f.contents.expose().clone(),
                    })
                    .collect(),
            })),
            Err(e) => {
                let code = provider_code(e.kind);
                tracing::warn!(code = e.code, "mount failed: {}", e.message);
                Err(Status::new(
                    code,
                    format!("failed to mount objects, error: {}", e.message),
                ))
            }
        }
    }
}
