//! The node's HTTP endpoints: `/healthz`, which really calls Probe over the CSI socket (the
//! livenessprobe sidecar's job), and `/metrics`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use keyvol_proto::csi::v1 as csi;

use crate::metrics::Metrics;

/// Probe deadline (the livenessprobe sidecar's `--probe-timeout` in upstream's manifests).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone)]
struct HealthState {
    csi_socket: PathBuf,
}

/// `/healthz` served for the CSI socket at `csi_socket`.
pub fn health_router(csi_socket: PathBuf) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .with_state(HealthState { csi_socket })
}

async fn healthz(State(state): State<HealthState>) -> Response {
    let probe = async {
        let channel = keyvol_proto::uds::connect(&state.csi_socket)
            .await
            .map_err(|e| format!("cannot reach the CSI socket: {e}"))?;
        let mut client = csi::identity_client::IdentityClient::new(channel);
        let resp = client
            .probe(csi::ProbeRequest {})
            .await
            .map_err(|s| format!("Probe failed: {}", s.message()))?;
        match resp.into_inner().ready {
            Some(false) => Err("driver is not ready".to_owned()),
            _ => Ok(()),
        }
    };
    match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
        Ok(Ok(())) => (StatusCode::OK, "ok").into_response(),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, e).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "Probe timed out").into_response(),
    }
}

/// `/metrics`.
pub fn metrics_router(metrics: Arc<Metrics>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let m = metrics.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    m.encode(),
                )
            }
        }),
    )
}
