//! Secret routes: set (`PUT`), and get with `outContentType` (a certificate's PFX secret as PEM);
//! the rest (get, list, versions, update, delete and the deleted-secret routes) are the shared
//! ones of [`crate::objects`], given secrets' bundles and what their PATCH may change (the
//! content type, within the service's limits in [`crate::limits`]).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::response::Response;
use axum::routing::put;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::access::ObjectKind;
use crate::crypto::{CONTENT_TYPE_PEM, CONTENT_TYPE_PKCS12, CertMaterial};
use crate::limits::check_limits;
use crate::objects::{self, Kind};
use crate::reply::ok_json;
use crate::state::AppState;
use crate::store::{AttributeUpdate, NewSecret, SecretVersion, Table, Tags, Vault};
use crate::vault::{ApiError, Caller, Ctx, WriteAttributes, attributes_json, parse_body, put_tags};

/// Secrets, for the shared routes.
pub struct Secrets;

const KIND: ObjectKind = ObjectKind::Secret;

/// The secret routes.
pub fn routes() -> Router<Arc<AppState>> {
    objects::routes::<Secrets>().route("/secrets/{name}", put(set))
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

/// The PATCH body of a secret.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatchBody {
    content_type: Option<String>,
    #[serde(default)]
    tags: Option<Tags>,
    #[serde(default)]
    attributes: Option<WriteAttributes>,
}

impl Kind for Secrets {
    type Version = SecretVersion;
    type Patch = PatchBody;
    const KIND: ObjectKind = KIND;
    const UPDATE_PERMISSION: &'static str = "set";
    const PATCH_BODY: &'static str = "SecretUpdateParameters object";
    const DELETED_ITEMS_VERSIONED: bool = true;

    fn table(vault: &Vault) -> &Table<SecretVersion> {
        &vault.secrets
    }

    fn table_mut(vault: &mut Vault) -> &mut Table<SecretVersion> {
        &mut vault.secrets
    }

    fn bundle(caller: &Caller, _vault: &Vault, name: &str, v: &SecretVersion) -> Value {
        bundle(caller, name, v, false)
    }

    /// The value included, converted when `outContentType` asks for it.
    fn served(
        ctx: &Ctx,
        caller: &Caller,
        _vault: &Vault,
        name: &str,
        v: &SecretVersion,
    ) -> Result<Value, ApiError> {
        match ctx.query.get("outContentType") {
            Some(out) => Ok(bundle(caller, name, &convert(v, out)?, true)),
            None => Ok(bundle(caller, name, v, true)),
        }
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

    fn change(patch: PatchBody) -> Result<AttributeUpdate, ApiError> {
        check_limits(None, patch.content_type.as_deref())?;
        Ok(AttributeUpdate {
            content_type: patch.content_type,
            ..WriteAttributes::update(patch.attributes, patch.tags)
        })
    }
}

/// `outContentType` (api-version 2025-07-01): PFX-backed certificate secrets convert to PEM.
fn convert(v: &SecretVersion, out: &str) -> Result<SecretVersion, ApiError> {
    let pfx_backed = v.managed && v.content_type.as_deref() == Some(CONTENT_TYPE_PKCS12);
    if out != CONTENT_TYPE_PEM || !pfx_backed {
        let from = if pfx_backed { "PFX" } else { "Unsupported" };
        let to = if out == CONTENT_TYPE_PEM {
            "PEM"
        } else {
            "Unsupported"
        };
        return Err(ApiError::BadParameter(format!(
            "The '{from}' to '{to}' transformation is not supported. Only PFX to PEM transformation is supported."
        )));
    }
    let pfx = base64::engine::general_purpose::STANDARD
        .decode(&v.value)
        .map_err(|_| ApiError::Internal)?;
    let material = CertMaterial::from_pfx(&pfx, "").map_err(|_| ApiError::Internal)?;
    let mut converted = v.clone();
    converted.value = material.to_pem();
    converted.content_type = Some(CONTENT_TYPE_PEM.into());
    Ok(converted)
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
