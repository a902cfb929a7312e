//! The object store behind the fake: objects by (resource, namespace, name), one global
//! `resourceVersion` counter, a bounded history of changes for watches, and the API server's
//! write rules — create (uid, `resourceVersion`, `creationTimestamp`, `generation`,
//! `generateName`, 409 AlreadyExists), update with optimistic concurrency (409 Conflict),
//! patch, the status subresource, delete with preconditions, finalizers and propagation, and
//! owner-reference garbage collection.
//!
//! Everything here is synchronous and runs under one lock held by the server; every change is
//! recorded in the history and broadcast to watchers before the lock is released, so a watch
//! started from a `resourceVersion` sees each later change exactly once.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use crate::meta;
use crate::patch::{self, PatchKind};
use crate::resources::{Registry, ResId, ResourceDef};
use crate::selector::Selectors;
use crate::status::ApiError;

/// How many changes a lagging watcher may fall behind before its stream is closed (it then
/// re-watches from its last `resourceVersion`, or relists if that is too old — as with a real
/// API server that drops slow watchers).
const WATCH_BUFFER: usize = 1024;

/// Where objects live: resource, namespace (`""` for cluster-scoped), name.
type Key = (ResId, String, String);

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// The object was created.
    Added,
    /// The object was updated.
    Modified,
    /// The object was removed.
    Deleted,
}

impl ChangeKind {
    /// The watch event type.
    pub fn event_type(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One committed change.
#[derive(Debug)]
pub struct Change {
    /// The `resourceVersion` the change produced.
    pub revision: u64,
    /// Resource of the object.
    pub resource: ResId,
    /// Namespace of the object.
    pub namespace: String,
    /// What happened.
    pub kind: ChangeKind,
    /// The object after the change (for deletes: its last state, with the delete's
    /// `resourceVersion`).
    pub object: Arc<Value>,
    /// The object before the change (updates and deletes).
    pub previous: Option<Arc<Value>>,
}

/// When owner-reference garbage collection runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GcMode {
    /// Right after every delete (HTTP or direct), synchronously, before the delete returns.
    #[default]
    Immediate,
    /// Only when [`crate::FakeKube::gc`] is called.
    Manual,
}

/// `propagationPolicy` of a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// Dependents are garbage-collected after the owner is gone (the default).
    #[default]
    Background,
    /// Treated like `Background`: dependents are collected, but the owner does not wait for
    /// them.
    Foreground,
    /// Owner references to the deleted object are removed from its dependents, which stay.
    Orphan,
}

/// Options of a delete (the parts of `DeleteOptions` the fake honours).
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `propagationPolicy`.
    pub propagation: Propagation,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
}

/// The result of a delete.
#[derive(Debug, Clone)]
pub enum DeleteOutcome {
    /// The object is gone; its last state.
    Deleted(Value),
    /// The object has finalizers: it now carries `deletionTimestamp` and stays until they are
    /// removed.
    Pending(Value),
}

/// A page of a list.
#[derive(Debug, Clone)]
pub struct ListPage {
    /// Items, in namespace/name order.
    pub items: Vec<Value>,
    /// `metadata.resourceVersion` of the list.
    pub revision: u64,
    /// `metadata.continue`, when more items follow.
    pub continue_token: Option<String>,
    /// `metadata.remainingItemCount`, when more items follow.
    pub remaining: Option<u64>,
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchFrom {
    /// `resourceVersion` unset or `"0"`: synthetic ADDED events for the current state, then
    /// changes.
    Now,
    /// Changes after this `resourceVersion`.
    After(u64),
}

/// A started watch: events owed before live ones, and the live feed.
#[derive(Debug)]
pub struct WatchStart {
    /// Events to send first.
    pub initial: Vec<(ChangeKind, Arc<Value>)>,
    /// Every later change (unfiltered).
    pub receiver: broadcast::Receiver<Arc<Change>>,
    /// The `resourceVersion` the watch is current at.
    pub revision: u64,
}

/// The store.
#[derive(Debug)]
pub struct Store {
    registry: Arc<Registry>,
    objects: BTreeMap<Key, Value>,
    revision: u64,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    /// Highest revision dropped from the history; watches from before it get 410.
    compacted: u64,
    changes: broadcast::Sender<Arc<Change>>,
    gc_mode: GcMode,
}

/// The object as served under `version`: only `apiVersion` differs between versions.
pub fn present(def: &ResourceDef, version: &str, object: &Value) -> Value {
    let mut object = object.clone();
    if let Value::Object(map) = &mut object {
        map.insert("apiVersion".into(), json!(def.api_version(version)));
        map.insert("kind".into(), json!(def.kind));
    }
    object
}

/// How a change looks to a watch of `resource` in `namespace` (all namespaces if `None`) with
/// `selectors`: objects moving into the selection are ADDED, out of it DELETED, as upstream.
pub fn project(
    change: &Change,
    resource: ResId,
    namespace: Option<&str>,
    selectors: &Selectors,
) -> Option<(ChangeKind, Arc<Value>)> {
    if change.resource != resource || namespace.is_some_and(|ns| ns != change.namespace) {
        return None;
    }
    let now = selectors.matches(&change.object);
    let before = change
        .previous
        .as_deref()
        .is_some_and(|p| selectors.matches(p));
    let kind = match change.kind {
        ChangeKind::Added => now.then_some(ChangeKind::Added),
        ChangeKind::Deleted => now.then_some(ChangeKind::Deleted),
        ChangeKind::Modified => match (before, now) {
            (true, true) => Some(ChangeKind::Modified),
            (false, true) => Some(ChangeKind::Added),
            (true, false) => Some(ChangeKind::Deleted),
            (false, false) => None,
        },
    }?;
    Some((kind, change.object.clone()))
}

/// Everything but `metadata` and `status`: what `generation` tracks.
fn spec_part(object: &Map<String, Value>) -> Map<String, Value> {
    object
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The object without `metadata.resourceVersion` and `metadata.managedFields`, for no-op
/// detection.
fn comparable(object: &Map<String, Value>) -> Map<String, Value> {
    let mut copy = object.clone();
    let meta = meta::metadata_mut(&mut copy);
    meta.remove("resourceVersion");
    meta.remove("managedFields");
    copy
}

/// Secrets: `stringData` entries overwrite `data` entries (base64-encoded), and `stringData`
/// is never stored, as upstream.
fn fold_string_data(def: &ResourceDef, object: &mut Map<String, Value>) {
    if !def.group.is_empty() || def.kind != "Secret" {
        return;
    }
    let Some(string_data) = object.remove("stringData") else {
        return;
    };
    let Value::Object(string_data) = string_data else {
        return;
    };
    let data = object.entry("data").or_insert_with(|| json!({}));
    if !data.is_object() {
        *data = json!({});
    }
    if let Value::Object(data) = data {
        for (key, value) in string_data {
            let text = value.as_str().unwrap_or_default();
            data.insert(
                key,
                json!(base64::engine::general_purpose::STANDARD.encode(text)),
            );
        }
    }
}

fn object_map(body: Value, what: &str) -> Result<Map<String, Value>, ApiError> {
    match body {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::bad_request(format!(
            "{what} must be a JSON object"
        ))),
    }
}

fn str_field<'a>(map: &'a Map<String, Value>, field: &str) -> &'a str {
    map.get(field).and_then(Value::as_str).unwrap_or("")
}

fn meta_field<'a>(map: &'a Map<String, Value>, field: &str) -> &'a str {
    map.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Checks `apiVersion` and `kind` in a request body against the resource and version the URL
/// names (missing ones are filled in), then stores the object under the storage version.
fn check_type_meta(
    def: &ResourceDef,
    version: &str,
    object: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    let expected = def.api_version(version);
    let api_version = str_field(object, "apiVersion");
    if !api_version.is_empty() && api_version != expected {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({expected})"
        )));
    }
    let kind = str_field(object, "kind");
    if !kind.is_empty() && kind != def.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            def.kind
        )));
    }
    object.insert(
        "apiVersion".into(),
        json!(def.api_version(def.storage_version())),
    );
    object.insert("kind".into(), json!(def.kind));
    Ok(())
}

/// Checks or fills `metadata.namespace` against the namespace the URL names.
fn check_namespace(
    def: &ResourceDef,
    namespace: &str,
    object: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    let meta = meta::metadata_mut(object);
    let given = meta.get("namespace").and_then(Value::as_str).unwrap_or("");
    if def.namespaced {
        if !given.is_empty() && given != namespace {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        meta.insert("namespace".into(), json!(namespace));
    } else {
        meta.remove("namespace");
    }
    Ok(())
}

impl Store {
    /// An empty store serving `registry`, keeping the last `history_limit` changes for watches.
    pub fn new(registry: Arc<Registry>, history_limit: usize, gc_mode: GcMode) -> Self {
        let (changes, _) = broadcast::channel(WATCH_BUFFER);
        Self {
            registry,
            objects: BTreeMap::new(),
            revision: 0,
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted: 0,
            changes,
            gc_mode,
        }
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The current (latest) `resourceVersion`.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    fn def(&self, res: ResId) -> ResourceDef {
        self.registry.def(res).clone()
    }

    fn key(res: ResId, namespace: &str, name: &str) -> Key {
        (res, namespace.to_owned(), name.to_owned())
    }

    fn record(&mut self, change: Change) {
        let change = Arc::new(change);
        self.history.push_back(change.clone());
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted = dropped.revision;
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.changes.send(change);
    }

    /// Stores `object` at `key` with a new `resourceVersion` and records the change.
    fn commit(
        &mut self,
        key: Key,
        mut object: Map<String, Value>,
        kind: ChangeKind,
        previous: Option<Value>,
    ) -> Value {
        self.revision += 1;
        meta::metadata_mut(&mut object)
            .insert("resourceVersion".into(), json!(self.revision.to_string()));
        let object = Value::Object(object);
        self.objects.insert(key.clone(), object.clone());
        self.record(Change {
            revision: self.revision,
            resource: key.0,
            namespace: key.1,
            kind,
            object: Arc::new(object.clone()),
            previous: previous.map(Arc::new),
        });
        object
    }

    /// Removes the object at `key` (which must exist) and records the deletion.
    fn remove(&mut self, key: &Key) -> Option<Value> {
        let previous = self.objects.remove(key)?;
        self.revision += 1;
        let mut last = previous.clone();
        if let Value::Object(map) = &mut last {
            meta::metadata_mut(map)
                .insert("resourceVersion".into(), json!(self.revision.to_string()));
        }
        self.record(Change {
            revision: self.revision,
            resource: key.0,
            namespace: key.1.clone(),
            kind: ChangeKind::Deleted,
            object: Arc::new(last.clone()),
            previous: Some(Arc::new(previous)),
        });
        Some(last)
    }

    /// GET one object.
    pub fn get(&self, res: ResId, namespace: &str, name: &str) -> Result<Value, ApiError> {
        self.objects
            .get(&Self::key(res, namespace, name))
            .cloned()
            .ok_or_else(|| {
                let def = self.registry.def(res);
                ApiError::not_found(def.group, def.plural, name)
            })
    }

    /// LIST, optionally in one namespace, with selectors and `limit` / `continue` paging.
    /// Later pages are cut from the current state, not from a snapshot at the first page's
    /// `resourceVersion` (a simplification); a token older than the kept history is a 410.
    pub fn list(
        &self,
        res: ResId,
        namespace: Option<&str>,
        selectors: &Selectors,
        limit: Option<usize>,
        continue_token: Option<&str>,
    ) -> Result<ListPage, ApiError> {
        let (revision, after) = match continue_token {
            Some(token) => {
                let (rev, ns, name) = decode_continue(token)?;
                if rev < self.compacted {
                    return Err(ApiError::expired(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                    ));
                }
                (rev, Some((ns, name)))
            }
            None => (self.revision, None),
        };
        let mut matching = self
            .objects
            .iter()
            .filter(|((r, ns, _), _)| *r == res && namespace.is_none_or(|want| want == ns))
            .filter(|((_, ns, name), _)| {
                after
                    .as_ref()
                    .is_none_or(|(a_ns, a_name)| (ns, name) > (a_ns, a_name))
            })
            .filter(|(_, object)| selectors.matches(object))
            .map(|((_, ns, name), object)| (ns, name, object));
        let mut items = Vec::new();
        let mut last = None;
        let limit = limit.filter(|l| *l > 0);
        for (ns, name, object) in matching.by_ref() {
            if limit.is_some_and(|l| items.len() >= l) {
                // Put this one back by counting it below.
                let remaining = 1 + matching.count() as u64;
                let (last_ns, last_name): (&String, &String) = last.unwrap_or((ns, name));
                return Ok(ListPage {
                    items,
                    revision,
                    continue_token: Some(encode_continue(revision, last_ns, last_name)),
                    remaining: Some(remaining),
                });
            }
            items.push(object.clone());
            last = Some((ns, name));
        }
        Ok(ListPage {
            items,
            revision,
            continue_token: None,
            remaining: None,
        })
    }

    /// POST: create an object from a request body.
    pub fn create(
        &mut self,
        res: ResId,
        version: &str,
        namespace: &str,
        body: Value,
    ) -> Result<Value, ApiError> {
        let def = self.def(res);
        let mut object = object_map(body, "the object")?;
        check_type_meta(&def, version, &mut object)?;
        check_namespace(&def, namespace, &mut object)?;
        if !meta_field(&object, "resourceVersion").is_empty() {
            return Err(ApiError::internal(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let name = self.choose_name(&def, res, namespace, &object)?;
        if self.objects.contains_key(&Self::key(res, namespace, &name)) {
            return Err(ApiError::already_exists(def.group, def.plural, &name));
        }
        if def.status_subresource {
            // Status is written through /status only; create starts without one.
            object.remove("status");
        }
        fold_string_data(&def, &mut object);
        let meta = meta::metadata_mut(&mut object);
        meta.insert("name".into(), json!(name));
        meta.insert("uid".into(), json!(meta::new_uid()));
        meta.insert("creationTimestamp".into(), json!(meta::now_rfc3339()));
        meta.insert("generation".into(), json!(1));
        meta.remove("deletionTimestamp");
        meta.remove("deletionGracePeriodSeconds");
        meta.remove("managedFields");
        Ok(self.commit(
            Self::key(res, namespace, &name),
            object,
            ChangeKind::Added,
            None,
        ))
    }

    /// `metadata.name`, or `generateName` plus a fresh suffix; validated.
    fn choose_name(
        &self,
        def: &ResourceDef,
        res: ResId,
        namespace: &str,
        object: &Map<String, Value>,
    ) -> Result<String, ApiError> {
        let name = meta_field(object, "name");
        let generate = meta_field(object, "generateName");
        let name = if name.is_empty() && !generate.is_empty() {
            // Like upstream, a clash with an existing name is simply retried.
            let mut candidate = format!("{generate}{}", meta::name_suffix());
            while self
                .objects
                .contains_key(&Self::key(res, namespace, &candidate))
            {
                candidate = format!("{generate}{}", meta::name_suffix());
            }
            candidate
        } else {
            name.to_owned()
        };
        meta::validate_name(&name)
            .map_err(|cause| ApiError::invalid(def.group, def.kind, &name, cause))?;
        Ok(name)
    }

    /// PUT: replace an object (or only its status, for `/status`).
    pub fn update(
        &mut self,
        res: ResId,
        version: &str,
        namespace: &str,
        name: &str,
        body: Value,
        status_only: bool,
    ) -> Result<Value, ApiError> {
        let def = self.def(res);
        let mut object = object_map(body, "the object")?;
        check_type_meta(&def, version, &mut object)?;
        check_namespace(&def, namespace, &mut object)?;
        let body_name = meta_field(&object, "name");
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let key = Self::key(res, namespace, name);
        let existing = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(def.group, def.plural, name))?;
        let Value::Object(existing_map) = &existing else {
            return Err(ApiError::internal("stored object is not an object"));
        };
        let given_rv = meta_field(&object, "resourceVersion");
        if !given_rv.is_empty() && given_rv != meta::resource_version(&existing) {
            return Err(ApiError::conflict(def.group, def.plural, name));
        }
        let given_uid = meta_field(&object, "uid");
        if !given_uid.is_empty() && given_uid != meta::uid(&existing) {
            return Err(ApiError::conflict_with(
                def.group,
                def.plural,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {given_uid}, UID in object meta: {}",
                    meta::uid(&existing)
                ),
            ));
        }

        let mut new = if status_only {
            let mut new = existing_map.clone();
            match object.remove("status") {
                Some(status) => new.insert("status".into(), status),
                None => new.remove("status"),
            };
            new
        } else {
            if def.status_subresource {
                match existing_map.get("status") {
                    Some(status) => object.insert("status".into(), status.clone()),
                    None => object.remove("status"),
                };
            }
            object
        };
        fold_string_data(&def, &mut new);
        // Fields the server owns come from the stored object.
        let existing_meta = meta::metadata(&existing).cloned().unwrap_or_default();
        let new_meta = meta::metadata_mut(&mut new);
        for field in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "managedFields",
            "resourceVersion",
        ] {
            match existing_meta.get(field) {
                Some(value) => new_meta.insert(field.into(), value.clone()),
                None => new_meta.remove(field),
            };
        }

        if comparable(&new) == comparable(existing_map) {
            return Ok(existing); // a no-op update changes nothing, not even resourceVersion
        }
        if spec_part(&new) != spec_part(existing_map) {
            let generation = existing_meta
                .get("generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta::metadata_mut(&mut new).insert("generation".into(), json!(generation + 1));
        }
        let finalize = meta::is_deleting(&Value::Object(new.clone()))
            && !meta::has_finalizers(&Value::Object(new.clone()));
        let updated = self.commit(key.clone(), new, ChangeKind::Modified, Some(existing));
        if finalize {
            // The last finalizer is gone from an object being deleted: it goes now.
            self.remove(&key);
            self.after_delete();
        }
        Ok(updated)
    }

    /// PATCH (or apply). Returns the object and whether it was created (apply only).
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        res: ResId,
        version: &str,
        namespace: &str,
        name: &str,
        kind: PatchKind,
        patch_body: Value,
        status_only: bool,
        field_manager: Option<&str>,
    ) -> Result<(Value, bool), ApiError> {
        let def = self.def(res);
        let key = Self::key(res, namespace, name);
        let existing = self.objects.get(&key).map(|o| present(&def, version, o));
        let patched = match kind {
            PatchKind::Apply => {
                if field_manager.is_none_or(str::is_empty) {
                    return Err(ApiError::bad_request(
                        "PATCH, fieldManager is required for apply patch",
                    ));
                }
                let Value::Object(applied) = &patch_body else {
                    return Err(ApiError::bad_request("apply patch must be a JSON object"));
                };
                if str_field(applied, "apiVersion").is_empty()
                    || str_field(applied, "kind").is_empty()
                {
                    return Err(ApiError::bad_request(
                        "apiVersion and kind must be set in an apply patch",
                    ));
                }
                let applied_name = meta_field(applied, "name");
                if !applied_name.is_empty() && applied_name != name {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({applied_name}) does not match the name on the URL ({name})"
                    )));
                }
                match existing {
                    None if status_only => {
                        return Err(ApiError::not_found(def.group, def.plural, name));
                    }
                    None => {
                        let mut object = applied.clone();
                        meta::metadata_mut(&mut object).insert("name".into(), json!(name));
                        return Ok((
                            self.create(res, version, namespace, Value::Object(object))?,
                            true,
                        ));
                    }
                    Some(mut current) => {
                        patch::merge(&mut current, &patch_body);
                        current
                    }
                }
            }
            PatchKind::Merge | PatchKind::StrategicMerge => {
                let mut current =
                    existing.ok_or_else(|| ApiError::not_found(def.group, def.plural, name))?;
                patch::merge(&mut current, &patch_body);
                current
            }
            PatchKind::Json => {
                let current =
                    existing.ok_or_else(|| ApiError::not_found(def.group, def.plural, name))?;
                patch::json_patch(&current, &patch_body)?
            }
        };
        Ok((
            self.update(res, version, namespace, name, patched, status_only)?,
            false,
        ))
    }

    /// DELETE one object.
    pub fn delete(
        &mut self,
        res: ResId,
        namespace: &str,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<DeleteOutcome, ApiError> {
        let outcome = self.delete_one(res, namespace, name, options)?;
        self.after_delete();
        Ok(outcome)
    }

    fn delete_one(
        &mut self,
        res: ResId,
        namespace: &str,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<DeleteOutcome, ApiError> {
        let def = self.def(res);
        let key = Self::key(res, namespace, name);
        let existing = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(def.group, def.plural, name))?;
        if let Some(uid) = options
            .uid
            .as_deref()
            .filter(|u| *u != meta::uid(&existing))
        {
            return Err(ApiError::conflict_with(
                def.group,
                def.plural,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta::uid(&existing)
                ),
            ));
        }
        if let Some(rv) = options
            .resource_version
            .as_deref()
            .filter(|rv| *rv != meta::resource_version(&existing))
        {
            return Err(ApiError::conflict_with(
                def.group,
                def.plural,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta::resource_version(&existing)
                ),
            ));
        }
        if options.propagation == Propagation::Orphan {
            self.orphan_dependents(meta::uid(&existing));
        }
        if meta::has_finalizers(&existing) {
            if meta::is_deleting(&existing) {
                return Ok(DeleteOutcome::Pending(existing));
            }
            let Value::Object(mut marked) = existing.clone() else {
                return Err(ApiError::internal("stored object is not an object"));
            };
            let meta = meta::metadata_mut(&mut marked);
            meta.insert("deletionTimestamp".into(), json!(meta::now_rfc3339()));
            meta.insert("deletionGracePeriodSeconds".into(), json!(0));
            let marked = self.commit(key, marked, ChangeKind::Modified, Some(existing));
            return Ok(DeleteOutcome::Pending(marked));
        }
        let last = self
            .remove(&key)
            .ok_or_else(|| ApiError::not_found(def.group, def.plural, name))?;
        Ok(DeleteOutcome::Deleted(last))
    }

    /// DELETE a collection: every matching object, as one delete each.
    pub fn delete_collection(
        &mut self,
        res: ResId,
        namespace: Option<&str>,
        selectors: &Selectors,
        options: &DeleteOptions,
    ) -> Result<Vec<Value>, ApiError> {
        let keys: Vec<Key> = self
            .objects
            .iter()
            .filter(|((r, ns, _), _)| *r == res && namespace.is_none_or(|want| want == ns))
            .filter(|(_, object)| selectors.matches(object))
            .map(|(key, _)| key.clone())
            .collect();
        let mut deleted = Vec::new();
        for (res, ns, name) in keys {
            match self.delete_one(res, &ns, &name, options) {
                Ok(DeleteOutcome::Deleted(o) | DeleteOutcome::Pending(o)) => deleted.push(o),
                // Collected by GC in the meantime, or a failed precondition: skip, as upstream
                // reports per-item failures only in the aggregate.
                Err(_) => {}
            }
        }
        self.after_delete();
        Ok(deleted)
    }

    fn after_delete(&mut self) {
        if self.gc_mode == GcMode::Immediate {
            self.gc();
        }
    }

    /// Removes owner references to `owner_uid` from every object (orphan propagation).
    fn orphan_dependents(&mut self, owner_uid: &str) {
        let dependents: Vec<Key> = self
            .objects
            .iter()
            .filter(|(_, o)| meta::owner_uids(o).iter().any(|u| u == owner_uid))
            .map(|(k, _)| k.clone())
            .collect();
        for key in dependents {
            self.retain_owner_refs(&key, |uid| uid != owner_uid);
        }
    }

    /// Keeps only the owner references whose uid passes `keep`; records a change if any went.
    fn retain_owner_refs(&mut self, key: &Key, keep: impl Fn(&str) -> bool) {
        let Some(existing) = self.objects.get(key).cloned() else {
            return;
        };
        let Value::Object(mut object) = existing.clone() else {
            return;
        };
        let meta = meta::metadata_mut(&mut object);
        if let Some(Value::Array(refs)) = meta.get_mut("ownerReferences") {
            refs.retain(|r| keep(r.get("uid").and_then(Value::as_str).unwrap_or("")));
            if refs.is_empty() {
                meta.remove("ownerReferences");
            }
        }
        self.commit(key.clone(), object, ChangeKind::Modified, Some(existing));
    }

    /// Garbage collection with background propagation: objects whose owner references all
    /// name uids that no longer exist are deleted (honouring their finalizers), references to
    /// vanished owners are dropped from objects that still have a live owner, and this repeats
    /// until nothing changes (so chains collapse). Returns how many objects were deleted or
    /// marked for deletion.
    pub fn gc(&mut self) -> usize {
        let mut collected = 0;
        loop {
            let live: HashSet<String> = self
                .objects
                .values()
                .map(|o| meta::uid(o).to_owned())
                .collect();
            let mut orphans = Vec::new();
            let mut dangling = Vec::new();
            for (key, object) in &self.objects {
                let owners = meta::owner_uids(object);
                if owners.is_empty() {
                    continue;
                }
                let alive = owners.iter().filter(|u| live.contains(*u)).count();
                if alive == 0 {
                    if !meta::is_deleting(object) {
                        orphans.push(key.clone());
                    }
                } else if alive < owners.len() {
                    dangling.push(key.clone());
                }
            }
            if orphans.is_empty() && dangling.is_empty() {
                return collected;
            }
            for key in dangling {
                self.retain_owner_refs(&key, |uid| live.contains(uid));
            }
            for (res, ns, name) in orphans {
                if self
                    .delete_one(res, &ns, &name, &DeleteOptions::default())
                    .is_ok()
                {
                    collected += 1;
                }
            }
        }
    }

    /// Writes an object as given (set-up from tests): created or replaced, whatever its
    /// `resourceVersion`; `uid` and `creationTimestamp` are kept if given (or from the stored
    /// object), generated otherwise; `status` is stored as given.
    pub fn insert(&mut self, object: Value) -> Result<Value, ApiError> {
        let mut object = object_map(object, "the object")?;
        let api_version = str_field(&object, "apiVersion").to_owned();
        let kind = str_field(&object, "kind").to_owned();
        let (res, version) = self.registry.by_kind(&api_version, &kind).ok_or_else(|| {
            ApiError::bad_request(format!(
                "no resource is served for apiVersion {api_version:?} kind {kind:?}"
            ))
        })?;
        let def = self.def(res);
        let namespace = meta_field(&object, "namespace").to_owned();
        if def.namespaced && namespace.is_empty() {
            return Err(ApiError::bad_request(format!(
                "{} are namespaced: metadata.namespace is required",
                def.plural
            )));
        }
        check_type_meta(&def, version, &mut object)?;
        check_namespace(&def, &namespace, &mut object)?;
        let name = self.choose_name(&def, res, &namespace, &object)?;
        let key = Self::key(res, &namespace, &name);
        let existing = self.objects.get(&key).cloned();
        fold_string_data(&def, &mut object);
        let previous_meta = existing
            .as_ref()
            .and_then(meta::metadata)
            .cloned()
            .unwrap_or_default();
        let meta = meta::metadata_mut(&mut object);
        meta.insert("name".into(), json!(name));
        for (field, make) in [
            ("uid", meta::new_uid as fn() -> String),
            ("creationTimestamp", meta::now_rfc3339),
        ] {
            if meta
                .get(field)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                let value = previous_meta
                    .get(field)
                    .cloned()
                    .unwrap_or_else(|| json!(make()));
                meta.insert(field.into(), value);
            }
        }
        if !meta.contains_key("generation") {
            meta.insert("generation".into(), json!(1));
        }
        let kind = if existing.is_some() {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        Ok(self.commit(key, object, kind, existing))
    }

    /// Starts a watch of `res` (in `namespace`, or all) with `selectors` from `from`. The
    /// caller holds the store lock, so nothing can slip between the initial events and the
    /// live feed.
    pub fn watch(
        &self,
        res: ResId,
        namespace: Option<&str>,
        selectors: &Selectors,
        from: WatchFrom,
    ) -> Result<WatchStart, ApiError> {
        let initial = match from {
            WatchFrom::After(rv) if rv < self.compacted => {
                return Err(ApiError::expired(format!(
                    "too old resource version: {rv} ({})",
                    self.compacted + 1
                )));
            }
            WatchFrom::After(rv) => self
                .history
                .iter()
                .filter(|c| c.revision > rv)
                .filter_map(|c| project(c, res, namespace, selectors))
                .collect(),
            WatchFrom::Now => self
                .objects
                .iter()
                .filter(|((r, ns, _), _)| *r == res && namespace.is_none_or(|want| want == ns))
                .filter(|(_, object)| selectors.matches(object))
                .map(|(_, object)| (ChangeKind::Added, Arc::new(object.clone())))
                .collect(),
        };
        Ok(WatchStart {
            initial,
            receiver: self.changes.subscribe(),
            revision: self.revision,
        })
    }

    /// Every stored object (for assertions), in resource/namespace/name order.
    pub fn all(&self) -> impl Iterator<Item = (ResId, &Value)> {
        self.objects.iter().map(|((res, _, _), o)| (*res, o))
    }
}

fn encode_continue(revision: u64, namespace: &str, name: &str) -> String {
    URL_SAFE_NO_PAD.encode(json!({ "rv": revision, "ns": namespace, "name": name }).to_string())
}

fn decode_continue(token: &str) -> Result<(u64, String, String), ApiError> {
    let invalid = || ApiError::bad_request("continue key is not valid");
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let rv = value
        .get("rv")
        .and_then(Value::as_u64)
        .ok_or_else(invalid)?;
    let ns = value
        .get("ns")
        .and_then(Value::as_str)
        .ok_or_else(invalid)?;
    let name = value
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(invalid)?;
    Ok((rv, ns.to_owned(), name.to_owned()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::resources::ResourceDef;

    const NS: &str = "ns";

    fn store(history: usize) -> Store {
        Store::new(
            Arc::new(Registry::new(ResourceDef::defaults())),
            history,
            GcMode::Immediate,
        )
    }

    fn res(store: &Store, group: &str, version: &str, plural: &str) -> ResId {
        store.registry().by_path(group, version, plural).unwrap()
    }

    fn spc(name: &str, provider: &str) -> Value {
        json!({
            "apiVersion": "secrets-store.csi.x-k8s.io/v1", "kind": "SecretProviderClass",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"provider": provider},
        })
    }

    #[test]
    fn generation_moves_with_the_spec_but_not_with_metadata() {
        let mut store = store(100);
        let spcs = res(
            &store,
            "secrets-store.csi.x-k8s.io",
            "v1",
            "secretproviderclasses",
        );
        let created = store.create(spcs, "v1", NS, spc("a", "azure")).unwrap();
        assert_eq!(created["metadata"]["generation"], 1);

        let mut labelled = created.clone();
        labelled["metadata"]["labels"] = json!({"x": "y"});
        let labelled = store.update(spcs, "v1", NS, "a", labelled, false).unwrap();
        assert_eq!(labelled["metadata"]["generation"], 1);

        let mut respec = labelled.clone();
        respec["spec"]["provider"] = json!("vault");
        let respec = store.update(spcs, "v1", NS, "a", respec, false).unwrap();
        assert_eq!(respec["metadata"]["generation"], 2);
        assert_eq!(respec["metadata"]["uid"], created["metadata"]["uid"]);
    }

    #[test]
    fn every_write_takes_the_next_global_resource_version() {
        let mut store = store(100);
        let spcs = res(
            &store,
            "secrets-store.csi.x-k8s.io",
            "v1",
            "secretproviderclasses",
        );
        let a = store.create(spcs, "v1", NS, spc("a", "azure")).unwrap();
        let b = store
            .create(spcs, "v1alpha1", NS, {
                let mut b = spc("b", "azure");
                b["apiVersion"] = json!("secrets-store.csi.x-k8s.io/v1alpha1");
                b
            })
            .unwrap();
        assert_eq!(meta::resource_version(&a), "1");
        assert_eq!(meta::resource_version(&b), "2");
        // Stored under the storage version whatever version wrote it.
        assert_eq!(b["apiVersion"], "secrets-store.csi.x-k8s.io/v1");
        assert_eq!(store.revision(), 2);
    }

    #[test]
    fn watches_from_inside_the_history_replay_and_older_ones_expire() {
        let mut store = store(2);
        let spcs = res(
            &store,
            "secrets-store.csi.x-k8s.io",
            "v1",
            "secretproviderclasses",
        );
        for name in ["a", "b", "c"] {
            store.create(spcs, "v1", NS, spc(name, "azure")).unwrap();
        }
        // History holds revisions 2 and 3; revision 1 was compacted.
        let start = store
            .watch(spcs, Some(NS), &Selectors::default(), WatchFrom::After(1))
            .unwrap();
        let names: Vec<&str> = start.initial.iter().map(|(_, o)| meta::name(o)).collect();
        assert_eq!(names, ["b", "c"]);
        let err = store
            .watch(spcs, Some(NS), &Selectors::default(), WatchFrom::After(0))
            .unwrap_err();
        assert_eq!((err.code, err.reason), (410, "Expired"));
    }

    #[test]
    fn a_watch_from_now_starts_with_the_current_state_as_added() {
        let mut store = store(10);
        let spcs = res(
            &store,
            "secrets-store.csi.x-k8s.io",
            "v1",
            "secretproviderclasses",
        );
        store.create(spcs, "v1", NS, spc("a", "azure")).unwrap();
        store
            .create(spcs, "v1", "other", {
                let mut o = spc("b", "azure");
                o["metadata"]["namespace"] = json!("other");
                o
            })
            .unwrap();
        let start = store
            .watch(spcs, Some(NS), &Selectors::default(), WatchFrom::Now)
            .unwrap();
        assert_eq!(start.initial.len(), 1);
        assert_eq!(start.initial[0].0, ChangeKind::Added);
        assert_eq!(start.revision, 2);
    }

    #[test]
    fn gc_marks_dependents_with_finalizers_instead_of_removing_them() {
        let mut store = store(100);
        let spcs = res(
            &store,
            "secrets-store.csi.x-k8s.io",
            "v1",
            "secretproviderclasses",
        );
        let owner = store.create(spcs, "v1", NS, spc("owner", "azure")).unwrap();
        let mut dependent = spc("dependent", "azure");
        dependent["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "v1", "kind": "X", "name": "owner", "uid": meta::uid(&owner)}]);
        dependent["metadata"]["finalizers"] = json!(["keep"]);
        store.create(spcs, "v1", NS, dependent).unwrap();

        store
            .delete(spcs, NS, "owner", &DeleteOptions::default())
            .unwrap();
        let left = store.get(spcs, NS, "dependent").unwrap();
        assert!(meta::is_deleting(&left));
        // Running GC again changes nothing: the dependent is already being deleted.
        let revision = store.revision();
        assert_eq!(store.gc(), 0);
        assert_eq!(store.revision(), revision);
    }

    #[test]
    fn insert_keeps_given_uid_and_status_and_replaces_existing_objects() {
        let mut store = store(100);
        let pods = res(&store, "", "v1", "pods");
        let given = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": NS, "uid": "fixed-uid"},
            "status": {"phase": "Running"},
        });
        let first = store.insert(given.clone()).unwrap();
        assert_eq!(first["metadata"]["uid"], "fixed-uid");
        assert_eq!(first["status"]["phase"], "Running");
        let second = store.insert(given).unwrap();
        assert_eq!(meta::resource_version(&second), "2");
        assert_eq!(
            store.get(pods, NS, "p").unwrap()["metadata"]["uid"],
            "fixed-uid"
        );
        assert!(
            store
                .insert(json!({"apiVersion": "v9", "kind": "Nope"}))
                .is_err()
        );
    }

    #[test]
    fn a_continue_token_older_than_the_history_expires() {
        let mut store = store(1);
        let spcs = res(
            &store,
            "secrets-store.csi.x-k8s.io",
            "v1",
            "secretproviderclasses",
        );
        for name in ["a", "b", "c"] {
            store.create(spcs, "v1", NS, spc(name, "azure")).unwrap();
        }
        let page = store
            .list(spcs, Some(NS), &Selectors::default(), Some(1), None)
            .unwrap();
        let token = page.continue_token.unwrap();
        assert_eq!(page.remaining, Some(2));
        store.create(spcs, "v1", NS, spc("d", "azure")).unwrap();
        store.create(spcs, "v1", NS, spc("e", "azure")).unwrap();
        let err = store
            .list(spcs, Some(NS), &Selectors::default(), Some(1), Some(&token))
            .unwrap_err();
        assert_eq!(err.code, 410);
    }
}
