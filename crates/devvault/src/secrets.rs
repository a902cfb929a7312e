//! Secret routes: set, get (latest with or without the trailing slash, or a version), list
//! secrets and versions, update attributes, delete, and the deleted-secret routes (get, list,
//! purge, recover); and the service's limits on a secret's value and content type, which seeds
//! obey too.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::access::ObjectKind;
use crate::server::AppState;
use crate::store::{AttributeUpdate, NewSecret, SecretVersion, Tags, unix_now};
use crate::vault::{
    ApiError, Caller, Ctx, WriteAttributes, attributes_json, check_usable, deleted_json, ok_json,
    parse_body, put_tags, with_kv_headers,
};

const KIND: ObjectKind = ObjectKind::Secret;

/// The longest secret value the service accepts, in characters; longer ones answer 400
/// `SecretTooLarge`.
pub const MAX_VALUE_CHARS: usize = 25_600;

/// The longest content type the service documents for a secret.
pub const MAX_CONTENT_TYPE_CHARS: usize = 255;

/// Why a secret's value or content type is refused, as the service refuses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// The value is longer than [`MAX_VALUE_CHARS`].
    #[error("the value is longer than Key Vault's limit of {MAX_VALUE_CHARS} characters")]
    ValueTooLarge,
    /// The content type is longer than [`MAX_CONTENT_TYPE_CHARS`].
    #[error(
        "the content type is longer than Key Vault's limit of {MAX_CONTENT_TYPE_CHARS} characters"
    )]
    ContentTypeTooLong,
}

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

/// Checks a value and content type against the service's limits (either may be absent, as on
/// an update).
pub fn check_limits(value: Option<&str>, content_type: Option<&str>) -> Result<(), LimitError> {
    if value.is_some_and(|v| service_len(v) > MAX_VALUE_CHARS) {
        return Err(LimitError::ValueTooLarge);
    }
    if content_type.is_some_and(|ct| service_len(ct) > MAX_CONTENT_TYPE_CHARS) {
        return Err(LimitError::ContentTypeTooLong);
    }
    Ok(())
}

/// A string's length as the service counts characters. The service is a .NET one, whose
/// strings count UTF-16 code units; for ASCII this is the byte length.
fn service_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// The secret routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/secrets", get(list))
        .route("/secrets/", get(list))
        .route("/secrets/{name}", get(get_latest).put(set).delete(delete))
        .route("/secrets/{name}/", get(get_latest).patch(patch_latest))
        .route("/secrets/{name}/versions", get(list_versions))
        .route("/secrets/{name}/{version}", get(get_version).patch(patch))
        .route("/deletedsecrets", get(list_deleted))
        .route("/deletedsecrets/{name}", get(get_deleted).delete(purge))
        .route("/deletedsecrets/{name}/recover", post(recover))
}

/// A SecretBundle.
pub fn bundle(caller: &Caller, name: &str, v: &SecretVersion, with_value: bool) -> Value {
    let base = caller.base();
    let mut body = json!({});
    if with_value {
        body["value"] = json!(v.value);
    }
    if let Some(ct) = &v.content_type {
        body["contentType"] = json!(ct);
    }
    body["id"] = json!(format!("{base}/secrets/{name}/{}", v.version));
    body["attributes"] = attributes_json(&v.attributes);
    put_tags(&mut body, &v.tags);
    if v.managed {
        body["kid"] = json!(format!("{base}/keys/{name}/{}", v.version));
        body["managed"] = json!(true);
    }
    body
}

fn item(caller: &Caller, name: &str, v: &SecretVersion, with_version: bool) -> Value {
    let mut body = bundle(caller, name, v, false);
    if !with_version {
        body["id"] = json!(format!("{}/secrets/{name}", caller.base()));
    }
    if let Some(obj) = body.as_object_mut() {
        obj.remove("kid");
    }
    body
}

fn fetch(
    ctx: &Ctx,
    caller: &Caller,
    name: &str,
    version: Option<&str>,
) -> Result<Response, ApiError> {
    let what = match version {
        Some(v) => format!("{name}/{v}"),
        None => name.to_owned(),
    };
    let (stored, v) = ctx
        .state
        .store
        .get_secret(&caller.vault, name, version)
        .map_err(|e| ApiError::from_store(e, KIND, &what))?;
    check_usable(KIND, &v.attributes, "get")?;
    if let Some(out) = ctx.query.get("outContentType") {
        return convert(caller, &stored, &v, out);
    }
    Ok(ok_json(bundle(caller, &stored, &v, true)))
}

/// `outContentType` (api-version 2025-07-01): PFX-backed certificate secrets convert to PEM.
fn convert(
    caller: &Caller,
    name: &str,
    v: &SecretVersion,
    out: &str,
) -> Result<Response, ApiError> {
    let pfx_backed =
        v.managed && v.content_type.as_deref() == Some(crate::crypto::CONTENT_TYPE_PKCS12);
    if out != crate::crypto::CONTENT_TYPE_PEM || !pfx_backed {
        let from = if pfx_backed { "PFX" } else { "Unsupported" };
        let to = if out == crate::crypto::CONTENT_TYPE_PEM {
            "PEM"
        } else {
            "Unsupported"
        };
        return Err(ApiError::BadParameter(format!(
            "The '{from}' to '{to}' transformation is not supported. Only PFX to PEM transformation is supported."
        )));
    }
    use base64::Engine;
    let pfx = base64::engine::general_purpose::STANDARD
        .decode(&v.value)
        .map_err(|_| ApiError::Internal)?;
    let material =
        crate::crypto::CertMaterial::from_pfx(&pfx, "").map_err(|_| ApiError::Internal)?;
    let mut converted = v.clone();
    converted.value = material.to_pem();
    converted.content_type = Some(crate::crypto::CONTENT_TYPE_PEM.into());
    Ok(ok_json(bundle(caller, name, &converted, true)))
}

async fn get_latest(ctx: Ctx, Path(name): Path<String>) -> Response {
    ctx.run_named(KIND, "get", &name, |c| fetch(&ctx, c, &name, None))
}

async fn get_version(ctx: Ctx, Path((name, version)): Path<(String, String)>) -> Response {
    ctx.run_named(KIND, "get", &name, |c| {
        let version = Some(version.as_str()).filter(|v| !v.is_empty());
        fetch(&ctx, c, &name, version)
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SetBody {
    value: Option<String>,
    content_type: Option<String>,
    #[serde(default)]
    tags: Option<Tags>,
    #[serde(default)]
    attributes: Option<WriteAttributes>,
}

async fn set(ctx: Ctx, Path(name): Path<String>, body: Bytes) -> Response {
    ctx.run_named(KIND, "set", &name, |c| {
        let body: SetBody = parse_body(&body, "SecretSetParameters object")?;
        let Some(value) = body.value else {
            return Err(ApiError::BadParameter(
                "Property 'value' is required.".into(),
            ));
        };
        check_limits(Some(&value), body.content_type.as_deref())?;
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
        let (stored, v) = ctx
            .state
            .store
            .set_secret(&c.vault, &name, new)
            .map_err(|e| ApiError::from_store(e, KIND, &name))?;
        Ok(ok_json(bundle(c, &stored, &v, true)))
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PatchBody {
    content_type: Option<String>,
    #[serde(default)]
    tags: Option<Tags>,
    #[serde(default)]
    attributes: Option<WriteAttributes>,
}

fn do_patch(
    ctx: &Ctx,
    c: &Caller,
    name: &str,
    version: Option<&str>,
    body: &[u8],
) -> Result<Response, ApiError> {
    let body: PatchBody = parse_body(body, "SecretUpdateParameters object")?;
    check_limits(None, body.content_type.as_deref())?;
    let attrs = body.attributes.unwrap_or_default();
    let change = AttributeUpdate {
        enabled: attrs.enabled,
        nbf: attrs.nbf,
        exp: attrs.exp,
        tags: body.tags,
        content_type: body.content_type,
        key_ops: None,
    };
    let what = version.map_or_else(|| name.to_owned(), |v| format!("{name}/{v}"));
    let (stored, v) = ctx
        .state
        .store
        .write(&c.vault, |vault| {
            vault.secrets.update(name, version, &change, unix_now())
        })
        .map_err(|e| ApiError::from_store(e, KIND, &what))?;
    Ok(ok_json(bundle(c, &stored, &v, false)))
}

async fn patch(ctx: Ctx, Path((name, version)): Path<(String, String)>, body: Bytes) -> Response {
    ctx.run_named(KIND, "set", &name, |c| {
        let version = Some(version.as_str()).filter(|v| !v.is_empty());
        do_patch(&ctx, c, &name, version, &body)
    })
}

async fn patch_latest(ctx: Ctx, Path(name): Path<String>, body: Bytes) -> Response {
    ctx.run_named(KIND, "set", &name, |c| {
        do_patch(&ctx, c, &name, None, &body)
    })
}

async fn list(ctx: Ctx) -> Response {
    ctx.run(KIND, "list", |c| {
        let items = ctx
            .state
            .store
            .read(&c.vault, |v| {
                v.secrets
                    .live
                    .values()
                    .filter_map(|e| e.latest().map(|l| item(c, &e.name, l, false)))
                    .collect::<Vec<_>>()
            })
            .map_err(|e| ApiError::from_store(e, KIND, ""))?;
        ctx.list_page(c, items)
    })
}

async fn list_versions(ctx: Ctx, Path(name): Path<String>) -> Response {
    ctx.run_named(KIND, "list", &name, |c| {
        let items = ctx
            .state
            .store
            .read(&c.vault, |v| {
                v.secrets.get(&name).map(|e| {
                    e.listed()
                        .into_iter()
                        .map(|x| item(c, &e.name, x, true))
                        .collect::<Vec<_>>()
                })
            })
            .map_err(|e| ApiError::from_store(e, KIND, &name))?
            .ok_or_else(|| ApiError::NotFound {
                kind: KIND,
                what: name.clone(),
            })?;
        ctx.list_page(c, items)
    })
}

async fn delete(ctx: Ctx, Path(name): Path<String>) -> Response {
    ctx.run_named(KIND, "delete", &name, |c| {
        let deleted = ctx.state.store.write(&c.vault, |v| {
            if v.secrets
                .get(&name)
                .and_then(|e| e.latest())
                .is_some_and(|l| l.managed)
            {
                return Err(ApiError::BadParameter(format!(
                    "Secret {name} is managed by a certificate; delete the certificate instead."
                )));
            }
            v.secrets
                .delete(&name, unix_now())
                .map_err(|e| ApiError::from_store(e, KIND, &name))
        })?;
        Ok(ok_json(deleted_bundle(c, &deleted)))
    })
}

fn deleted_bundle(c: &Caller, d: &crate::store::Deleted<SecretVersion>) -> Value {
    let latest = d.entry.latest();
    let base = latest
        .map(|l| bundle(c, &d.entry.name, l, false))
        .unwrap_or_else(|| json!({}));
    deleted_json(
        base,
        c,
        KIND,
        &d.entry.name,
        d.deleted_date,
        d.scheduled_purge_date,
    )
}

async fn get_deleted(ctx: Ctx, Path(name): Path<String>) -> Response {
    ctx.run_named(KIND, "get", &name, |c| {
        ctx.state
            .store
            .read(&c.vault, |v| {
                v.secrets.get_deleted(&name).map(|d| deleted_bundle(c, d))
            })
            .map_err(|e| ApiError::from_store(e, KIND, &name))?
            .map(ok_json)
            .ok_or(ApiError::DeletedNotFound {
                kind: KIND,
                name: name.clone(),
            })
    })
}

async fn list_deleted(ctx: Ctx) -> Response {
    ctx.run(KIND, "list", |c| {
        let items = ctx
            .state
            .store
            .read(&c.vault, |v| {
                v.secrets
                    .deleted
                    .values()
                    .map(|d| {
                        let mut b = deleted_bundle(c, d);
                        if let Some(o) = b.as_object_mut() {
                            o.remove("kid");
                        }
                        b
                    })
                    .collect::<Vec<_>>()
            })
            .map_err(|e| ApiError::from_store(e, KIND, ""))?;
        ctx.list_page(c, items)
    })
}

async fn purge(ctx: Ctx, Path(name): Path<String>) -> Response {
    ctx.run_named(KIND, "purge", &name, |c| {
        ctx.state
            .store
            .write(&c.vault, |v| v.secrets.purge(&name))
            .map_err(|_| ApiError::DeletedNotFound {
                kind: KIND,
                name: name.clone(),
            })?;
        Ok(with_kv_headers(StatusCode::NO_CONTENT.into_response()))
    })
}

async fn recover(ctx: Ctx, Path(name): Path<String>) -> Response {
    ctx.run_named(KIND, "recover", &name, |c| {
        let entry = ctx
            .state
            .store
            .write(&c.vault, |v| v.secrets.recover(&name))
            .map_err(|_| ApiError::DeletedNotFound {
                kind: KIND,
                name: name.clone(),
            })?;
        let latest = entry.latest().ok_or(ApiError::Internal)?;
        Ok(ok_json(bundle(c, &entry.name, latest, false)))
    })
}
