//! The AAD Pod Identity NMI-like endpoint: `GET /host/token/?resource=…[&client_id=…]` with
//! headers `podname` and `podns`, answering `{"token": {…numbers as strings…}, "clientid": …}` and
//! plain-text errors with NMI's statuses. The bindings are the seed's `podIdentities`.
//!
//! A "not ready" count makes the first N calls answer 404, as NMI does while an identity is still
//! being assigned to the node; set it with `--nmi-not-ready` or the admin API.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::observe::CallerTag;
use crate::state::AppState;
use crate::store::unix_now;

/// NMI's errors are `http.Error` text: the message and a newline.
fn text(status: StatusCode, message: &str) -> Response {
    (status, format!("{message}\n")).into_response()
}

/// `GET /host/token/`.
pub async fn token(
    State(state): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let (Some(pod), Some(ns)) = (header("podname"), header("podns")) else {
        return text(
            StatusCode::BAD_REQUEST,
            "missing 'podname' and 'podns' from request header",
        );
    };
    let Some(resource) = query.get("resource").filter(|r| !r.is_empty()) else {
        return text(
            StatusCode::BAD_REQUEST,
            "parameter resource cannot be empty",
        );
    };
    if state.nmi_not_ready.take() {
        return text(
            StatusCode::NOT_FOUND,
            &format!("no AzureAssignedIdentity found for pod:{ns}/{pod} in assigned state"),
        );
    }
    let Some(identity) =
        state
            .directory
            .pod_identity(&ns, &pod, query.get("client_id").map(String::as_str))
    else {
        return text(
            StatusCode::NOT_FOUND,
            &format!("no AzureAssignedIdentity found for pod:{ns}/{pod}"),
        );
    };
    let Ok((token, lifetime)) = state.issuer.issue_to(&identity, resource) else {
        return text(
            StatusCode::FORBIDDEN,
            &format!("failed to get service principal token for pod:{ns}/{pod}"),
        );
    };
    let now = unix_now();
    let mut resp = Json(json!({
        "token": {
            "access_token": token,
            "refresh_token": "",
            "expires_in": lifetime.to_string(),
            "expires_on": (now + lifetime).to_string(),
            "not_before": now.to_string(),
            "resource": resource,
            "token_type": "Bearer",
        },
        "clientid": identity.client_id,
    }))
    .into_response();
    resp.extensions_mut().insert(CallerTag(identity.client_id));
    resp
}
