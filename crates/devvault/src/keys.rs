//! Key routes: create (RSA 2048/3072/4096, EC P-256/P-384/P-521), import a JWK with its private
//! members, get (latest with or without the trailing slash, or a version), list keys and versions,
//! update attributes, delete, and the deleted-key routes. Only public members ever leave the vault.

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
use crate::crypto::{self, KeySpec};
use crate::server::AppState;
use crate::store::{AttributeUpdate, Attributes, KeyVersion, Tags, new_version_id, unix_now};
use crate::vault::{
    ApiError, Caller, Ctx, WriteAttributes, attributes_json, check_usable, deleted_json, ok_json,
    parse_body, put_tags, with_kv_headers,
};

const KIND: ObjectKind = ObjectKind::Key;

/// Operations a key may be given.
const KNOWN_OPS: &[&str] = &[
    "encrypt",
    "decrypt",
    "sign",
    "verify",
    "wrapKey",
    "unwrapKey",
    "import",
    "export",
];

/// The key routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/keys", get(list))
        .route("/keys/", get(list))
        .route("/keys/{name}", get(get_latest).put(import).delete(delete))
        .route("/keys/{name}/", get(get_latest).patch(patch_latest))
        .route("/keys/{name}/create", post(create))
        .route("/keys/{name}/versions", get(list_versions))
        .route("/keys/{name}/{version}", get(get_version).patch(patch))
        .route("/deletedkeys", get(list_deleted))
        .route("/deletedkeys/{name}", get(get_deleted).delete(purge))
        .route("/deletedkeys/{name}/recover", post(recover))
}

fn attributes(v: &KeyVersion) -> Value {
    let mut a = attributes_json(&v.attributes);
    a["exportable"] = json!(v.exportable);
    a["hsmPlatform"] = json!("0");
    a
}

/// A KeyBundle.
pub fn bundle(caller: &Caller, name: &str, v: &KeyVersion) -> Value {
    let mut key = serde_json::to_value(&v.jwk).unwrap_or_else(|_| json!({}));
    key["kid"] = json!(format!("{}/keys/{name}/{}", caller.base(), v.version));
    key["key_ops"] = json!(v.key_ops);
    let mut body = json!({ "key": key, "attributes": attributes(v) });
    put_tags(&mut body, &v.tags);
    if v.managed {
        body["managed"] = json!(true);
    }
    body
}

fn item(caller: &Caller, name: &str, v: &KeyVersion, with_version: bool) -> Value {
    let kid = if with_version {
        format!("{}/keys/{name}/{}", caller.base(), v.version)
    } else {
        format!("{}/keys/{name}", caller.base())
    };
    let mut body = json!({ "kid": kid, "attributes": attributes(v) });
    put_tags(&mut body, &v.tags);
    if v.managed {
        body["managed"] = json!(true);
    }
    body
}

fn fetch(
    ctx: &Ctx,
    caller: &Caller,
    name: &str,
    version: Option<&str>,
) -> Result<Response, ApiError> {
    let what = version.map_or_else(|| name.to_owned(), |v| format!("{name}/{v}"));
    let found = ctx
        .state
        .store
        .read(&caller.vault, |v| {
            v.keys
                .get(name)
                .and_then(|e| e.find(version).map(|x| (e.name.clone(), x.clone())))
        })
        .map_err(|e| ApiError::from_store(e, KIND, &what))?;
    let (stored, v) = found.ok_or_else(|| ApiError::NotFound {
        kind: KIND,
        what: what.clone(),
    })?;
    check_usable(KIND, &v.attributes, "get")?;
    Ok(ok_json(bundle(caller, &stored, &v)))
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
struct CreateBody {
    kty: Option<String>,
    key_size: Option<u32>,
    public_exponent: Option<u64>,
    crv: Option<String>,
    key_ops: Option<Vec<String>>,
    #[serde(default)]
    attributes: Option<WriteAttributes>,
    #[serde(default)]
    tags: Option<Tags>,
}

fn check_ops(ops: &[String]) -> Result<(), ApiError> {
    match ops.iter().find(|o| !KNOWN_OPS.contains(&o.as_str())) {
        Some(bad) => Err(ApiError::BadParameter(format!(
            "Invalid key operation '{bad}'."
        ))),
        None => Ok(()),
    }
}

async fn create(ctx: Ctx, Path(name): Path<String>, body: Bytes) -> Response {
    ctx.run_named(KIND, "create", &name, |c| {
        let body: CreateBody = parse_body(&body, "KeyCreateParameters object")?;
        let Some(kty) = body.kty else {
            return Err(ApiError::BadParameter("Property 'kty' is required.".into()));
        };
        if body.public_exponent.is_some_and(|e| e != 65537) {
            return Err(ApiError::BadParameter(
                "The dev vault makes RSA keys with public exponent 65537 only.".into(),
            ));
        }
        let spec = KeySpec::parse(&kty, body.key_size, body.crv.as_deref())
            .map_err(|e| ApiError::BadParameter(e.to_string()))?;
        let pkcs8 = spec.generate().map_err(|_| ApiError::Internal)?;
        let jwk = crypto::jwk_from_pkcs8(&pkcs8).map_err(|_| ApiError::Internal)?;
        let key_ops = match body.key_ops {
            Some(ops) => {
                check_ops(&ops)?;
                ops
            }
            None => jwk.default_ops(),
        };
        let attrs = body.attributes.unwrap_or_default();
        let version = KeyVersion {
            version: new_version_id(),
            pkcs8,
            jwk,
            key_ops,
            attributes: Attributes::new(attrs.enabled, attrs.nbf, attrs.exp, unix_now()),
            tags: body.tags,
            managed: false,
            exportable: false,
        };
        let stored = ctx
            .state
            .store
            .write(&c.vault, |v| v.keys.add(&name, version.clone()))
            .map_err(|e| ApiError::from_store(e, KIND, &name))?;
        Ok(ok_json(bundle(c, &stored, &version)))
    })
}

#[derive(Deserialize)]
struct ImportBody {
    key: Option<crypto::PrivateJwk>,
    #[serde(default)]
    attributes: Option<WriteAttributes>,
    #[serde(default)]
    tags: Option<Tags>,
}

async fn import(ctx: Ctx, Path(name): Path<String>, body: Bytes) -> Response {
    ctx.run_named(KIND, "import", &name, |c| {
        let body: ImportBody = parse_body(&body, "KeyImportParameters object")?;
        let Some(jwk) = body.key else {
            return Err(ApiError::BadParameter("Property 'key' is required.".into()));
        };
        let pkcs8 =
            crypto::pkcs8_from_jwk(&jwk).map_err(|e| ApiError::BadParameter(e.to_string()))?;
        let public = crypto::jwk_from_pkcs8(&pkcs8).map_err(|_| ApiError::Internal)?;
        let key_ops = match jwk.key_ops {
            Some(ops) => {
                check_ops(&ops)?;
                ops
            }
            None => public.default_ops(),
        };
        let attrs = body.attributes.unwrap_or_default();
        let version = KeyVersion {
            version: new_version_id(),
            pkcs8,
            jwk: public,
            key_ops,
            attributes: Attributes::new(attrs.enabled, attrs.nbf, attrs.exp, unix_now()),
            tags: body.tags,
            managed: false,
            exportable: false,
        };
        let stored = ctx
            .state
            .store
            .write(&c.vault, |v| v.keys.add(&name, version.clone()))
            .map_err(|e| ApiError::from_store(e, KIND, &name))?;
        Ok(ok_json(bundle(c, &stored, &version)))
    })
}

#[derive(Deserialize)]
struct PatchBody {
    key_ops: Option<Vec<String>>,
    #[serde(default)]
    attributes: Option<WriteAttributes>,
    #[serde(default)]
    tags: Option<Tags>,
}

fn do_patch(
    ctx: &Ctx,
    c: &Caller,
    name: &str,
    version: Option<&str>,
    body: &[u8],
) -> Result<Response, ApiError> {
    let body: PatchBody = parse_body(body, "KeyUpdateParameters object")?;
    if let Some(ops) = &body.key_ops {
        check_ops(ops)?;
    }
    let attrs = body.attributes.unwrap_or_default();
    let change = AttributeUpdate {
        enabled: attrs.enabled,
        nbf: attrs.nbf,
        exp: attrs.exp,
        tags: body.tags,
        content_type: None,
        key_ops: body.key_ops,
    };
    let what = version.map_or_else(|| name.to_owned(), |v| format!("{name}/{v}"));
    let (stored, v) = ctx
        .state
        .store
        .write(&c.vault, |vault| {
            vault.keys.update(name, version, &change, unix_now())
        })
        .map_err(|e| ApiError::from_store(e, KIND, &what))?;
    Ok(ok_json(bundle(c, &stored, &v)))
}

async fn patch(ctx: Ctx, Path((name, version)): Path<(String, String)>, body: Bytes) -> Response {
    ctx.run_named(KIND, "update", &name, |c| {
        let version = Some(version.as_str()).filter(|v| !v.is_empty());
        do_patch(&ctx, c, &name, version, &body)
    })
}

async fn patch_latest(ctx: Ctx, Path(name): Path<String>, body: Bytes) -> Response {
    ctx.run_named(KIND, "update", &name, |c| {
        do_patch(&ctx, c, &name, None, &body)
    })
}

async fn list(ctx: Ctx) -> Response {
    ctx.run(KIND, "list", |c| {
        let items = ctx
            .state
            .store
            .read(&c.vault, |v| {
                v.keys
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
                v.keys.get(&name).map(|e| {
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

fn deleted_bundle(c: &Caller, d: &crate::store::Deleted<KeyVersion>) -> Value {
    let base = d
        .entry
        .latest()
        .map(|l| bundle(c, &d.entry.name, l))
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

async fn delete(ctx: Ctx, Path(name): Path<String>) -> Response {
    ctx.run_named(KIND, "delete", &name, |c| {
        let deleted = ctx.state.store.write(&c.vault, |v| {
            if v.keys
                .get(&name)
                .and_then(|e| e.latest())
                .is_some_and(|l| l.managed)
            {
                return Err(ApiError::BadParameter(format!(
                    "Key {name} is managed by a certificate; delete the certificate instead."
                )));
            }
            v.keys
                .delete(&name, unix_now())
                .map_err(|e| ApiError::from_store(e, KIND, &name))
        })?;
        Ok(ok_json(deleted_bundle(c, &deleted)))
    })
}

async fn get_deleted(ctx: Ctx, Path(name): Path<String>) -> Response {
    ctx.run_named(KIND, "get", &name, |c| {
        ctx.state
            .store
            .read(&c.vault, |v| {
                v.keys.get_deleted(&name).map(|d| deleted_bundle(c, d))
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
                v.keys
                    .deleted
                    .values()
                    .map(|d| {
                        let mut b = deleted_bundle(c, d);
                        if let Some(key) = b.get("key").and_then(|k| k.get("kid")).cloned() {
                            b["kid"] = key;
                        }
                        if let Some(o) = b.as_object_mut() {
                            o.remove("key");
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
            .write(&c.vault, |v| v.keys.purge(&name))
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
            .write(&c.vault, |v| v.keys.recover(&name))
            .map_err(|_| ApiError::DeletedNotFound {
                kind: KIND,
                name: name.clone(),
            })?;
        let latest = entry.latest().ok_or(ApiError::Internal)?;
        Ok(ok_json(bundle(c, &entry.name, latest)))
    })
}
