//! The Entra ID (Azure AD) token endpoint, client-credentials grant with a client secret, in
//! both the v2.0 (`scope`) and the v1 (`resource`) forms.
//!
//! Errors use Entra's OAuth shape (`error`, `error_description` with an AADSTS code,
//! `error_codes`), so SDKs report them the way they report the real service's.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::Json;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::server::AppState;
use crate::store::unix_now;

/// `POST /{tenant}/oauth2/v2.0/token`.
pub async fn token_v2(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(f)) => f,
        Err(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            );
        }
    };
    let resource = match form.get("scope") {
        Some(scope) => match scope
            .split_whitespace()
            .find_map(|s| s.strip_suffix("/.default"))
        {
            Some(r) => r.to_owned(),
            None => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    1002012,
                    "The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
                );
            }
        },
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'scope'.",
            );
        }
    };
    match authenticate(&state, &tenant, &form) {
        Ok(client_id) => match state.issuer.issue(&client_id, &resource) {
            Ok((token, lifetime)) => Json(json!({
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": token,
            }))
            .into_response(),
            Err(_) => oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                90000,
                "Token signing failed.",
            ),
        },
        Err(resp) => resp,
    }
}

/// `POST /{tenant}/oauth2/token`, the v1 form with `resource` (used by the FlexVolume era).
pub async fn token_v1(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(f)) => f,
        Err(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            );
        }
    };
    let Some(resource) = form.get("resource").cloned() else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'resource'.",
        );
    };
    match authenticate(&state, &tenant, &form) {
        Ok(client_id) => match state.issuer.issue(&client_id, &resource) {
            Ok((token, lifetime)) => {
                let now = unix_now();
                Json(json!({
                    "token_type": "Bearer",
                    "expires_in": lifetime.to_string(),
                    "ext_expires_in": lifetime.to_string(),
                    "expires_on": (now + lifetime).to_string(),
                    "not_before": now.to_string(),
                    "resource": resource,
                    "access_token": token,
                }))
                .into_response()
            }
            Err(_) => oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                90000,
                "Token signing failed.",
            ),
        },
        Err(resp) => resp,
    }
}

/// Checks tenant, grant type and client credentials; returns the client id.
fn authenticate(
    state: &AppState,
    tenant: &str,
    form: &HashMap<String, String>,
) -> Result<String, Response> {
    if !tenant.eq_ignore_ascii_case(state.issuer.tenant()) {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        ));
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        ));
    }
    let Some(client_id) = form.get("client_id") else {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        ));
    };
    let Some(expected) = state.clients.get(client_id) else {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'."
            ),
        ));
    };
    match form.get("client_secret") {
        Some(given) if constant_time_eq(given.as_bytes(), expected.as_bytes()) => {
            Ok(client_id.clone())
        }
        Some(_) => Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            &format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        )),
        None => Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An Entra-shaped OAuth error response.
pub fn oauth_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let trace = crate::store::new_version_id();
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {description} Trace ID: {trace}"),
        "error_codes": [code],
        "timestamp": humanless_timestamp(),
        "trace_id": trace,
        "correlation_id": trace,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    (status, Json(body)).into_response()
}

fn humanless_timestamp() -> String {
    unix_now().to_string()
}
