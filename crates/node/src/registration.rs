//! Kubelet plugin registration, built in: the `Registration` service on
//! `<plugins_registry>/<driver>-reg.sock`, replacing the node-driver-registrar sidecar.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use keyvol_proto::pluginregistration as reg;
use tonic::{Request, Response, Status};

/// CSI versions announced to kubelet.
pub const SUPPORTED_VERSIONS: [&str; 1] = ["1.0.0"];

/// The registration service.
pub struct RegistrationService {
    driver_name: String,
    endpoint: String,
    registered: Arc<AtomicBool>,
}

impl RegistrationService {
    /// `endpoint` is the CSI socket path as kubelet sees it (`--kubelet-registration-path`).
    pub fn new(driver_name: String, endpoint: String, registered: Arc<AtomicBool>) -> Self {
        Self {
            driver_name,
            endpoint,
            registered,
        }
    }
}

#[tonic::async_trait]
impl reg::registration_server::Registration for RegistrationService {
    async fn get_info(
        &self,
        _: Request<reg::InfoRequest>,
    ) -> Result<Response<reg::PluginInfo>, Status> {
        Ok(Response::new(reg::PluginInfo {
            r#type: "CSIPlugin".into(),
            name: self.driver_name.clone(),
            endpoint: self.endpoint.clone(),
            supported_versions: SUPPORTED_VERSIONS.iter().map(|s| s.to_string()).collect(),
        }))
    }

    async fn notify_registration_status(
        &self,
        request: Request<reg::RegistrationStatus>,
    ) -> Result<Response<reg::RegistrationStatusResponse>, Status> {
        let status = request.into_inner();
        self.registered
            .store(status.plugin_registered, Ordering::SeqCst);
        if status.plugin_registered {
            tracing::info!(driver = %self.driver_name, "registered with kubelet");
        } else {
            tracing::error!(driver = %self.driver_name, error = %status.error, "kubelet refused the registration");
        }
        Ok(Response::new(reg::RegistrationStatusResponse {}))
    }
}
