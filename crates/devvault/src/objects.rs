//! The data-plane routes every object kind shares, written once over the store's generic
//! [`Table`]s: get (latest, with or without the trailing slash, or a version), list objects and
//! versions (paged), update attributes and tags (PATCH), delete, and the deleted-object routes
//! (get, list, purge, recover).
//!
//! A kind implements [`Kind`] with only what is its own: its table, its bundles and list items,
//! what its PATCH may change, the permission a PATCH needs, and, for certificates, how the
//! certificate's key and secret follow it. [`routes`] mounts the shared routes for a kind; each
//! kind's module adds its own (set, create, import, policy, pending) to the same router.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::access::ObjectKind;
use crate::reply::{ok_json, with_kv_headers};
use crate::state::AppState;
use crate::store::{AttributeUpdate, Deleted, Entry, StoreError, Table, Vault, Version, unix_now};
use crate::vault::{ApiError, Caller, Ctx, check_usable, deleted_json, parse_body};

/// What one object kind brings to the shared routes.
pub trait Kind: 'static {
    /// A version as the store keeps it.
    type Version: Version + Send + Sync;
    /// The body of a PATCH.
    type Patch: DeserializeOwned;
    /// The kind: permissions, error codes, ids.
    const KIND: ObjectKind;
    /// The access-policy permission a PATCH needs (`set` for secrets, `update` otherwise).
    const UPDATE_PERMISSION: &'static str;
    /// The PATCH body as error messages name it (`SecretUpdateParameters object`).
    const PATCH_BODY: &'static str;
    /// Whether the deleted list gives versioned ids (secrets and keys) or bare ones
    /// (certificates), as the service does.
    const DELETED_ITEMS_VERSIONED: bool;

    /// The kind's table in a vault.
    fn table(vault: &Vault) -> &Table<Self::Version>;
    /// The kind's table in a vault, to change.
    fn table_mut(vault: &mut Vault) -> &mut Table<Self::Version>;

    /// The bundle answered by PATCH, DELETE, recover and the deleted-object get (a secret's
    /// without its value).
    fn bundle(caller: &Caller, vault: &Vault, name: &str, v: &Self::Version) -> Value;
    /// The bundle answered by GET; the same as [`Kind::bundle`] unless the kind says otherwise.
    fn served(
        _ctx: &Ctx,
        caller: &Caller,
        vault: &Vault,
        name: &str,
        v: &Self::Version,
    ) -> Result<Value, ApiError> {
        Ok(Self::bundle(caller, vault, name, v))
    }
    /// A list item; `with_version` gives the versioned id (version lists).
    fn item(caller: &Caller, name: &str, v: &Self::Version, with_version: bool) -> Value;

    /// Checks a PATCH body and turns it into a change.
    fn change(patch: Self::Patch) -> Result<AttributeUpdate, ApiError>;
    /// Carries a change made to version `version` of `name` to the objects that follow it (a
    /// certificate's key and secret); nothing follows other kinds.
    fn carry_update(
        _vault: &mut Vault,
        _name: &str,
        _version: &str,
        _change: &AttributeUpdate,
        _now: i64,
    ) {
    }
    /// Soft-deletes an object; a certificate's key or secret cannot be deleted on its own.
    fn delete(vault: &mut Vault, name: &str, now: i64) -> Result<Deleted<Self::Version>, ApiError> {
        if Self::table(vault)
            .get(name)
            .and_then(|e| e.latest())
            .is_some_and(Version::managed)
        {
            return Err(ApiError::BadParameter(format!(
                "{} {name} is managed by a certificate; delete the certificate instead.",
                Self::KIND.title()
            )));
        }
        Self::table_mut(vault)
            .delete(name, now)
            .map_err(|e| ApiError::from_store(e, Self::KIND, name))
    }
    /// Removes a deleted object for good.
    fn purge(vault: &mut Vault, name: &str) -> Result<(), StoreError> {
        Self::table_mut(vault).purge(name)
    }
    /// Brings a deleted object back.
    fn recover(vault: &mut Vault, name: &str) -> Result<Entry<Self::Version>, StoreError> {
        Self::table_mut(vault).recover(name)
    }
}

/// The shared routes of kind `K`, under its path segments (`/secrets…`, `/deletedsecrets…`).
pub fn routes<K: Kind>() -> Router<Arc<AppState>> {
    let live = K::KIND.segment();
    let deleted = K::KIND.deleted_segment();
    Router::new()
        .route(&format!("/{live}"), get(list::<K>))
        .route(&format!("/{live}/"), get(list::<K>))
        .route(
            &format!("/{live}/{{name}}"),
            get(get_latest::<K>).delete(delete::<K>),
        )
        .route(
            &format!("/{live}/{{name}}/"),
            get(get_latest::<K>).patch(patch_latest::<K>),
        )
        .route(
            &format!("/{live}/{{name}}/versions"),
            get(list_versions::<K>),
        )
        .route(
            &format!("/{live}/{{name}}/{{version}}"),
            get(get_version::<K>).patch(patch::<K>),
        )
        .route(&format!("/{deleted}"), get(list_deleted::<K>))
        .route(
            &format!("/{deleted}/{{name}}"),
            get(get_deleted::<K>).delete(purge::<K>),
        )
        .route(&format!("/{deleted}/{{name}}/recover"), post(recover::<K>))
}

/// `name`, or `name/version`, as not-found errors name what was asked for.
fn what(name: &str, version: Option<&str>) -> String {
    version.map_or_else(|| name.to_owned(), |v| format!("{name}/{v}"))
}

/// The version segment of a route; an empty one means the newest.
fn version_segment(version: &str) -> Option<&str> {
    Some(version).filter(|v| !v.is_empty())
}

fn fetch<K: Kind>(
    ctx: &Ctx,
    caller: &Caller,
    name: &str,
    version: Option<&str>,
) -> Result<Response, ApiError> {
    let what = what(name, version);
    ctx.state
        .store
        .read(&caller.vault, |vault| {
            let Some((entry, v)) = K::table(vault)
                .get(name)
                .and_then(|e| e.find(version).map(|v| (e, v)))
            else {
                return Err(ApiError::NotFound {
                    kind: K::KIND,
                    what: what.clone(),
                });
            };
            check_usable(K::KIND, v.attributes(), "get")?;
            K::served(ctx, caller, vault, &entry.name, v)
        })
        .map_err(|e| ApiError::from_store(e, K::KIND, &what))?
        .map(ok_json)
}

async fn get_latest<K: Kind>(ctx: Ctx, Path(name): Path<String>) -> Response {
    ctx.run_named(K::KIND, "get", &name, |c| fetch::<K>(&ctx, c, &name, None))
}

async fn get_version<K: Kind>(ctx: Ctx, Path((name, version)): Path<(String, String)>) -> Response {
    ctx.run_named(K::KIND, "get", &name, |c| {
        fetch::<K>(&ctx, c, &name, version_segment(&version))
    })
}

fn do_patch<K: Kind>(
    ctx: &Ctx,
    c: &Caller,
    name: &str,
    version: Option<&str>,
    body: &[u8],
) -> Result<Response, ApiError> {
    let change = K::change(parse_body(body, K::PATCH_BODY)?)?;
    let what = what(name, version);
    let now = unix_now();
    ctx.state
        .store
        .write(&c.vault, |vault| {
            let (stored, v) = K::table_mut(vault).update(name, version, &change, now)?;
            K::carry_update(vault, name, v.id(), &change, now);
            Ok(K::bundle(c, vault, &stored, &v))
        })
        .map(ok_json)
        .map_err(|e| ApiError::from_store(e, K::KIND, &what))
}

async fn patch<K: Kind>(
    ctx: Ctx,
    Path((name, version)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    ctx.run_named(K::KIND, K::UPDATE_PERMISSION, &name, |c| {
        do_patch::<K>(&ctx, c, &name, version_segment(&version), &body)
    })
}

async fn patch_latest<K: Kind>(ctx: Ctx, Path(name): Path<String>, body: Bytes) -> Response {
    ctx.run_named(K::KIND, K::UPDATE_PERMISSION, &name, |c| {
        do_patch::<K>(&ctx, c, &name, None, &body)
    })
}

/// Answers a page of the items `items` makes of the kind's table in the caller's vault.
fn list_of<K: Kind>(
    ctx: &Ctx,
    items: impl FnOnce(&Caller, &Table<K::Version>) -> Vec<Value>,
) -> Response {
    ctx.run(K::KIND, "list", |c| {
        let items = ctx
            .state
            .store
            .read(&c.vault, |v| items(c, K::table(v)))
            .map_err(|e| ApiError::from_store(e, K::KIND, ""))?;
        ctx.list_page(c, items)
    })
}

async fn list<K: Kind>(ctx: Ctx) -> Response {
    list_of::<K>(&ctx, |c, table| {
        table
            .live
            .values()
            .filter_map(|e| e.latest().map(|l| K::item(c, &e.name, l, false)))
            .collect()
    })
}

async fn list_versions<K: Kind>(ctx: Ctx, Path(name): Path<String>) -> Response {
    ctx.run_named(K::KIND, "list", &name, |c| {
        let items = ctx
            .state
            .store
            .read(&c.vault, |v| {
                K::table(v).get(&name).map(|e| {
                    e.listed()
                        .into_iter()
                        .map(|x| K::item(c, &e.name, x, true))
                        .collect::<Vec<_>>()
                })
            })
            .map_err(|e| ApiError::from_store(e, K::KIND, &name))?
            .ok_or_else(|| ApiError::NotFound {
                kind: K::KIND,
                what: name.clone(),
            })?;
        ctx.list_page(c, items)
    })
}

/// A deleted object's bundle: its newest version's, with the deleted-object members.
fn deleted_bundle<K: Kind>(c: &Caller, vault: &Vault, d: &Deleted<K::Version>) -> Value {
    let base = d
        .entry
        .latest()
        .map(|l| K::bundle(c, vault, &d.entry.name, l))
        .unwrap_or_else(|| json!({}));
    deleted_json(base, c, K::KIND, d)
}

/// The error every deleted-object route answers when there is nothing to act on.
fn deleted_not_found<K: Kind>(name: &str) -> ApiError {
    ApiError::DeletedNotFound {
        kind: K::KIND,
        name: name.to_owned(),
    }
}

async fn delete<K: Kind>(ctx: Ctx, Path(name): Path<String>) -> Response {
    ctx.run_named(K::KIND, "delete", &name, |c| {
        ctx.state
            .store
            .write(&c.vault, |v| {
                let deleted = K::delete(v, &name, unix_now())?;
                Ok::<_, ApiError>(deleted_bundle::<K>(c, v, &deleted))
            })
            .map(ok_json)
    })
}

async fn get_deleted<K: Kind>(ctx: Ctx, Path(name): Path<String>) -> Response {
    ctx.run_named(K::KIND, "get", &name, |c| {
        ctx.state
            .store
            .read(&c.vault, |v| {
                K::table(v)
                    .get_deleted(&name)
                    .map(|d| deleted_bundle::<K>(c, v, d))
            })
            .map_err(|e| ApiError::from_store(e, K::KIND, &name))?
            .map(ok_json)
            .ok_or_else(|| deleted_not_found::<K>(&name))
    })
}

async fn list_deleted<K: Kind>(ctx: Ctx) -> Response {
    list_of::<K>(&ctx, |c, table| {
        table
            .deleted
            .values()
            .filter_map(|d| {
                let latest = d.entry.latest()?;
                let item = K::item(c, &d.entry.name, latest, K::DELETED_ITEMS_VERSIONED);
                Some(deleted_json(item, c, K::KIND, d))
            })
            .collect()
    })
}

async fn purge<K: Kind>(ctx: Ctx, Path(name): Path<String>) -> Response {
    ctx.run_named(K::KIND, "purge", &name, |c| {
        ctx.state
            .store
            .write(&c.vault, |v| K::purge(v, &name))
            .map_err(|_| deleted_not_found::<K>(&name))?;
        Ok(with_kv_headers(StatusCode::NO_CONTENT.into_response()))
    })
}

async fn recover<K: Kind>(ctx: Ctx, Path(name): Path<String>) -> Response {
    ctx.run_named(K::KIND, "recover", &name, |c| {
        ctx.state
            .store
            .write(&c.vault, |v| {
                let entry = K::recover(v, &name)?;
                let latest = entry.latest().ok_or(StoreError::NotFound)?;
                Ok(K::bundle(c, v, &entry.name, latest))
            })
            .map(ok_json)
            .map_err(|_: StoreError| deleted_not_found::<K>(&name))
    })
}
