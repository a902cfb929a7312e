//! Certificate routes: import (PFX base64 with or without a password, PEM raw or base64, with a
//! chain), create a self-signed certificate (202 plus a pending operation that the first poll
//! completes), the policy and the pending operation. The rest (get, list, versions, update,
//! delete and the deleted-certificate routes) are the shared ones of [`crate::objects`], given
//! certificates' bundles and the one rule of their own: the managed key and secret follow the
//! certificate (attributes and tags, delete, purge, recover).

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
use crate::objects::{self, Kind};
use crate::reply::{ok_json, with_kv_headers};
use crate::state::AppState;
use crate::store::{
    AttributeUpdate, CertMeta, CertStoreError, CertVersion, Deleted, Entry, NewCertVersion,
    PendingOp, StoreError, Table, Tags, Vault, new_version_id, unix_now,
};
use crate::vault::{ApiError, Caller, Ctx, WriteAttributes, attributes_json, parse_body, put_tags};

/// Certificates, for the shared routes.
pub struct Certificates;

const KIND: ObjectKind = ObjectKind::Certificate;

/// Seconds a client is told to wait before polling a create operation, as the service says.
const CREATE_RETRY_AFTER: &str = "10";

/// The certificate routes.
pub fn routes() -> Router<Arc<AppState>> {
    objects::routes::<Certificates>()
        .route("/certificates/{name}/import", post(import))
        .route("/certificates/{name}/create", post(create))
        .route("/certificates/{name}/pending", get(pending))
        .route("/certificates/{name}/policy", get(policy))
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

fn meta_of<'a>(v: &'a crate::store::Vault, name: &str) -> Option<&'a CertMeta> {
    v.cert_meta.get(&name.to_ascii_lowercase())
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

/// The PATCH body of a certificate: attributes and tags only.
#[derive(Deserialize)]
pub struct PatchBody {
    #[serde(default)]
    attributes: Option<WriteAttributes>,
    #[serde(default)]
    tags: Option<Tags>,
}

impl Kind for Certificates {
    type Version = CertVersion;
    type Patch = PatchBody;
    const KIND: ObjectKind = KIND;
    const UPDATE_PERMISSION: &'static str = "update";
    const PATCH_BODY: &'static str = "CertificateUpdateParameters object";
    const DELETED_ITEMS_VERSIONED: bool = false;

    fn table(vault: &Vault) -> &Table<CertVersion> {
        &vault.certificates
    }

    fn table_mut(vault: &mut Vault) -> &mut Table<CertVersion> {
        &mut vault.certificates
    }

    fn bundle(caller: &Caller, vault: &Vault, name: &str, v: &CertVersion) -> Value {
        bundle(caller, name, v, meta_of(vault, name))
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

    fn change(patch: PatchBody) -> Result<AttributeUpdate, ApiError> {
        Ok(WriteAttributes::update(patch.attributes, patch.tags))
    }

    /// The managed key and secret follow the certificate's attributes and tags.
    fn carry_update(
        vault: &mut Vault,
        name: &str,
        version: &str,
        change: &AttributeUpdate,
        now: i64,
    ) {
        let _ = vault.keys.update(name, Some(version), change, now);
        let _ = vault.secrets.update(name, Some(version), change, now);
    }

    fn delete(vault: &mut Vault, name: &str, now: i64) -> Result<Deleted<CertVersion>, ApiError> {
        vault
            .delete_certificate(name, now)
            .map_err(|e| ApiError::from_store(e, KIND, name))
    }

    fn purge(vault: &mut Vault, name: &str) -> Result<(), StoreError> {
        vault.purge_certificate(name)
    }

    fn recover(vault: &mut Vault, name: &str) -> Result<Entry<CertVersion>, StoreError> {
        vault.recover_certificate(name)
    }
}
