//! Key routes: create (RSA 2048/3072/4096, EC P-256/P-384/P-521) and import a JWK with its
//! private members; the rest (get, list, versions, update, delete and the deleted-key routes)
//! are the shared ones of [`crate::objects`], given keys' bundles and what their PATCH may
//! change (the permitted operations). Only public members ever leave the vault.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::response::Response;
use axum::routing::{post, put};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::access::ObjectKind;
use crate::crypto::{self, KeySpec, PublicJwk, RSA_DEFAULT_OPS};
use crate::objects::{self, Kind};
use crate::reply::ok_json;
use crate::state::AppState;
use crate::store::{
    AttributeUpdate, Attributes, KeyVersion, Table, Tags, Vault, new_version_id, unix_now,
};
use crate::vault::{ApiError, Caller, Ctx, WriteAttributes, attributes_json, parse_body, put_tags};

/// Keys, for the shared routes.
pub struct Keys;

const KIND: ObjectKind = ObjectKind::Key;

/// Operations a key may be given besides an RSA key's defaults (which hold every EC one).
const OTHER_OPS: &[&str] = &["import", "export"];

/// The key routes.
pub fn routes() -> Router<Arc<AppState>> {
    objects::routes::<Keys>()
        .route("/keys/{name}", put(import))
        .route("/keys/{name}/create", post(create))
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

/// The PATCH body of a key.
#[derive(Deserialize)]
pub struct PatchBody {
    key_ops: Option<Vec<String>>,
    #[serde(default)]
    attributes: Option<WriteAttributes>,
    #[serde(default)]
    tags: Option<Tags>,
}

impl Kind for Keys {
    type Version = KeyVersion;
    type Patch = PatchBody;
    const KIND: ObjectKind = KIND;
    const UPDATE_PERMISSION: &'static str = "update";
    const PATCH_BODY: &'static str = "KeyUpdateParameters object";
    const DELETED_ITEMS_VERSIONED: bool = true;

    fn table(vault: &Vault) -> &Table<KeyVersion> {
        &vault.keys
    }

    fn table_mut(vault: &mut Vault) -> &mut Table<KeyVersion> {
        &mut vault.keys
    }

    fn bundle(caller: &Caller, _vault: &Vault, name: &str, v: &KeyVersion) -> Value {
        bundle(caller, name, v)
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

    fn change(patch: PatchBody) -> Result<AttributeUpdate, ApiError> {
        if let Some(ops) = &patch.key_ops {
            check_ops(ops)?;
        }
        Ok(AttributeUpdate {
            key_ops: patch.key_ops,
            ..WriteAttributes::update(patch.attributes, patch.tags)
        })
    }
}

fn check_ops(ops: &[String]) -> Result<(), ApiError> {
    let known = |o: &str| RSA_DEFAULT_OPS.contains(&o) || OTHER_OPS.contains(&o);
    match ops.iter().find(|o| !known(o)) {
        Some(bad) => Err(ApiError::BadParameter(format!(
            "Invalid key operation '{bad}'."
        ))),
        None => Ok(()),
    }
}

/// A key version to store, created or imported.
struct NewKey {
    pkcs8: Vec<u8>,
    jwk: PublicJwk,
    /// The operations asked for; the type's defaults when absent.
    key_ops: Option<Vec<String>>,
    attributes: Option<WriteAttributes>,
    tags: Option<Tags>,
}

/// Stores a new version (checking its operations) and answers its bundle.
fn add_version(ctx: &Ctx, c: &Caller, name: &str, new: NewKey) -> Result<Response, ApiError> {
    let key_ops = match new.key_ops {
        Some(ops) => {
            check_ops(&ops)?;
            ops
        }
        None => new.jwk.default_ops(),
    };
    let attrs = new.attributes.unwrap_or_default();
    let version = KeyVersion {
        version: new_version_id(),
        pkcs8: new.pkcs8,
        jwk: new.jwk,
        key_ops,
        attributes: Attributes::new(attrs.enabled, attrs.nbf, attrs.exp, unix_now()),
        tags: new.tags,
        managed: false,
        exportable: false,
    };
    let stored = ctx
        .state
        .store
        .write(&c.vault, |v| v.keys.add(name, version.clone()))
        .map_err(|e| ApiError::from_store(e, KIND, name))?;
    Ok(ok_json(bundle(c, &stored, &version)))
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
        let new = NewKey {
            pkcs8,
            jwk,
            key_ops: body.key_ops,
            attributes: body.attributes,
            tags: body.tags,
        };
        add_version(&ctx, c, &name, new)
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
        let new = NewKey {
            pkcs8,
            jwk: public,
            key_ops: jwk.key_ops,
            attributes: body.attributes,
            tags: body.tags,
        };
        add_version(&ctx, c, &name, new)
    })
}
