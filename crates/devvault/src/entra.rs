//! The Entra ID (Azure AD) endpoints: the token endpoint (client-credentials grant with a client
//! secret or a client assertion — federated, or signed with a registered certificate — in the
//! v2.0 `scope` form and the v1 `resource` form),
//! the per-tenant OpenID configuration documents and signing keys, and the instance-discovery
//! document that MSAL-based clients fetch first.
//!
//! Errors use Entra's OAuth shape (`error`, `error_description` with an AADSTS code,
//! `error_codes`), so SDKs report them the way they report the real service's. URLs in the
//! discovery documents point back at the host the client used, so a client that reached the dev
//! vault keeps talking to it.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::Json;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::clientauth::AuthError;
use crate::directory::Principal;
use crate::observe::CallerTag;
use crate::state::{AppState, split_port};
use crate::store::unix_now;

/// `client_assertion_type` of federated and certificate credentials.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Tenants every Entra instance also answers to.
const META_TENANTS: [&str; 3] = ["common", "organizations", "consumers"];

fn form_or_error(
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Result<HashMap<String, String>, Response> {
    form.map(|Form(f)| f).map_err(|_| {
        oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        )
    })
}

/// What differs between Entra's v1 and v2 endpoints: where a token request names its resource,
/// how the answer writes its numbers, and the version's own members of the OpenID
/// configuration. Everything else is shared by [`token`] and [`openid_configuration`].
pub trait EntraVersion {
    /// The resource the token is for, or the error answer.
    fn resource(form: &HashMap<String, String>) -> Result<String, Response>;
    /// The token answer's body.
    fn body(token: String, lifetime: i64, resource: &str) -> Value;
    /// The OpenID configuration members of this version only; `base` is `https://<host>`.
    fn openid_configuration(state: &AppState, base: &str, tenant: &str) -> Value;
}

/// `POST /{tenant}/oauth2/v2.0/token`: `scope` (`<resource>/.default`), numbers as numbers.
pub struct V2;

impl EntraVersion for V2 {
    fn resource(form: &HashMap<String, String>) -> Result<String, Response> {
        let Some(scope) = form.get("scope") else {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'scope'.",
            ));
        };
        scope
            .split_whitespace()
            .find_map(|s| s.strip_suffix("/.default"))
            .map(str::to_owned)
            .ok_or_else(|| {
                oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    1002012,
                    "The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
                )
            })
    }

    fn body(token: String, lifetime: i64, _resource: &str) -> Value {
        json!({
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        })
    }

    fn openid_configuration(_state: &AppState, base: &str, tenant: &str) -> Value {
        let issuer_tenant = if META_TENANTS.iter().any(|t| t.eq_ignore_ascii_case(tenant)) {
            "{tenantid}"
        } else {
            tenant
        };
        json!({
            "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
            "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": format!("{base}/{issuer_tenant}/v2.0"),
            "request_uri_parameter_supported": false,
            "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
            "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
            "device_authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/devicecode"),
            "http_logout_supported": true,
            "frontchannel_logout_supported": true,
            "end_session_endpoint": format!("{base}/{tenant}/oauth2/v2.0/logout"),
            "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
            "kerberos_endpoint": format!("{base}/{tenant}/kerberos"),
            "rbac_url": "https://pas.windows.net",
        })
    }
}

/// `POST /{tenant}/oauth2/token`, the v1 form with `resource` (used by the FlexVolume era):
/// numbers as strings, with `expires_on`, `not_before` and `resource`.
pub struct V1;

impl EntraVersion for V1 {
    fn resource(form: &HashMap<String, String>) -> Result<String, Response> {
        form.get("resource").cloned().ok_or_else(|| {
            oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'resource'.",
            )
        })
    }

    fn body(token: String, lifetime: i64, resource: &str) -> Value {
        let now = unix_now();
        json!({
            "token_type": "Bearer",
            "expires_in": lifetime.to_string(),
            "ext_expires_in": lifetime.to_string(),
            "expires_on": (now + lifetime).to_string(),
            "not_before": now.to_string(),
            "resource": resource,
            "access_token": token,
        })
    }

    fn openid_configuration(state: &AppState, base: &str, tenant: &str) -> Value {
        json!({
            "token_endpoint": format!("{base}/{tenant}/oauth2/token"),
            "jwks_uri": format!("{base}/common/discovery/keys"),
            "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
            "scopes_supported": ["openid"],
            "issuer": state.issuer.issuer(),
            "authorization_endpoint": format!("{base}/{tenant}/oauth2/authorize"),
        })
    }
}

/// The token endpoint of version `E`: checks the form, the tenant and the client credential,
/// and issues.
pub async fn token<E: EntraVersion>(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let form = match form_or_error(form) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let resource = match E::resource(&form) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let host = AppState::request_host(&headers, &uri);
    let principal = match authenticate(&state, &tenant, &host, &form) {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    match state.issuer.issue_to(&principal, &resource) {
        Ok((token, lifetime)) => tagged(
            Json(E::body(token, lifetime, &resource)).into_response(),
            &principal,
        ),
        Err(_) => signing_failed(),
    }
}

fn tagged(mut resp: Response, principal: &Principal) -> Response {
    resp.extensions_mut()
        .insert(CallerTag(principal.client_id.clone()));
    resp
}

fn signing_failed() -> Response {
    oauth_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        90000,
        "Token signing failed.",
    )
}

fn tenant_not_found(tenant: &str) -> Response {
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        90002,
        &format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
        ),
    )
}

/// Checks tenant, grant type and the client credential; returns who the token is for. `host` is
/// the host the client addressed, which a certificate assertion's audience must name.
fn authenticate(
    state: &AppState,
    tenant: &str,
    host: &str,
    form: &HashMap<String, String>,
) -> Result<Principal, Response> {
    if !tenant.eq_ignore_ascii_case(state.issuer.tenant()) {
        return Err(tenant_not_found(tenant));
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
    let result = match (form.get("client_secret"), form.get("client_assertion")) {
        (Some(secret), _) => state.directory.authenticate_secret(client_id, secret),
        (None, Some(assertion)) => {
            if form.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER) {
                return Err(oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    50027,
                    "The client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
                ));
            }
            let ours = state.issuer.tenant();
            state
                .directory
                .authenticate_assertion(client_id, assertion, |aud| {
                    names_token_endpoint(aud, host, ours)
                })
        }
        (None, None) => Err(if state.directory.has_app(client_id) {
            AuthError::NoCredential
        } else {
            AuthError::UnknownClient(client_id.clone())
        }),
    };
    result.map_err(|e| auth_error(&e, client_id, tenant))
}

/// True when `aud` is this token endpoint, v2.0 or v1, for `tenant`, on `host` (the host the
/// client used, as Entra expects its own name there).
fn names_token_endpoint(aud: &str, host: &str, tenant: &str) -> bool {
    let Ok(url) = url::Url::parse(aud) else {
        return false;
    };
    let (want_host, want_port) = split_port(host);
    let host_ok = url.host_str().is_some_and(|h| {
        h.trim_start_matches('[')
            .trim_end_matches(']')
            .eq_ignore_ascii_case(want_host)
    }) && url.port() == want_port.filter(|p| *p != 443);
    let path = url.path().trim_end_matches('/');
    url.scheme() == "https"
        && host_ok
        && [
            format!("/{tenant}/oauth2/v2.0/token"),
            format!("/{tenant}/oauth2/token"),
        ]
        .iter()
        .any(|p| path.eq_ignore_ascii_case(p))
}

fn auth_error(e: &AuthError, client_id: &str, tenant: &str) -> Response {
    let (status, error, code, text) = match e {
        AuthError::UnknownClient(_) => (
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'."
            ),
        ),
        AuthError::BadSecret => (
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        ),
        AuthError::NoCredential => (
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.".to_owned(),
        ),
        AuthError::MalformedAssertion => (
            StatusCode::BAD_REQUEST,
            "invalid_client",
            50027,
            "JWT token is invalid or malformed.".to_owned(),
        ),
        AuthError::UnknownIssuer(iss) => (
            StatusCode::BAD_REQUEST,
            "invalid_client",
            700211,
            format!("No matching federated identity record found for presented assertion issuer '{iss}'."),
        ),
        AuthError::BadSignature => (
            StatusCode::BAD_REQUEST,
            "invalid_client",
            700027,
            "Client assertion failed signature validation.".to_owned(),
        ),
        AuthError::AssertionTime => (
            StatusCode::BAD_REQUEST,
            "invalid_client",
            700024,
            "Client assertion is not within its valid time range.".to_owned(),
        ),
        AuthError::CertificateNotRegistered { thumbprint } => (
            StatusCode::BAD_REQUEST,
            "invalid_client",
            700027,
            match thumbprint {
                Some(t) => format!(
                    "The certificate that signed the client assertion is not registered on application '{client_id}': no key has thumbprint '{t}'."
                ),
                None => format!(
                    "The client assertion names no certificate (no x5t or x5t#S256 header), so no key of application '{client_id}' can verify it."
                ),
            },
        ),
        AuthError::AssertionNotFromClient => (
            StatusCode::BAD_REQUEST,
            "invalid_client",
            700021,
            format!(
                "The client assertion's iss and sub must both be the client_id parameter, '{client_id}'."
            ),
        ),
        AuthError::AssertionAudience { audience } => (
            StatusCode::BAD_REQUEST,
            "invalid_client",
            700023,
            format!(
                "The client assertion's audience '{audience}' is not this tenant's token endpoint."
            ),
        ),
        AuthError::NoMatchingFederation {
            issuer,
            subject,
            audience,
        } => (
            StatusCode::BAD_REQUEST,
            "invalid_client",
            70021,
            format!(
                "No matching federated identity record found for presented assertion. Assertion Issuer: '{issuer}'. Assertion Subject: '{subject}'. Assertion Audience: '{audience}'."
            ),
        ),
    };
    oauth_error(status, error, code, &text)
}

/// An Entra-shaped OAuth error response.
pub fn oauth_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let trace = crate::store::new_version_id();
    let now = unix_now();
    let body = json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {description}\r\nTrace ID: {trace}\r\nCorrelation ID: {trace}\r\nTimestamp: {now}"
        ),
        "error_codes": [code],
        "timestamp": now.to_string(),
        "trace_id": trace,
        "correlation_id": trace,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    (status, Json(body)).into_response()
}

fn known_tenant(state: &AppState, tenant: &str) -> bool {
    tenant.eq_ignore_ascii_case(state.issuer.tenant())
        || META_TENANTS.iter().any(|t| t.eq_ignore_ascii_case(tenant))
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration` (`E` = [`V2`]) and
/// `GET /{tenant}/.well-known/openid-configuration` (`E` = [`V1`]): the members both documents
/// have, and the version's own.
pub async fn openid_configuration<E: EntraVersion>(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if !known_tenant(&state, &tenant) {
        return tenant_not_found(&tenant);
    }
    let base = format!("https://{}", AppState::request_host(&headers, &uri));
    let mut doc = json!({
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "tenant_region_scope": "WW",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
    });
    if let (Some(doc), Value::Object(own)) = (
        doc.as_object_mut(),
        E::openid_configuration(&state, &base, &tenant),
    ) {
        doc.extend(own);
    }
    Json(doc).into_response()
}

/// `GET /{tenant}/discovery/v2.0/keys` (and the v1 path): the token signing key.
pub async fn keys(State(state): State<Arc<AppState>>) -> Response {
    Json(json!({ "keys": [state.issuer.public_jwk()] })).into_response()
}

/// `GET /common/discovery/instance`: names this host as the instance for any authority.
pub async fn instance_discovery(
    State(state): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let host = AppState::request_host(&headers, &uri);
    let tenant = query
        .get("authorization_endpoint")
        .and_then(|a| url::Url::parse(a).ok())
        .and_then(|u| u.path_segments()?.next().map(str::to_owned))
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| state.issuer.tenant().to_owned());
    let mut aliases: Vec<Value> = vec![json!(host)];
    for known in [
        "login.microsoftonline.com",
        "login.windows.net",
        "login.microsoft.com",
        "sts.windows.net",
    ] {
        if !known.eq_ignore_ascii_case(&host) {
            aliases.push(json!(known));
        }
    }
    Json(json!({
        "tenant_discovery_endpoint": format!("https://{host}/{tenant}/v2.0/.well-known/openid-configuration"),
        "api-version": "1.1",
        "metadata": [{
            "preferred_network": host,
            "preferred_cache": host,
            "aliases": aliases,
        }],
    }))
    .into_response()
}
