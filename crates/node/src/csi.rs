//! The CSI Identity and Node services (`csi.v1`), thin adapters from gRPC to [`NodeState`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use keyvol_proto::csi::v1 as csi;
use tonic::{Request, Response, Status};

use crate::error::NodeError;
use crate::publish::NodeState;
use crate::request::PublishRequest;

/// Identity service.
pub struct IdentityService {
    name: String,
    version: String,
    ready: Arc<AtomicBool>,
}

impl IdentityService {
    /// `ready` is what Probe reports.
    pub fn new(name: String, version: String, ready: Arc<AtomicBool>) -> Self {
        Self {
            name,
            version,
            ready,
        }
    }
}

#[tonic::async_trait]
impl csi::identity_server::Identity for IdentityService {
    async fn get_plugin_info(
        &self,
        _: Request<csi::GetPluginInfoRequest>,
    ) -> Result<Response<csi::GetPluginInfoResponse>, Status> {
        if self.name.is_empty() || self.version.is_empty() {
            return Err(Status::unavailable("driver name or version not configured"));
        }
        Ok(Response::new(csi::GetPluginInfoResponse {
            name: self.name.clone(),
            vendor_version: self.version.clone(),
            manifest: Default::default(),
        }))
    }

    async fn get_plugin_capabilities(
        &self,
        _: Request<csi::GetPluginCapabilitiesRequest>,
    ) -> Result<Response<csi::GetPluginCapabilitiesResponse>, Status> {
        // Node-only plugin: no controller service is advertised (upstream advertised one it
        // did not implement).
        Ok(Response::new(csi::GetPluginCapabilitiesResponse {
            capabilities: Vec::new(),
        }))
    }

    async fn probe(
        &self,
        _: Request<csi::ProbeRequest>,
    ) -> Result<Response<csi::ProbeResponse>, Status> {
        Ok(Response::new(csi::ProbeResponse {
            ready: Some(self.ready.load(Ordering::SeqCst)),
        }))
    }
}

/// Node service.
pub struct NodeService {
    state: Arc<NodeState>,
}

impl NodeService {
    /// Wraps the shared state.
    pub fn new(state: Arc<NodeState>) -> Self {
        Self { state }
    }
}

fn provider_of(req: &csi::NodePublishVolumeRequest) -> String {
    req.volume_context
        .get("providerName")
        .cloned()
        .unwrap_or_default()
}

/// The fields stage and unstage (accepted as no-ops, as upstream) must still carry.
fn check_staging(volume_id: &str, staging_target_path: &str) -> Result<(), Status> {
    if volume_id.is_empty() {
        return Err(Status::invalid_argument("Volume ID missing in request"));
    }
    if staging_target_path.is_empty() {
        return Err(Status::invalid_argument(
            "Staging target path missing in request",
        ));
    }
    Ok(())
}

#[tonic::async_trait]
impl csi::node_server::Node for NodeService {
    async fn node_stage_volume(
        &self,
        request: Request<csi::NodeStageVolumeRequest>,
    ) -> Result<Response<csi::NodeStageVolumeResponse>, Status> {
        let r = request.into_inner();
        check_staging(&r.volume_id, &r.staging_target_path)?;
        if r.volume_capability.is_none() {
            return Err(Status::invalid_argument(
                "Volume capability missing in request",
            ));
        }
        Ok(Response::new(csi::NodeStageVolumeResponse {}))
    }

    async fn node_unstage_volume(
        &self,
        request: Request<csi::NodeUnstageVolumeRequest>,
    ) -> Result<Response<csi::NodeUnstageVolumeResponse>, Status> {
        let r = request.into_inner();
        check_staging(&r.volume_id, &r.staging_target_path)?;
        Ok(Response::new(csi::NodeUnstageVolumeResponse {}))
    }

    async fn node_publish_volume(
        &self,
        request: Request<csi::NodePublishVolumeRequest>,
    ) -> Result<Response<csi::NodePublishVolumeResponse>, Status> {
        let inner = request.into_inner();
        let label = provider_of(&inner);
        let parsed = match PublishRequest::parse(inner) {
            Ok(p) => p,
            Err(e) => {
                self.state.metrics.publish_error(&label, e.code());
                return Err(e.to_status());
            }
        };
        match self.state.publish(parsed).await {
            Ok(_) => Ok(Response::new(csi::NodePublishVolumeResponse {})),
            // NodeState::publish logged the outcome.
            Err(e) => Err(e.to_status()),
        }
    }

    async fn node_unpublish_volume(
        &self,
        request: Request<csi::NodeUnpublishVolumeRequest>,
    ) -> Result<Response<csi::NodeUnpublishVolumeResponse>, Status> {
        let r = request.into_inner();
        if r.volume_id.is_empty() {
            return Err(
                NodeError::InvalidArgument("Volume ID missing in request".into()).to_status(),
            );
        }
        if r.target_path.is_empty() {
            return Err(
                NodeError::InvalidArgument("Target path missing in request".into()).to_status(),
            );
        }
        match self
            .state
            .unpublish(&r.volume_id, std::path::Path::new(&r.target_path))
            .await
        {
            Ok(()) => {
                self.state.metrics.unpublish(true);
                Ok(Response::new(csi::NodeUnpublishVolumeResponse {}))
            }
            Err(e) => {
                self.state.metrics.unpublish(false);
                Err(e.to_status())
            }
        }
    }

    async fn node_get_volume_stats(
        &self,
        _: Request<csi::NodeGetVolumeStatsRequest>,
    ) -> Result<Response<csi::NodeGetVolumeStatsResponse>, Status> {
        Err(Status::unimplemented(
            "NodeGetVolumeStats is not implemented",
        ))
    }

    async fn node_expand_volume(
        &self,
        _: Request<csi::NodeExpandVolumeRequest>,
    ) -> Result<Response<csi::NodeExpandVolumeResponse>, Status> {
        Err(Status::unimplemented("NodeExpandVolume is not implemented"))
    }

    async fn node_get_capabilities(
        &self,
        _: Request<csi::NodeGetCapabilitiesRequest>,
    ) -> Result<Response<csi::NodeGetCapabilitiesResponse>, Status> {
        // Stage/unstage are accepted as no-ops, as upstream does (csi-sanity calls them).
        // VOLUME_MOUNT_GROUP: kubelet then hands over the pod's fsGroup with each publish and
        // keyvol makes the files readable by that group (upstream ignores fsGroup, #858).
        let rpc = |t: csi::node_service_capability::rpc::Type| csi::NodeServiceCapability {
            r#type: Some(csi::node_service_capability::Type::Rpc(
                csi::node_service_capability::Rpc { r#type: t as i32 },
            )),
        };
        let caps = vec![
            rpc(csi::node_service_capability::rpc::Type::StageUnstageVolume),
            rpc(csi::node_service_capability::rpc::Type::VolumeMountGroup),
        ];
        Ok(Response::new(csi::NodeGetCapabilitiesResponse {
            capabilities: caps,
        }))
    }

    async fn node_get_info(
        &self,
        _: Request<csi::NodeGetInfoRequest>,
    ) -> Result<Response<csi::NodeGetInfoResponse>, Status> {
        Ok(Response::new(csi::NodeGetInfoResponse {
            node_id: self.state.config.node_id.clone(),
            ..Default::default()
        }))
    }
}
