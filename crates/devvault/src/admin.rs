//! The admin API under `/_admin/` on the vault listener (and on the identity listener): read and
//! reset the request counters, read and replace the fault rules, and set NMI's "not ready" count.
//! It is unauthenticated — a dev vault is a local tool — and can be turned off with
//! `--no-admin`. Admin requests are neither counted nor subject to faults.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use crate::faults::FaultRule;
use crate::state::AppState;

/// The admin routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/_admin/health", get(health))
        .route("/_admin/counters", get(counters).delete(reset_counters))
        .route(
            "/_admin/faults",
            get(faults).put(put_faults).delete(clear_faults),
        )
        .route("/_admin/nmi", get(nmi).put(put_nmi))
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": { "code": "BadParameter", "message": message } })),
    )
        .into_response()
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    Json(json!({
        "status": "ok",
        "tenant": state.issuer.tenant(),
        "vaults": state.store.vault_names(),
        "persistent": state.store.db().is_some(),
    }))
    .into_response()
}

async fn counters(State(state): State<Arc<AppState>>) -> Response {
    Json(state.counters.snapshot()).into_response()
}

async fn reset_counters(State(state): State<Arc<AppState>>) -> Response {
    state.counters.reset();
    StatusCode::NO_CONTENT.into_response()
}

async fn faults(State(state): State<Arc<AppState>>) -> Response {
    Json(json!({ "rules": state.faults.rules() })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultsBody {
    rules: Vec<FaultRule>,
}

async fn put_faults(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let body: FaultsBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad_request(&format!("invalid fault rules: {e}")),
    };
    match state.faults.replace(body.rules) {
        Ok(()) => Json(json!({ "rules": state.faults.rules() })).into_response(),
        Err(e) => bad_request(&e.to_string()),
    }
}

async fn clear_faults(State(state): State<Arc<AppState>>) -> Response {
    let _ = state.faults.replace(Vec::new());
    StatusCode::NO_CONTENT.into_response()
}

async fn nmi(State(state): State<Arc<AppState>>) -> Response {
    Json(json!({ "notReadyCalls": state.nmi_not_ready.get() })).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NmiBody {
    not_ready_calls: u64,
}

async fn put_nmi(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    match serde_json::from_slice::<NmiBody>(&body) {
        Ok(b) => {
            state.nmi_not_ready.set(b.not_ready_calls);
            Json(json!({ "notReadyCalls": b.not_ready_calls })).into_response()
        }
        Err(e) => bad_request(&format!("invalid body: {e}")),
    }
}
