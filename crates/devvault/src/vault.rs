//! The Key Vault data plane shared by every object kind: the request context, vault selection by
//! Host, the 401 challenge and token checks, api-version checks, access-policy checks, the error
//! type with the service's codes and shapes, response headers, and paging.
//!
//! The routes every kind shares are in [`crate::objects`]; the kind-specific ones in
//! [`crate::secrets`], [`crate::keys`] and [`crate::certificates`]. The response shape itself
//! (error body, headers) is [`crate::reply`]'s.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::access::ObjectKind;
use crate::limits::{LimitError, MAX_CONTENT_TYPE_CHARS, MAX_VALUE_CHARS, valid_object_name};
use crate::observe::CallerTag;
use crate::reply::{kv_error, ok_json};
use crate::state::{AppState, split_port};
use crate::store::{AttributeUpdate, Attributes, Deleted, RECOVERABLE_DAYS, StoreError, Tags};
use crate::token::TokenError;

/// Recovery level reported on every object: soft delete on, purge allowed.
pub const RECOVERY_LEVEL: &str = "Recoverable+Purgeable";

/// Page size when `maxresults` is absent, and the largest the service allows.
pub const MAX_PAGE: usize = 25;

/// Stable api-versions the current SDKs send (Python, Go, .NET, Java, JS, C++, Rust).
pub const KNOWN_API_VERSIONS: &[&str] = &[
    "2016-10-01",
    "7.0",
    "7.1",
    "7.2",
    "7.3",
    "7.4",
    "7.5",
    "7.6",
    "2025-07-01",
    "2026-04-01",
];

/// The newest api-version, named in the rejection of unknown ones.
pub const LATEST_API_VERSION: &str = "2026-04-01";

/// True for a known stable version or a preview (`7.N-preview[.M]`, `YYYY-MM-DD-preview`).
pub fn api_version_ok(v: &str) -> bool {
    if KNOWN_API_VERSIONS.contains(&v) {
        return true;
    }
    if let Some(rest) = v.strip_prefix("7.")
        && let Some((minor, tail)) = rest.split_once("-preview")
    {
        return minor.len() == 1
            && minor.bytes().all(|b| b.is_ascii_digit())
            && (tail.is_empty()
                || tail
                    .strip_prefix('.')
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())));
    }
    if let Some(date) = v.strip_suffix("-preview") {
        let b = date.as_bytes();
        return b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    }
    false
}

/// A data-plane failure, rendered in the service's error shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// No vault answers to the request's host.
    VaultNotFound {
        /// The host addressed.
        host: String,
    },
    /// The object, or that version, does not exist.
    NotFound {
        /// Kind.
        kind: ObjectKind,
        /// Name or name/version as requested.
        what: String,
    },
    /// No deleted object of that name.
    DeletedNotFound {
        /// Kind.
        kind: ObjectKind,
        /// Name.
        name: String,
    },
    /// No create operation for that certificate.
    PendingNotFound {
        /// Name.
        name: String,
    },
    /// The version is disabled.
    Disabled {
        /// Kind.
        kind: ObjectKind,
        /// Operation name (`get`).
        op: &'static str,
    },
    /// The caller lacks the permission.
    AccessDenied {
        /// `appid=…;oid=…;iss=…`.
        caller: String,
        /// Kind.
        kind: ObjectKind,
        /// Permission.
        permission: &'static str,
        /// Vault name.
        vault: String,
    },
    /// A malformed or unsupported request.
    BadParameter(String),
    /// The object name in the URI breaks Key Vault's naming rule (1-127 of `0-9a-zA-Z-`).
    InvalidName {
        /// The name as requested.
        name: String,
    },
    /// A secret value longer than the service's limit.
    SecretTooLarge,
    /// The name is taken by a deleted object.
    DeletedConflict {
        /// Kind.
        kind: ObjectKind,
        /// Name.
        name: String,
    },
    /// Writes failed on the server.
    Internal,
}

impl ApiError {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::VaultNotFound { .. }
            | ApiError::NotFound { .. }
            | ApiError::DeletedNotFound { .. }
            | ApiError::PendingNotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Disabled { .. } | ApiError::AccessDenied { .. } => StatusCode::FORBIDDEN,
            ApiError::BadParameter(_) | ApiError::InvalidName { .. } | ApiError::SecretTooLarge => {
                StatusCode::BAD_REQUEST
            }
            ApiError::DeletedConflict { .. } => StatusCode::CONFLICT,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Maps a store failure for `kind`/`what`.
    pub fn from_store(e: StoreError, kind: ObjectKind, what: &str) -> Self {
        match e {
            StoreError::VaultNotFound(host) => ApiError::VaultNotFound { host },
            StoreError::NotFound => ApiError::NotFound {
                kind,
                what: what.to_owned(),
            },
            StoreError::BadName => ApiError::InvalidName {
                name: what.to_owned(),
            },
            StoreError::DeletedConflict => ApiError::DeletedConflict {
                kind,
                name: what.to_owned(),
            },
            StoreError::Persist => ApiError::Internal,
        }
    }
}

/// The store's own failures (vault missing, write failed), outside any one object.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::VaultNotFound(host) => ApiError::VaultNotFound { host },
            StoreError::BadName => {
                ApiError::BadParameter("The request URI contains an invalid name.".into())
            }
            StoreError::NotFound | StoreError::DeletedConflict | StoreError::Persist => {
                ApiError::Internal
            }
        }
    }
}

/// A secret value or content type beyond the service's limits, answered as the service does.
impl From<LimitError> for ApiError {
    fn from(e: LimitError) -> Self {
        match e {
            LimitError::ValueTooLarge => ApiError::SecretTooLarge,
            LimitError::ContentTypeTooLong => ApiError::BadParameter(format!(
                "The content type exceeds the maximum permitted length of {MAX_CONTENT_TYPE_CHARS} characters."
            )),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (code, message, inner): (String, String, Option<String>) = match self {
            ApiError::VaultNotFound { host } => (
                "VaultNotFound".into(),
                format!("No vault is served at host '{host}'."),
                None,
            ),
            ApiError::NotFound { kind, what } => (
                format!("{}NotFound", kind.title()),
                format!(
                    "A {} with (name/id) {what} was not found in this key vault. If you recently deleted this {} you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
                    kind.noun(),
                    kind.noun()
                ),
                None,
            ),
            ApiError::DeletedNotFound { kind, name } => (
                format!("{}NotFound", kind.title()),
                format!("Deleted {} not found: {name}", kind.title()),
                None,
            ),
            ApiError::PendingNotFound { name } => (
                "PendingCertificateNotFound".into(),
                format!("Pending certificate not found: {name}"),
                None,
            ),
            ApiError::Disabled { kind, op } => (
                "Forbidden".into(),
                format!(
                    "Operation {op} is not allowed on a disabled {}.",
                    kind.noun()
                ),
                Some(format!("{}Disabled", kind.title())),
            ),
            ApiError::AccessDenied {
                caller,
                kind,
                permission,
                vault,
            } => (
                "Forbidden".into(),
                format!(
                    "The user, group or application '{caller}' does not have {} {permission} permission on key vault '{vault};location=local'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287",
                    kind.segment()
                ),
                Some("AccessDenied".into()),
            ),
            ApiError::BadParameter(m) => ("BadParameter".into(), m, None),
            ApiError::InvalidName { name } => (
                "BadParameter".into(),
                format!("The request URI contains an invalid name: {name}"),
                None,
            ),
            ApiError::SecretTooLarge => (
                "BadParameter".into(),
                format!(
                    "Secret is beyond the maximum permitted length of {MAX_VALUE_CHARS} characters."
                ),
                Some("SecretTooLarge".into()),
            ),
            ApiError::DeletedConflict { kind, name } => (
                "Conflict".into(),
                format!(
                    "{} {name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the {} can only be recovered or purged.",
                    kind.title(),
                    kind.noun()
                ),
                None,
            ),
            ApiError::Internal => (
                "InternalServerError".into(),
                "The dev vault failed to store the change.".into(),
                None,
            ),
        };
        kv_error(status, &code, &message, inner.as_deref())
    }
}

/// Everything a data-plane handler needs from the request.
pub struct Ctx {
    /// Shared state.
    pub state: Arc<AppState>,
    /// Query parameters (the last of repeated ones).
    pub query: HashMap<String, String>,
    /// Request headers.
    pub headers: HeaderMap,
    /// Request URI.
    pub uri: Uri,
}

impl FromRequestParts<Arc<AppState>> for Ctx {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let query = parts
            .uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        Ok(Ctx {
            state: state.clone(),
            query,
            headers: parts.headers.clone(),
            uri: parts.uri.clone(),
        })
    }
}

/// Who made an authorised request, and to which vault.
pub struct Caller {
    /// Vault name.
    pub vault: String,
    /// Host as addressed (with port), for ids.
    pub host: String,
    /// api-version asked for.
    pub api_version: String,
    /// Client id.
    pub appid: String,
    /// Object id.
    pub oid: String,
    /// Token issuer.
    pub iss: String,
}

impl Caller {
    /// `https://<host>`, the base of ids.
    pub fn base(&self) -> String {
        format!("https://{}", self.host)
    }

    fn describe(&self) -> String {
        format!("appid={};oid={};iss={}", self.appid, self.oid, self.iss)
    }
}

impl Ctx {
    /// Resolves the vault from Host and checks the bearer token and api-version.
    pub fn authorize(&self) -> Result<Caller, Response> {
        let state = &self.state;
        let host = AppState::request_host(&self.headers, &self.uri);
        let Some(vault) = state
            .vault_for_host(&host)
            .filter(|v| state.store.has_vault(v))
        else {
            return Err(ApiError::VaultNotFound { host }.into_response());
        };
        let (_, port) = split_port(&host);
        let resource = match (&state.resource, port) {
            (Some(r), _) => r.clone(),
            (None, Some(p)) if p != 443 => format!("https://{}:{p}", state.vault_suffix),
            (None, _) => format!("https://{}", state.vault_suffix),
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
        let token = self
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            });
        let Some(token) = token else {
            return Err(unauthorized(TokenError::Missing, None));
        };
        // Tokens must be for the resource's host: the vault suffix's, unless the resource is set.
        let suffix = state
            .resource
            .as_deref()
            .and_then(|r| url::Url::parse(r).ok()?.host_str().map(str::to_owned))
            .unwrap_or_else(|| state.vault_suffix.clone())
            .to_ascii_lowercase();
        let audience_ok = |aud: &str| {
            url::Url::parse(aud.trim_end_matches('/'))
                .ok()
                .filter(|u| u.scheme() == "https" && matches!(u.path(), "" | "/"))
                .and_then(|u| u.host_str().map(|h| h.eq_ignore_ascii_case(&suffix)))
                .unwrap_or(false)
        };
        let claims = state
            .issuer
            .validate(token, audience_ok, &resource)
            .map_err(|e| unauthorized(e, Some("invalid_token")))?;
        let api_version = self.query.get("api-version").cloned().unwrap_or_default();
        if api_version.is_empty() {
            return Err(ApiError::BadParameter(
                "The request URI contains an invalid or missing 'api-version' parameter.".into(),
            )
            .into_response());
        }
        if !api_version_ok(&api_version) {
            return Err(ApiError::BadParameter(format!(
                "The specified version ({api_version}) is not recognized. Consider using the latest supported version ({LATEST_API_VERSION})."
            ))
            .into_response());
        }
        Ok(Caller {
            vault,
            host,
            api_version,
            appid: claims.appid,
            oid: claims.oid,
            iss: claims.iss,
        })
    }

    /// Checks an access-policy permission.
    pub fn permit(
        &self,
        caller: &Caller,
        kind: ObjectKind,
        permission: &'static str,
    ) -> Result<(), ApiError> {
        if self
            .state
            .policies
            .allows(&caller.vault, &caller.appid, &caller.oid, kind, permission)
        {
            Ok(())
        } else {
            Err(ApiError::AccessDenied {
                caller: caller.describe(),
                kind,
                permission,
                vault: caller.vault.clone(),
            })
        }
    }

    /// Authorises, checks `permission`, runs `f`, and tags the response with the caller.
    pub fn run(
        &self,
        kind: ObjectKind,
        permission: &'static str,
        f: impl FnOnce(&Caller) -> Result<Response, ApiError>,
    ) -> Response {
        let caller = match self.authorize() {
            Ok(c) => c,
            Err(resp) => return resp,
        };
        let mut resp = match self
            .permit(&caller, kind, permission)
            .and_then(|()| f(&caller))
        {
            Ok(r) => r,
            Err(e) => e.into_response(),
        };
        resp.extensions_mut()
            .insert(CallerTag(caller.appid.clone()));
        resp
    }

    /// [`Ctx::run`] for a route that names an object: an invalid name answers 400, as the
    /// service does on every such route, instead of reaching the store (where reads would say
    /// 404).
    pub fn run_named(
        &self,
        kind: ObjectKind,
        permission: &'static str,
        name: &str,
        f: impl FnOnce(&Caller) -> Result<Response, ApiError>,
    ) -> Response {
        self.run(kind, permission, |c| {
            check_name(name)?;
            f(c)
        })
    }

    /// The page asked for: offset from `$skiptoken`, size from `maxresults`.
    pub fn page(&self) -> Result<(usize, usize), ApiError> {
        let size = match self.query.get("maxresults") {
            None => MAX_PAGE,
            Some(m) => match m.parse::<usize>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
                _ => {
                    return Err(ApiError::BadParameter(format!(
                        "The value of parameter maxresults must be between 1 and {MAX_PAGE}."
                    )));
                }
            },
        };
        let offset = match self.query.get("$skiptoken") {
            None => 0,
            Some(t) => t
                .parse::<usize>()
                .map_err(|_| ApiError::BadParameter("Invalid $skiptoken.".into()))?,
        };
        Ok((offset, size))
    }

    /// A list page: `{"value": items[offset..offset+size], "nextLink": …}`.
    pub fn list_page(&self, caller: &Caller, items: Vec<Value>) -> Result<Response, ApiError> {
        let (offset, size) = self.page()?;
        let total = items.len();
        let page: Vec<Value> = items.into_iter().skip(offset).take(size).collect();
        let next = if offset + size < total {
            Value::String(format!(
                "{}{}?api-version={}&$skiptoken={}&maxresults={size}",
                caller.base(),
                self.uri.path(),
                caller.api_version,
                offset + size
            ))
        } else {
            Value::Null
        };
        Ok(ok_json(json!({ "value": page, "nextLink": next })))
    }
}

/// Rejects a disabled version (`op` names the operation).
///
/// `exp` and `nbf` are not checked: Key Vault applies them to cryptographic operations (which
/// the dev vault does not serve) and still answers get and list, value included, outside them.
pub fn check_usable(
    kind: ObjectKind,
    attrs: &Attributes,
    op: &'static str,
) -> Result<(), ApiError> {
    if !attrs.enabled {
        return Err(ApiError::Disabled { kind, op });
    }
    Ok(())
}

/// Rejects an object name from the request URI that breaks Key Vault's naming rule.
pub fn check_name(name: &str) -> Result<(), ApiError> {
    if valid_object_name(name) {
        Ok(())
    } else {
        Err(ApiError::InvalidName {
            name: name.to_owned(),
        })
    }
}

/// The `attributes` object of a bundle.
pub fn attributes_json(a: &Attributes) -> Value {
    let mut v = json!({ "enabled": a.enabled });
    if let Some(nbf) = a.nbf {
        v["nbf"] = json!(nbf);
    }
    if let Some(exp) = a.exp {
        v["exp"] = json!(exp);
    }
    v["created"] = json!(a.created);
    v["updated"] = json!(a.updated);
    v["recoveryLevel"] = json!(RECOVERY_LEVEL);
    v["recoverableDays"] = json!(RECOVERABLE_DAYS);
    v
}

/// Adds `tags` when they were ever set, even to `{}` (the service omits the member otherwise).
pub fn put_tags(body: &mut Value, tags: &Option<Tags>) {
    if let Some(tags) = tags {
        body["tags"] = json!(tags);
    }
}

/// Adds the deleted-object members of `deleted` to a bundle.
pub fn deleted_json<V>(
    mut bundle: Value,
    caller: &Caller,
    kind: ObjectKind,
    deleted: &Deleted<V>,
) -> Value {
    bundle["recoveryId"] = json!(format!(
        "{}/{}/{}",
        caller.base(),
        kind.deleted_segment(),
        deleted.entry.name
    ));
    bundle["deletedDate"] = json!(deleted.deleted_date);
    bundle["scheduledPurgeDate"] = json!(deleted.scheduled_purge_date);
    bundle
}

/// Attributes on a write (`attributes` member of PUT/POST/PATCH bodies).
#[derive(Debug, Deserialize, Default)]
pub struct WriteAttributes {
    /// Enabled flag.
    pub enabled: Option<bool>,
    /// Not before.
    pub nbf: Option<i64>,
    /// Expiry.
    pub exp: Option<i64>,
}

impl WriteAttributes {
    /// The change a PATCH's `attributes` and `tags` ask for (absent attributes change nothing);
    /// a kind adds its own members (content type, operations) to it.
    pub fn update(attributes: Option<Self>, tags: Option<Tags>) -> AttributeUpdate {
        let attrs = attributes.unwrap_or_default();
        AttributeUpdate {
            enabled: attrs.enabled,
            nbf: attrs.nbf,
            exp: attrs.exp,
            tags,
            content_type: None,
            key_ops: None,
        }
    }
}

/// Parses a JSON body, answering 400 BadParameter when it does not fit.
pub fn parse_body<T: for<'de> Deserialize<'de>>(body: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|_| ApiError::BadParameter(format!("The request body is not a valid {what}.")))
}

/// Anything else on the vault listener.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_version_current_sdks_send_is_accepted_and_others_are_not() {
        for v in KNOWN_API_VERSIONS {
            assert!(api_version_ok(v), "{v}");
        }
        for v in [
            "7.6-preview.2",
            "7.5-preview.1",
            "7.4-preview",
            "2026-03-01-preview",
        ] {
            assert!(api_version_ok(v), "{v}");
        }
        for v in [
            "",
            "8.0",
            "7",
            "7.x",
            "2019-01-01",
            "latest",
            "7.6-preview.",
            "2026-3-1-preview",
        ] {
            assert!(!api_version_ok(v), "{v}");
        }
    }

    #[test]
    fn errors_carry_the_services_codes_and_inner_codes() {
        let body = |e: ApiError| {
            let status = e.status();
            (status, e)
        };
        assert_eq!(
            body(ApiError::Disabled {
                kind: ObjectKind::Key,
                op: "get"
            })
            .0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            ApiError::from_store(StoreError::NotFound, ObjectKind::Certificate, "c").status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            ApiError::from_store(StoreError::DeletedConflict, ObjectKind::Secret, "s").status(),
            StatusCode::CONFLICT
        );
    }
}
