//! The IMDS-like managed identity endpoint:
//! `GET /metadata/identity/oauth2/token?api-version=…&resource=…[&client_id=|object_id=|msi_res_id=]`
//! with header `Metadata: true`, answering with every number as a string, as the real one does.
//! The identities are the seed's `managedIdentities` (what the "VM" has).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::directory::ImdsError;
use crate::observe::CallerTag;
use crate::state::AppState;
use crate::store::unix_now;

fn imds_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

/// `GET /metadata/identity/oauth2/token`.
pub async fn token(
    State(state): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let metadata = headers
        .get("metadata")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if !metadata {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required metadata header not specified",
        );
    }
    if query.get("api-version").is_none_or(|v| v.is_empty()) {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'api-version' is missing",
        );
    }
    let Some(resource) = query.get("resource").filter(|r| !r.is_empty()) else {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'resource' is missing",
        );
    };
    let res_id = query
        .get("msi_res_id")
        .or_else(|| query.get("mi_res_id"))
        .map(String::as_str);
    let identity = match state.directory.imds_identity(
        query.get("client_id").map(String::as_str),
        query.get("object_id").map(String::as_str),
        res_id,
    ) {
        Ok(m) => m.principal.clone(),
        Err(e @ (ImdsError::NotFound | ImdsError::Ambiguous)) => {
            return imds_error(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string());
        }
    };
    let Ok((token, lifetime)) = state.issuer.issue_to(&identity, resource) else {
        return imds_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "Token signing failed",
        );
    };
    let now = unix_now();
    let mut resp = Json(json!({
        "access_token": token,
        "client_id": identity.client_id,
        "expires_in": lifetime.to_string(),
        "expires_on": (now + lifetime).to_string(),
        "ext_expires_in": lifetime.to_string(),
        "not_before": now.to_string(),
        "resource": resource,
        "token_type": "Bearer",
    }))
    .into_response();
    resp.extensions_mut().insert(CallerTag(identity.client_id));
    resp
}
