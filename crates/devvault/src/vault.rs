//! The Key Vault data plane: secrets (get latest, get a version, set), the 401 challenge, token
//! checks, and errors shaped like the service's.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::server::{AppState, split_port};
use crate::store::{NewSecret, SecretVersion, StoreError};
use crate::token::{Claims, TokenError};

/// A vault-shaped error response.
pub fn kv_error(status: StatusCode, code: &str, message: &str, inner: Option<&str>) -> Response {
    let mut error = json!({ "code": code, "message": message });
    if let Some(inner) = inner {
        error["innererror"] = json!({ "code": inner });
    }
    with_kv_headers((status, Json(json!({ "error": error }))).into_response())
}

fn with_kv_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(header::EXPIRES, HeaderValue::from_static("-1"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
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

/// Where a request went and who made it.
struct Caller {
    vault: String,
    host: String,
    #[allow(dead_code)]
    claims: Claims,
}

/// Resolves the vault from Host and checks the bearer token; on failure returns the response to send.
fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    query: &HashMap<String, String>,
) -> Result<Caller, Response> {
    let host = AppState::request_host(headers, uri);
    let Some(vault) = state
        .vault_for_host(&host)
        .filter(|v| state.store.has_vault(v))
    else {
        return Err(kv_error(
            StatusCode::NOT_FOUND,
            "VaultNotFound",
            &format!("No vault is served at host '{host}'."),
            None,
        ));
    };
    let (_, port) = split_port(&host);
    let resource = match port {
        Some(p) if p != 443 => format!("https://{}:{p}", state.vault_suffix),
        _ => format!("https://{}", state.vault_suffix),
    };
    let challenge = |error: Option<&str>| {
        let mut v = format!(
            "Bearer authorization=\"{}/{}\", resource=\"{resource}\"",
            state.authority,
            state.issuer.tenant()
        );
        if let Some(e) = error {
            v.push_str(&format!(", error=\"{e}\""));
        }
        v
    };
    let unauthorized = |err: TokenError, error: Option<&str>| {
        let mut resp = kv_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            &err.to_string(),
            None,
        );
        if let Ok(v) = HeaderValue::from_str(&challenge(error)) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        resp
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    let Some(token) = token else {
        return Err(unauthorized(TokenError::Missing, None));
    };
    let suffix = state.vault_suffix.to_ascii_lowercase();
    let audience_ok = |aud: &str| {
        url::Url::parse(aud)
            .ok()
            .filter(|u| u.scheme() == "https" && matches!(u.path(), "" | "/"))
            .and_then(|u| u.host_str().map(|h| h.eq_ignore_ascii_case(&suffix)))
            .unwrap_or(false)
    };
    let claims = state
        .issuer
        .validate(token, audience_ok, &resource)
        .map_err(|e| unauthorized(e, Some("invalid_token")))?;
    if query.get("api-version").is_none_or(|v| v.is_empty()) {
        return Err(kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "The request URI contains an invalid or missing 'api-version' parameter.",
            None,
        ));
    }
    Ok(Caller {
        vault,
        host,
        claims,
    })
}

fn secret_bundle(caller: &Caller, name: &str, v: &SecretVersion, with_value: bool) -> Value {
    let mut attributes = json!({
        "enabled": v.enabled,
        "created": v.created,
        "updated": v.updated,
        "recoveryLevel": "Recoverable+Purgeable",
        "recoverableDays": 90,
    });
    if let Some(nbf) = v.nbf {
        attributes["nbf"] = json!(nbf);
    }
    if let Some(exp) = v.exp {
        attributes["exp"] = json!(exp);
    }
    let mut body = json!({
        "id": format!("https://{}/secrets/{}/{}", caller.host, name, v.version),
        "attributes": attributes,
    });
    if with_value {
        body["value"] = json!(v.value);
    }
    if let Some(ct) = &v.content_type {
        body["contentType"] = json!(ct);
    }
    if !v.tags.is_empty() {
        body["tags"] = json!(v.tags);
    }
    body
}

fn fetch_secret(state: &AppState, caller: &Caller, name: &str, version: Option<&str>) -> Response {
    match state.store.get_secret(&caller.vault, name, version) {
        Ok((stored_name, v)) => {
            if !v.enabled {
                return kv_error(
                    StatusCode::FORBIDDEN,
                    "Forbidden",
                    "Operation get is not allowed on a disabled secret.",
                    Some("SecretDisabled"),
                );
            }
            with_kv_headers(Json(secret_bundle(caller, &stored_name, &v, true)).into_response())
        }
        Err(StoreError::NotFound | StoreError::BadName) => {
            let what = match version {
                Some(ver) => format!("{name}/{ver}"),
                None => name.to_owned(),
            };
            kv_error(
                StatusCode::NOT_FOUND,
                "SecretNotFound",
                &format!(
                    "A secret with (name/id) {what} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
                ),
                None,
            )
        }
        Err(StoreError::VaultNotFound(v)) => kv_error(
            StatusCode::NOT_FOUND,
            "VaultNotFound",
            &format!("Vault {v} is not served here."),
            None,
        ),
    }
}

/// `GET /secrets/{name}` and `GET /secrets/{name}/`: the newest version.
pub async fn get_secret(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    match authorize(&state, &headers, &uri, &query) {
        Ok(caller) => fetch_secret(&state, &caller, &name, None),
        Err(resp) => resp,
    }
}

/// `GET /secrets/{name}/{version}`. An empty version means the newest.
pub async fn get_secret_version(
    State(state): State<Arc<AppState>>,
    Path((name, version)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    match authorize(&state, &headers, &uri, &query) {
        Ok(caller) => {
            let version = Some(version.as_str()).filter(|v| !v.is_empty());
            fetch_secret(&state, &caller, &name, version)
        }
        Err(resp) => resp,
    }
}

/// Body of `PUT /secrets/{name}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetSecretBody {
    value: Option<String>,
    content_type: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    attributes: Option<SetAttributes>,
}

/// Attributes accepted on write.
#[derive(Deserialize, Default)]
pub struct SetAttributes {
    enabled: Option<bool>,
    nbf: Option<i64>,
    exp: Option<i64>,
}

/// `PUT /secrets/{name}`: adds a version.
pub async fn set_secret(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    uri: Uri,
    body: axum::body::Bytes,
) -> Response {
    let caller = match authorize(&state, &headers, &uri, &query) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let Ok(body) = serde_json::from_slice::<SetSecretBody>(&body) else {
        return kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "The request body is not a valid SecretSetParameters object.",
            None,
        );
    };
    let Some(value) = body.value else {
        return kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "Property 'value' is required.",
            None,
        );
    };
    let attrs = body.attributes.unwrap_or_default();
    let new = NewSecret {
        value,
        content_type: body.content_type,
        enabled: attrs.enabled,
        nbf: attrs.nbf,
        exp: attrs.exp,
        tags: body.tags,
        version: None,
    };
    match state.store.set_secret(&caller.vault, &name, new) {
        Ok((stored, v)) => {
            with_kv_headers(Json(secret_bundle(&caller, &stored, &v, true)).into_response())
        }
        Err(StoreError::BadName) => kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "The request URI contains an invalid name. Secret names may only contain alphanumeric characters and dashes.",
            None,
        ),
        Err(e) => kv_error(StatusCode::NOT_FOUND, "VaultNotFound", &e.to_string(), None),
    }
}

/// Anything else.
pub async fn not_found(uri: Uri) -> Response {
    kv_error(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!(
            "The route {} is not served by the keyvol dev vault.",
            uri.path()
        ),
        None,
    )
}
