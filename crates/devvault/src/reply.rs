//! Key Vault's response shape, shared by the data plane and the fault layer: the error body
//! (`{"error": {"code", "message", "innererror"}}`) and the headers every answer carries.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A vault-shaped error response.
pub fn kv_error(status: StatusCode, code: &str, message: &str, inner: Option<&str>) -> Response {
    let mut error = json!({ "code": code, "message": message });
    if let Some(inner) = inner {
        error["innererror"] = json!({ "code": inner });
    }
    with_kv_headers((status, Json(json!({ "error": error }))).into_response())
}

/// Adds the headers every Key Vault response carries.
pub fn with_kv_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(header::EXPIRES, HeaderValue::from_static("-1"));
    if h.contains_key(header::CONTENT_TYPE) {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
    }
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000;includeSubDomains"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-ms-keyvault-region", HeaderValue::from_static("local"));
    h.insert(
        "x-ms-keyvault-service-version",
        HeaderValue::from_static("1.9.0.0-keyvol-dev"),
    );
    if let Ok(v) = HeaderValue::from_str(&crate::store::new_version_id()) {
        h.insert("x-ms-request-id", v);
    }
    resp
}

/// A JSON 200 with the vault's headers.
pub fn ok_json(body: Value) -> Response {
    with_kv_headers(Json(body).into_response())
}
