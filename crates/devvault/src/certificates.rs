//! Certificate routes: import (PFX base64 with or without a password, PEM raw or base64, with a
//! chain), create a self-signed certificate (202 plus a pending operation that the first poll
//! completes), the policy and pending operation, get (latest with or without the trailing slash,
//! or a version), list certificates and versions, update attributes (carried to the managed key
//! and secret), delete (with the key and secret), and the deleted-certificate routes.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::access::ObjectKind;
use crate::certpolicy;
use crate::crypto::{self, CertMaterial};
use crate::server::AppState;
use crate::store::{
    AttributeUpdate, CertMeta, CertStoreError, CertVersion, NewCertVersion, PendingOp, Tags,
    new_version_id, unix_now,
};
use crate::vault::{
    ApiError, Caller, Ctx, WriteAttributes, attributes_json, check_usable, deleted_json, ok_json,
    parse_body, put_tags, with_kv_headers,
};

const KIND: ObjectKind = ObjectKind::Certificate;

/// Seconds a client is told to wait before polling a create operation, as the service says.
const CREATE_RETRY_AFTER: &str = "10";

/// The certificate routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/certificates", get(list))
        .route("/certificates/", get(list))
        .route("/certificates/{name}", get(get_latest).delete(delete))
        .route("/certificates/{name}/", get(get_latest).patch(patch_latest))
        .route("/certificates/{name}/import", post(import))
        .route("/certificates/{name}/create", post(create))
        .route("/certificates/{name}/pending", get(pending))
        .route("/certificates/{name}/policy", get(policy))
        .route("/certificates/{name}/versions", get(list_versions))
        .route(
            "/certificates/{name}/{version}",
            get(get_version).patch(patch),
        )
        .route("/deletedcertificates", get(list_deleted))
        .route(
            "/deletedcertificates/{name}",
            get(get_deleted).delete(purge),
        )
        .route("/deletedcertificates/{name}/recover", post(recover))
}

fn policy_json(caller: &Caller, name: &str, meta: Option<&CertMeta>) -> Value {
    let mut p = meta.map(|m| m.policy.clone()).unwrap_or_else(|| json!({}));
    let id = json!(format!("{}/certificates/{name}/policy", caller.base()));
    match p.as_object_mut() {
        Some(obj) => {
            let mut with_id = serde_json::Map::new();
            with_id.insert("id".into(), id);
            with_id.extend(std::mem::take(obj));
            Value::Object(with_id)
        }
        None => json!({ "id": id }),
    }
}

/// A CertificateBundle.
pub fn bundle(caller: &Caller, name: &str, v: &CertVersion, meta: Option<&CertMeta>) -> Value {
    let base = caller.base();
    let mut body = json!({
        "id": format!("{base}/certificates/{name}/{}", v.version),
        "kid": format!("{base}/keys/{name}/{}", v.version),
        "sid": format!("{base}/secrets/{name}/{}", v.version),
        "x5t": crypto::x5t(&v.cer),
        "cer": crypto::b64(&v.cer),
        "attributes": attributes_json(&v.attributes),
    });
    put_tags(&mut body, &v.tags);
    body["policy"] = policy_json(caller, name, meta);
    if meta.is_some_and(|m| m.pending.is_some()) {
        body["pending"] = json!({ "id": format!("{base}/certificates/{name}/pending") });
    }
    body
}

fn item(caller: &Caller, name: &str, v: &CertVersion, with_version: bool) -> Value {
    let id = if with_version {
        format!("{}/certificates/{name}/{}", caller.base(), v.version)
    } else {
        format!("{}/certificates/{name}", caller.base())
    };
    let mut body = json!({
        "id": id,
        "x5t": crypto::x5t(&v.cer),
        "attributes": attributes_json(&v.attributes),
        "subject": v.subject,
    });
    put_tags(&mut body, &v.tags);
    body
}

fn meta_of<'a>(v: &'a crate::store::Vault, name: &str) -> Option<&'a CertMeta> {
    v.cert_meta.get(&name.to_ascii_lowercase())
}

fn fetch(
    ctx: &Ctx,
    caller: &Caller,
    name: &str,
    version: Option<&str>,
) -> Result<Response, ApiError> {
    let what = version.map_or_else(|| name.to_owned(), |v| format!("{name}/{v}"));
    let body = ctx
        .state
        .store
        .read(&caller.vault, |v| {
            let entry = v.certificates.get(name)?;
            let found = entry.find(version)?;
            Some((
                check_usable(KIND, &found.attributes, "get"),
                bundle(caller, &entry.name, found, meta_of(v, name)),
            ))
        })
        .map_err(|e| ApiError::from_store(e, KIND, &what))?;
    let (usable, body) = body.ok_or_else(|| ApiError::NotFound {
        kind: KIND,
        what: what.clone(),
    })?;
    usable?;
    Ok(ok_json(body))
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
struct ImportBody {
    value: Option<String>,
    pwd: Option<String>,
    policy: Option<Value>,
    #[serde(default)]
    attributes: Option<WriteAttributes>,
    #[serde(default)]
    tags: Option<Tags>,
}

/// Reads an import `value`: PEM text, base64 of PEM, or base64 of a PFX.
fn read_import(value: &str, pwd: &str) -> Result<(CertMaterial, bool), ApiError> {
    let bad = |e: crypto::CryptoError| ApiError::BadParameter(e.to_string());
    if value.contains("-----BEGIN") {
        return Ok((CertMaterial::from_pem(value).map_err(bad)?, true));
    }
    let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = STANDARD.decode(compact.as_bytes()).map_err(|_| {
        ApiError::BadParameter(
            "The certificate value is neither PEM text nor base64-encoded PFX or PEM content."
                .into(),
        )
    })?;
    if let Ok(text) = std::str::from_utf8(&bytes)
        && text.contains("-----BEGIN")
    {
        return Ok((CertMaterial::from_pem(text).map_err(bad)?, true));
    }
    Ok((CertMaterial::from_pfx(&bytes, pwd).map_err(bad)?, false))
}

fn store_err(e: CertStoreError, name: &str) -> ApiError {
    match e {
        CertStoreError::Store(s) => ApiError::from_store(s, KIND, name),
        CertStoreError::Crypto(c) => ApiError::BadParameter(c.to_string()),
    }
}

async fn import(ctx: Ctx, Path(name): Path<String>, body: Bytes) -> Response {
    ctx.run_named(KIND, "import", &name, |c| {
        let body: ImportBody = parse_body(&body, "CertificateImportParameters object")?;
        let Some(value) = body.value else {
            return Err(ApiError::BadParameter(
                "Property 'value' is required.".into(),
            ));
        };
        let (material, was_pem) = read_import(&value, body.pwd.as_deref().unwrap_or(""))?;
        let asked = body
            .policy
            .as_ref()
            .and_then(|p| p.pointer("/secret_props/contentType"))
            .is_some();
        let content_type = match (&body.policy, asked) {
            (Some(p), true) => certpolicy::content_type_of(p).map_err(ApiError::BadParameter)?,
            // Without a content type in the policy, the secret keeps the format it came in.
            _ if was_pem => crypto::CONTENT_TYPE_PEM.to_owned(),
            _ => crypto::CONTENT_TYPE_PKCS12.to_owned(),
        };
        let now = unix_now();
        let policy = certpolicy::describe(&material, &content_type, "Unknown", now)
            .map_err(|e| ApiError::BadParameter(e.to_string()))?;
        let attrs = body.attributes.unwrap_or_default();
        let out = ctx.state.store.write(&c.vault, |v| {
            let (stored, cert) = v.add_certificate(
                &name,
                NewCertVersion {
                    material: &material,
                    policy,
                    enabled: attrs.enabled,
                    tags: body.tags.clone(),
                    pending: None,
                    version: None,
                },
                now,
            )?;
            Ok::<_, CertStoreError>(bundle(c, &stored, &cert, meta_of(v, &name)))
        });
        out.map(ok_json).map_err(|e| store_err(e, &name))
    })
}

#[derive(Deserialize)]
struct CreateBody {
    policy: Option<Value>,
    #[serde(default)]
    attributes: Option<WriteAttributes>,
    #[serde(default)]
    tags: Option<Tags>,
}

fn operation(caller: &Caller, name: &str, op: &PendingOp, completed: bool) -> Value {
    let base = caller.base();
    let mut body = json!({
        "id": format!("{base}/certificates/{name}/pending"),
        "issuer": { "name": op.issuer },
        "csr": op.csr,
        "cancellation_requested": false,
    });
    if completed {
        body["status"] = json!("completed");
        body["target"] = json!(format!("{base}/certificates/{name}"));
    } else {
        body["status"] = json!("inProgress");
        body["status_details"] = json!(
            "Pending certificate created. Certificate request is in progress. This may take some time based on the issuer provider. Please check again later."
        );
    }
    body["request_id"] = json!(op.request_id);
    body
}

async fn create(ctx: Ctx, Path(name): Path<String>, body: Bytes) -> Response {
    ctx.run_named(KIND, "create", &name, |c| {
        let body: CreateBody = parse_body(&body, "CertificateCreateParameters object")?;
        let Some(policy) = body.policy else {
            return Err(ApiError::BadParameter(
                "Property 'policy' is required.".into(),
            ));
        };
        let req = certpolicy::parse_create(&policy).map_err(ApiError::BadParameter)?;
        let material =
            crypto::self_signed(&req.cert).map_err(|e| ApiError::BadParameter(e.to_string()))?;
        let csr = crypto::csr(&req.cert, &material.key_pkcs8).map_err(|_| ApiError::Internal)?;
        let now = unix_now();
        let stored_policy = certpolicy::describe(&material, &req.content_type, &req.issuer, now)
            .map_err(|_| ApiError::Internal)?;
        let op = PendingOp {
            request_id: new_version_id(),
            csr: crypto::b64(&csr),
            issuer: req.issuer.clone(),
            polls: 0,
        };
        let attrs = body.attributes.unwrap_or_default();
        let stored = ctx
            .state
            .store
            .write(&c.vault, |v| {
                v.add_certificate(
                    &name,
                    NewCertVersion {
                        material: &material,
                        policy: stored_policy,
                        enabled: attrs.enabled,
                        tags: body.tags.clone(),
                        pending: Some(op.clone()),
                        version: None,
                    },
                    now,
                )
            })
            .map_err(|e| store_err(e, &name))?;
        let mut resp = (
            StatusCode::ACCEPTED,
            axum::Json(operation(c, &stored.0, &op, false)),
        )
            .into_response();
        let location = format!(
            "{}/certificates/{}/pending?api-version={}&request_id={}",
            c.base(),
            stored.0,
            c.api_version,
            op.request_id
        );
        if let Ok(l) = HeaderValue::from_str(&location) {
            resp.headers_mut().insert(header::LOCATION, l);
        }
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(CREATE_RETRY_AFTER),
        );
        Ok(with_kv_headers(resp))
    })
}

async fn pending(ctx: Ctx, Path(name): Path<String>) -> Response {
    ctx.run_named(KIND, "get", &name, |c| {
        let not_found = || ApiError::PendingNotFound { name: name.clone() };
        let (stored, op) = ctx.state.store.write(&c.vault, |v| {
            let stored = v
                .certificates
                .get(&name)
                .map(|e| e.name.clone())
                .ok_or_else(not_found)?;
            let meta = v
                .cert_meta
                .get_mut(&name.to_ascii_lowercase())
                .ok_or_else(not_found)?;
            let op = meta.pending.as_mut().ok_or_else(not_found)?;
            op.polls = op.polls.saturating_add(1);
            Ok::<_, ApiError>((stored, op.clone()))
        })?;
        Ok(ok_json(operation(c, &stored, &op, true)))
    })
}

async fn policy(ctx: Ctx, Path(name): Path<String>) -> Response {
    ctx.run_named(KIND, "get", &name, |c| {
        ctx.state
            .store
            .read(&c.vault, |v| {
                v.certificates
                    .get(&name)
                    .map(|e| policy_json(c, &e.name, meta_of(v, &name)))
            })
            .map_err(|e| ApiError::from_store(e, KIND, &name))?
            .map(ok_json)
            .ok_or_else(|| ApiError::NotFound {
                kind: KIND,
                what: name.clone(),
            })
    })
}

#[derive(Deserialize)]
struct PatchBody {
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
    let body: PatchBody = parse_body(body, "CertificateUpdateParameters object")?;
    let attrs = body.attributes.unwrap_or_default();
    let change = AttributeUpdate {
        enabled: attrs.enabled,
        nbf: attrs.nbf,
        exp: attrs.exp,
        tags: body.tags,
        content_type: None,
        key_ops: None,
    };
    // The managed key and secret follow the certificate's attributes and tags.
    let shared = change.clone();
    let what = version.map_or_else(|| name.to_owned(), |v| format!("{name}/{v}"));
    let now = unix_now();
    ctx.state
        .store
        .write(&c.vault, |vault| {
            let (stored, cert) = vault.certificates.update(name, version, &change, now)?;
            let _ = vault.keys.update(name, Some(&cert.version), &shared, now);
            let _ = vault
                .secrets
                .update(name, Some(&cert.version), &shared, now);
            Ok(bundle(c, &stored, &cert, meta_of(vault, name)))
        })
        .map(ok_json)
        .map_err(|e| ApiError::from_store(e, KIND, &what))
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
                v.certificates
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
                v.certificates.get(&name).map(|e| {
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

fn deleted_bundle(
    c: &Caller,
    d: &crate::store::Deleted<CertVersion>,
    meta: Option<&CertMeta>,
) -> Value {
    let base = d
        .entry
        .latest()
        .map(|l| bundle(c, &d.entry.name, l, meta))
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
        ctx.state
            .store
            .write(&c.vault, |v| {
                let d = v.delete_certificate(&name, unix_now())?;
                Ok(deleted_bundle(c, &d, meta_of(v, &name)))
            })
            .map(ok_json)
            .map_err(|e| ApiError::from_store(e, KIND, &name))
    })
}

async fn get_deleted(ctx: Ctx, Path(name): Path<String>) -> Response {
    ctx.run_named(KIND, "get", &name, |c| {
        ctx.state
            .store
            .read(&c.vault, |v| {
                v.certificates
                    .get_deleted(&name)
                    .map(|d| deleted_bundle(c, d, meta_of(v, &name)))
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
                v.certificates
                    .deleted
                    .values()
                    .filter_map(|d| {
                        let latest = d.entry.latest()?;
                        let b = item(c, &d.entry.name, latest, false);
                        Some(deleted_json(
                            b,
                            c,
                            KIND,
                            &d.entry.name,
                            d.deleted_date,
                            d.scheduled_purge_date,
                        ))
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
            .write(&c.vault, |v| v.purge_certificate(&name))
            .map_err(|_| ApiError::DeletedNotFound {
                kind: KIND,
                name: name.clone(),
            })?;
        Ok(with_kv_headers(StatusCode::NO_CONTENT.into_response()))
    })
}

async fn recover(ctx: Ctx, Path(name): Path<String>) -> Response {
    ctx.run_named(KIND, "recover", &name, |c| {
        ctx.state
            .store
            .write(&c.vault, |v| {
                let entry = v.recover_certificate(&name)?;
                let latest = entry.latest().ok_or(crate::store::StoreError::NotFound)?;
                Ok(bundle(c, &entry.name, latest, meta_of(v, &name)))
            })
            .map(ok_json)
            .map_err(|_: crate::store::StoreError| ApiError::DeletedNotFound {
                kind: KIND,
                name: name.clone(),
            })
    })
}
