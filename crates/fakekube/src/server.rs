//! The HTTP side: [`FakeKube`] owns a plain-HTTP listener on `127.0.0.1:0`, an accept loop
//! that can drop connections on demand, and the axum handler that parses Kubernetes API paths
//! and query parameters, counts requests, applies faults, and calls the [`Store`].
//!
//! Start with [`FakeKube::start`]; [`FakeKube::client`] gives a `kube::Client` for it, the
//! direct accessors ([`FakeKube::insert`], [`FakeKube::get`], ...) set up and inspect state
//! without HTTP, and [`FakeKube::set_fault`] makes the API slow, failing or unreachable.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch as signal;
use tokio::task::{AbortHandle, JoinHandle};

use crate::discovery;
use crate::patch::{self, PatchKind};
use crate::resources::{Registry, ResId, ResourceDef};
use crate::selector::{FieldSelector, LabelSelector, Selectors};
use crate::status::{self, ApiError};
use crate::store::{self, DeleteOptions, DeleteOutcome, GcMode, Propagation, Store, WatchFrom};
use crate::watch::{self, WatchParams};

/// Changes kept for watches by default; a watch from an older `resourceVersion` gets 410.
pub const DEFAULT_HISTORY_LIMIT: usize = 1000;

/// Bookmark interval by default: often enough that tests see them, rare enough to be noise.
pub const DEFAULT_BOOKMARK_INTERVAL: Duration = Duration::from_secs(5);

/// Request records kept for [`FakeKube::request_log`]; counters stay exact beyond it.
const REQUEST_LOG_LIMIT: usize = 10_000;

/// Pause after a failed `accept(2)` (e.g. out of file descriptors) before trying again.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(10);

/// Errors of the fake's own API (not the HTTP API, which answers with `Status` objects).
#[derive(Debug, thiserror::Error)]
pub enum FakeError {
    /// The listener could not be bound.
    #[error("failed to bind the fake API server on 127.0.0.1")]
    Bind(#[source] std::io::Error),
    /// The fake's own URL did not parse (cannot happen for a socket address).
    #[error("failed to parse the fake's URL {url}")]
    Url {
        /// The fake's URL.
        url: String,
        /// The underlying error.
        #[source]
        source: axum::http::uri::InvalidUri,
    },
    /// A `kube::Client` could not be built for the fake.
    #[error("failed to build a kube client for {url}")]
    Client {
        /// The fake's URL.
        url: String,
        /// The underlying error.
        #[source]
        source: kube::Error,
    },
    /// An object could not be turned into JSON or back.
    #[error("failed to convert an object to or from JSON")]
    Json(#[from] serde_json::Error),
    /// The type is not served by this fake.
    #[error("no resource is served for {api_version} {plural}")]
    UnknownResource {
        /// `apiVersion` of the type.
        api_version: String,
        /// Plural of the type.
        plural: String,
    },
    /// The operation failed as the API would have failed it.
    #[error("the fake API refused the operation")]
    Api(#[from] ApiError),
}

/// API verbs, as the API server names them (and as requests are counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// GET of one object.
    Get,
    /// GET of a collection.
    List,
    /// GET of a collection with `watch=true`.
    Watch,
    /// POST.
    Create,
    /// PUT.
    Update,
    /// PATCH (including server-side apply).
    Patch,
    /// DELETE of one object.
    Delete,
    /// DELETE of a collection.
    DeleteCollection,
}

impl Verb {
    /// The lowercase name (`get`, `list`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::List => "list",
            Self::Watch => "watch",
            Self::Create => "create",
            Self::Update => "update",
            Self::Patch => "patch",
            Self::Delete => "delete",
            Self::DeleteCollection => "deletecollection",
        }
    }
}

impl std::fmt::Display for Verb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One resource request the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// The verb.
    pub verb: Verb,
    /// API group (empty for core).
    pub group: String,
    /// API version.
    pub version: String,
    /// Resource, with `/status` for the subresource (`pods/status`).
    pub resource: String,
    /// Namespace, if the path named one.
    pub namespace: Option<String>,
    /// Object name, if the path named one.
    pub name: Option<String>,
    /// Path and query as sent.
    pub path: String,
}

/// A way for the API to misbehave, set with [`FakeKube::set_fault`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    /// Behave.
    #[default]
    None,
    /// Answer every request with 503 ServiceUnavailable (as an overloaded or starting API
    /// server behind a load balancer does).
    Unavailable,
    /// Delay every request (and the start of every watch) by this much.
    Latency(Duration),
    /// Hold every request unanswered until the fault changes (for client timeouts).
    Hang,
    /// Close every open connection (ending watches) and drop new connections as soon as they
    /// are accepted: the API is unreachable.
    Disconnect,
}

#[derive(Debug)]
struct Injection {
    verb: Verb,
    resource: String,
    code: u16,
    remaining: usize,
}

/// Builder for [`FakeKube`].
#[derive(Debug, Clone)]
pub struct FakeKubeBuilder {
    resources: Vec<ResourceDef>,
    history_limit: usize,
    gc: GcMode,
    bookmark_interval: Duration,
}

impl Default for FakeKubeBuilder {
    fn default() -> Self {
        Self {
            resources: ResourceDef::defaults(),
            history_limit: DEFAULT_HISTORY_LIMIT,
            gc: GcMode::Immediate,
            bookmark_interval: DEFAULT_BOOKMARK_INTERVAL,
        }
    }
}

impl FakeKubeBuilder {
    /// Serves another resource, or replaces the definition of one with the same group and
    /// plural (e.g. a CRD with the status subresource switched on).
    pub fn resource(mut self, def: ResourceDef) -> Self {
        self.resources.push(def);
        self
    }

    /// How many changes are kept for watches (at least 1); watches from older
    /// `resourceVersion`s get 410 Expired.
    pub fn history_limit(mut self, limit: usize) -> Self {
        self.history_limit = limit;
        self
    }

    /// When garbage collection runs (default: right after every delete).
    pub fn gc(mut self, mode: GcMode) -> Self {
        self.gc = mode;
        self
    }

    /// How often watches with `allowWatchBookmarks` get a bookmark.
    pub fn bookmark_interval(mut self, interval: Duration) -> Self {
        self.bookmark_interval = interval;
        self
    }

    /// Binds `127.0.0.1:0` and starts serving.
    pub async fn start(self) -> Result<FakeKube, FakeError> {
        let registry = Arc::new(Registry::new(self.resources));
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(FakeError::Bind)?;
        let addr = listener.local_addr().map_err(FakeError::Bind)?;
        let (fault, _) = signal::channel(Fault::None);
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new(registry.clone(), self.history_limit, self.gc)),
            registry,
            addr,
            bookmark_interval: self.bookmark_interval,
            fault,
            injections: Mutex::default(),
            counters: Mutex::default(),
            log: Mutex::default(),
            connections: Mutex::default(),
        });
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let accept = tokio::spawn(accept_loop(listener, router, shared.clone()));
        Ok(FakeKube {
            shared,
            addr,
            accept,
        })
    }
}

#[derive(Debug)]
struct Shared {
    store: Mutex<Store>,
    registry: Arc<Registry>,
    addr: SocketAddr,
    bookmark_interval: Duration,
    fault: signal::Sender<Fault>,
    injections: Mutex<Vec<Injection>>,
    counters: Mutex<HashMap<(Verb, String), u64>>,
    log: Mutex<VecDeque<RequestRecord>>,
    connections: Mutex<Vec<AbortHandle>>,
}

/// Locks a mutex, recovering from poisoning (a panicking test thread must not wedge the fake).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn abort_connections(&self) {
        for handle in lock(&self.connections).drain(..) {
            handle.abort();
        }
    }
}

/// An in-process fake Kubernetes API server on plain HTTP. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeKube {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.accept.abort();
        self.shared.abort_connections();
    }
}

impl FakeKube {
    /// Starts a fake with the default resources on `127.0.0.1:0`.
    pub async fn start() -> Result<Self, FakeError> {
        FakeKubeBuilder::default().start().await
    }

    /// A builder for a fake with other resources or settings.
    pub fn builder() -> FakeKubeBuilder {
        FakeKubeBuilder::default()
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A `kube::Config` for this fake: default namespace `default`, no credentials, and
    /// kube's defaults otherwise. Note `default_retry`: kube clients retry 429, 503 and 504
    /// answers up to 15 times with exponential backoff (minutes in total); tests of
    /// "API unavailable" paths usually want it off.
    pub fn config(&self) -> Result<kube::Config, FakeError> {
        let url = self.url();
        let uri: Uri = url
            .parse()
            .map_err(|source| FakeError::Url { url, source })?;
        Ok(kube::Config::new(uri))
    }

    /// A `kube::Client` for this fake, built from [`FakeKube::config`] as it is (so with
    /// kube's default retries, as production code gets them).
    pub fn client(&self) -> Result<kube::Client, FakeError> {
        kube::Client::try_from(self.config()?).map_err(|source| FakeError::Client {
            url: self.url(),
            source,
        })
    }

    fn resource_of<K>(&self) -> Result<ResId, FakeError>
    where
        K: kube::Resource<DynamicType = ()>,
    {
        let (group, version, plural) = (K::group(&()), K::version(&()), K::plural(&()));
        self.shared
            .registry
            .by_path(&group, &version, &plural)
            .ok_or_else(|| FakeError::UnknownResource {
                api_version: K::api_version(&()).into_owned(),
                plural: plural.into_owned(),
            })
    }

    /// Writes an object directly (no HTTP, not counted): created, or replaced if it exists.
    /// Its `apiVersion` and `kind` pick the resource; `uid` and `creationTimestamp` are kept
    /// if set, `status` is stored as given, `resourceVersion` is assigned. Watchers see the
    /// change like any other. Returns the stored object.
    pub fn insert<T: Serialize>(&self, object: &T) -> Result<Value, FakeError> {
        let value = serde_json::to_value(object)?;
        Ok(lock(&self.shared.store).insert(value)?)
    }

    /// Reads an object directly; `namespace` is `""` for cluster-scoped types.
    pub fn get<K>(&self, namespace: &str, name: &str) -> Result<Option<K>, FakeError>
    where
        K: kube::Resource<DynamicType = ()> + DeserializeOwned,
    {
        let res = self.resource_of::<K>()?;
        let def = self.shared.registry.def(res).clone();
        let found = lock(&self.shared.store).get(res, namespace, name).ok();
        found
            .map(|o| serde_json::from_value(store::present(&def, &K::version(&()), &o)))
            .transpose()
            .map_err(FakeError::from)
    }

    /// Lists objects directly, in one namespace or all, in namespace/name order.
    pub fn list<K>(&self, namespace: Option<&str>) -> Result<Vec<K>, FakeError>
    where
        K: kube::Resource<DynamicType = ()> + DeserializeOwned,
    {
        let res = self.resource_of::<K>()?;
        let def = self.shared.registry.def(res).clone();
        let page =
            lock(&self.shared.store).list(res, namespace, &Selectors::default(), None, None)?;
        page.items
            .iter()
            .map(|o| serde_json::from_value(store::present(&def, &K::version(&()), o)))
            .collect::<Result<_, _>>()
            .map_err(FakeError::from)
    }

    /// Deletes an object directly, with background propagation (and immediate GC unless the
    /// fake was built with [`GcMode::Manual`]). Returns whether it existed. An object with
    /// finalizers is only marked for deletion, as through the API.
    pub fn delete<K>(&self, namespace: &str, name: &str) -> Result<bool, FakeError>
    where
        K: kube::Resource<DynamicType = ()>,
    {
        let res = self.resource_of::<K>()?;
        match lock(&self.shared.store).delete(res, namespace, name, &DeleteOptions::default()) {
            Ok(_) => Ok(true),
            Err(e) if e.code == 404 => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads any stored object as JSON by `apiVersion` (e.g. `v1`,
    /// `secrets-store.csi.x-k8s.io/v1`) and plural.
    pub fn get_json(
        &self,
        api_version: &str,
        plural: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let res = self.shared.registry.by_path(group, version, plural)?;
        let def = self.shared.registry.def(res).clone();
        let object = lock(&self.shared.store).get(res, namespace, name).ok()?;
        Some(store::present(&def, version, &object))
    }

    /// How many objects the store holds, across all resources.
    pub fn object_count(&self) -> usize {
        lock(&self.shared.store).all().count()
    }

    /// Runs garbage collection now; returns how many objects were deleted or marked.
    pub fn gc(&self) -> usize {
        lock(&self.shared.store).gc()
    }

    /// The current `resourceVersion` (the global counter).
    pub fn resource_version(&self) -> u64 {
        lock(&self.shared.store).revision()
    }

    /// How many HTTP requests with `verb` hit `resource` (a plural, or `pods/status` for a
    /// subresource) since start or the last [`FakeKube::clear_requests`].
    pub fn requests(&self, verb: Verb, resource: &str) -> u64 {
        lock(&self.shared.counters)
            .get(&(verb, resource.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// The most recent resource requests, oldest first (at most 10 000 are kept).
    pub fn request_log(&self) -> Vec<RequestRecord> {
        lock(&self.shared.log).iter().cloned().collect()
    }

    /// Forgets all counted and logged requests.
    pub fn clear_requests(&self) {
        lock(&self.shared.counters).clear();
        lock(&self.shared.log).clear();
    }

    /// Makes the API misbehave until the next call (`Fault::None` restores it).
    pub fn set_fault(&self, fault: Fault) {
        self.shared.fault.send_replace(fault);
        if fault == Fault::Disconnect {
            self.shared.abort_connections();
        }
    }

    /// Fails the next `times` requests with `verb` on `resource` (plural, or `pods/status`)
    /// with a `Status` of HTTP `code` (the reason the API server uses for that code).
    pub fn fail_requests(&self, verb: Verb, resource: &str, code: u16, times: usize) {
        lock(&self.shared.injections).push(Injection {
            verb,
            resource: resource.to_owned(),
            code,
            remaining: times,
        });
    }

    /// Stops the server and closes every connection.
    pub async fn shutdown(self) {
        self.accept.abort();
        self.shared.abort_connections();
    }
}

async fn accept_loop(listener: TcpListener, router: Router, shared: Arc<Shared>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                continue;
            }
        };
        if *shared.fault.borrow() == Fault::Disconnect {
            drop(stream);
            continue;
        }
        let service = TowerToHyperService::new(router.clone());
        let connection = tokio::spawn(async move {
            // A connection ending badly (client gone, aborted by a fault) is not an error of
            // the fake.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        let mut connections = lock(&shared.connections);
        connections.retain(|c| !c.is_finished());
        connections.push(connection.abort_handle());
    }
}

/// What a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Version,
    CoreVersions,
    Groups,
    Group(String),
    Resources { group: String, version: String },
    Resource(Target),
}

/// A resource path: which resource, version, namespace, object and subresource.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    res: ResId,
    group: String,
    version: String,
    namespace: Option<String>,
    name: Option<String>,
    status: bool,
}

fn parse_path(registry: &Registry, path: &str) -> Result<Route, ApiError> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (group, version, rest) = match segments.as_slice() {
        ["version"] => return Ok(Route::Version),
        ["api"] => return Ok(Route::CoreVersions),
        ["apis"] => return Ok(Route::Groups),
        ["apis", group] => return Ok(Route::Group((*group).to_owned())),
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(ApiError::no_route()),
    };
    let (namespace, plural, name, sub) = match rest {
        [] => {
            return Ok(Route::Resources {
                group: group.to_owned(),
                version: version.to_owned(),
            });
        }
        ["namespaces", ns, plural, tail @ ..] => (Some(*ns), *plural, tail.first(), tail.get(1)),
        [plural, tail @ ..] => (None, *plural, tail.first(), tail.get(1)),
    };
    let tail_len = rest.len();
    let res = registry
        .by_path(group, version, plural)
        .ok_or_else(ApiError::no_route)?;
    let def = registry.def(res);
    let status = match sub {
        None => false,
        Some(&"status") if def.status_subresource => true,
        Some(_) => return Err(ApiError::no_route()),
    };
    // `namespaces/{ns}/{plural}/{name}/{sub}` is the longest form; anything longer is unknown.
    let max_len = if namespace.is_some() { 5 } else { 3 };
    if tail_len > max_len || (namespace.is_none() && def.namespaced && name.is_some()) {
        return Err(ApiError::no_route());
    }
    if namespace.is_some() && !def.namespaced {
        return Err(ApiError::no_route());
    }
    Ok(Route::Resource(Target {
        res,
        group: group.to_owned(),
        version: version.to_owned(),
        namespace: namespace.map(str::to_owned),
        name: name.map(|n| (*n).to_owned()),
        status,
    }))
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error_response(error: &ApiError) -> Response {
    let code = StatusCode::from_u16(error.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, &error.to_status())
}

fn query_flag(query: &HashMap<String, String>, key: &str) -> bool {
    query.get(key).is_some_and(|v| v == "true" || v == "1")
}

fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let media = content_type.split(';').next().unwrap_or("").trim();
    match media {
        "application/json" | "" | "*/*" => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding request body: {e}"))),
        "application/yaml" => patch::parse_body(PatchKind::Apply, body),
        _ => Err(ApiError::unsupported_media_type(content_type)),
    }
}

fn delete_options(query: &HashMap<String, String>, body: &[u8]) -> Result<DeleteOptions, ApiError> {
    let body: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?
    };
    let policy = body
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .or(query.get("propagationPolicy").map(String::as_str));
    let orphan_flag = body.get("orphanDependents").and_then(Value::as_bool) == Some(true);
    let propagation = match policy {
        Some("Orphan") => Propagation::Orphan,
        Some("Foreground") => Propagation::Foreground,
        Some("Background") | None if !orphan_flag => Propagation::Background,
        None => Propagation::Orphan,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "propagationPolicy: Unsupported value: {other:?}"
            )));
        }
    };
    if body
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|d| !d.is_empty())
    {
        return Err(dry_run_unsupported());
    }
    let precondition = |field: &str| {
        body.get("preconditions")
            .and_then(|p| p.get(field))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Ok(DeleteOptions {
        propagation,
        uid: precondition("uid"),
        resource_version: precondition("resourceVersion"),
    })
}

fn dry_run_unsupported() -> ApiError {
    ApiError::bad_request("dryRun is not supported by keyvol-fakekube")
}

fn selectors(def: &ResourceDef, query: &HashMap<String, String>) -> Result<Selectors, ApiError> {
    Ok(Selectors {
        labels: LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))?,
        fields: FieldSelector::parse(
            query.get("fieldSelector").map_or("", String::as_str),
            &def.all_field_labels(),
        )?,
    })
}

fn list_response(def: &ResourceDef, version: &str, page: store::ListPage) -> Value {
    let mut metadata = json!({ "resourceVersion": page.revision.to_string() });
    if let Some(token) = page.continue_token {
        metadata["continue"] = json!(token);
    }
    if let Some(remaining) = page.remaining {
        metadata["remainingItemCount"] = json!(remaining);
    }
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|o| store::present(def, version, o))
        .collect();
    json!({
        "kind": format!("{}List", def.kind),
        "apiVersion": def.api_version(version),
        "metadata": metadata,
        "items": items,
    })
}

fn verb_of(
    method: &Method,
    target: &Target,
    query: &HashMap<String, String>,
) -> Result<Verb, ApiError> {
    let named = target.name.is_some();
    match (method.as_str(), named) {
        ("GET", true) => Ok(Verb::Get),
        ("GET", false) if query_flag(query, "watch") => Ok(Verb::Watch),
        ("GET", false) => Ok(Verb::List),
        ("POST", false) => Ok(Verb::Create),
        ("PUT", true) => Ok(Verb::Update),
        ("PATCH", true) => Ok(Verb::Patch),
        ("DELETE", true) => Ok(Verb::Delete),
        ("DELETE", false) => Ok(Verb::DeleteCollection),
        (other, _) => Err(ApiError::method_not_allowed(other)),
    }
}

impl Shared {
    fn record(&self, verb: Verb, target: &Target, uri: &Uri) {
        let def = self.registry.def(target.res);
        let resource = if target.status {
            format!("{}/status", def.plural)
        } else {
            def.plural.to_owned()
        };
        *lock(&self.counters)
            .entry((verb, resource.clone()))
            .or_default() += 1;
        let mut log = lock(&self.log);
        if log.len() >= REQUEST_LOG_LIMIT {
            log.pop_front();
        }
        log.push_back(RequestRecord {
            verb,
            group: target.group.clone(),
            version: target.version.clone(),
            resource,
            namespace: target.namespace.clone(),
            name: target.name.clone(),
            path: uri
                .path_and_query()
                .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned()),
        });
    }

    fn injected_failure(&self, verb: Verb, target: &Target) -> Option<ApiError> {
        let def = self.registry.def(target.res);
        let resource = if target.status {
            format!("{}/status", def.plural)
        } else {
            def.plural.to_owned()
        };
        let mut injections = lock(&self.injections);
        let injection = injections
            .iter_mut()
            .find(|i| i.verb == verb && i.resource == resource && i.remaining > 0)?;
        injection.remaining -= 1;
        Some(ApiError::with_code(
            injection.code,
            format!("injected failure for {verb} {resource}"),
        ))
    }

    /// Waits out latency and hang faults; returns the fault in force afterwards.
    async fn apply_fault(&self) -> Fault {
        let mut fault = self.fault.subscribe();
        loop {
            let current = *fault.borrow_and_update();
            match current {
                Fault::Hang => {
                    if fault.changed().await.is_err() {
                        return Fault::None;
                    }
                }
                Fault::Latency(delay) => {
                    tokio::time::sleep(delay).await;
                    return current;
                }
                other => return other,
            }
        }
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match shared.apply_fault().await {
        Fault::Unavailable => {
            return error_response(&ApiError::unavailable(
                "the fake API server is unavailable (fault injected)",
            ));
        }
        Fault::Disconnect => {
            // Only a request already in flight on a connection opened before the fault gets
            // here; answer it the way a dying server would.
            return error_response(&ApiError::unavailable("the fake API server is going away"));
        }
        Fault::None | Fault::Latency(_) | Fault::Hang => {}
    }
    let query: HashMap<String, String> = Query::try_from_uri(&uri)
        .map(|Query(q)| q)
        .unwrap_or_default();
    match serve(&shared, &method, &uri, &headers, &query, &body) {
        Ok(response) => response,
        Err(error) => error_response(&error),
    }
}

fn serve(
    shared: &Arc<Shared>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    body: &[u8],
) -> Result<Response, ApiError> {
    let route = parse_path(&shared.registry, uri.path())?;
    let discovery_get = |doc: Option<Value>| -> Result<Response, ApiError> {
        if method != Method::GET {
            return Err(ApiError::method_not_allowed(method.as_str()));
        }
        doc.map(|d| json_response(StatusCode::OK, &d))
            .ok_or_else(ApiError::no_route)
    };
    let target = match route {
        Route::Version => return discovery_get(Some(discovery::version())),
        Route::CoreVersions => {
            return discovery_get(Some(discovery::core_versions(&shared.addr.to_string())));
        }
        Route::Groups => return discovery_get(Some(discovery::groups(&shared.registry))),
        Route::Group(group) => return discovery_get(discovery::group(&shared.registry, &group)),
        Route::Resources { group, version } => {
            return discovery_get(discovery::resources(&shared.registry, &group, &version));
        }
        Route::Resource(target) => target,
    };
    let verb = verb_of(method, &target, query)?;
    shared.record(verb, &target, uri);
    if let Some(failure) = shared.injected_failure(verb, &target) {
        return Err(failure);
    }
    let is_write = !matches!(verb, Verb::Get | Verb::List | Verb::Watch);
    if is_write && query.get("dryRun").is_some_and(|d| !d.is_empty()) {
        return Err(dry_run_unsupported());
    }
    let def = shared.registry.def(target.res).clone();
    let version = target.version.as_str();
    let namespace = target.namespace.as_deref().unwrap_or("");
    let name = target.name.as_deref().unwrap_or("");
    if def.namespaced && target.namespace.is_none() && !matches!(verb, Verb::List | Verb::Watch) {
        // Writes to a namespaced resource need a namespace in the path.
        return Err(ApiError::method_not_allowed(method.as_str()));
    }
    let ok = |code: StatusCode, object: &Value| Ok(json_response(code, object));
    match verb {
        Verb::Get => {
            let object = lock(&shared.store).get(target.res, namespace, name)?;
            ok(StatusCode::OK, &store::present(&def, version, &object))
        }
        Verb::List => {
            let selectors = selectors(&def, query)?;
            let limit = query.get("limit").and_then(|l| l.parse().ok());
            let page = lock(&shared.store).list(
                target.res,
                target.namespace.as_deref(),
                &selectors,
                limit,
                query
                    .get("continue")
                    .map(String::as_str)
                    .filter(|c| !c.is_empty()),
            )?;
            ok(StatusCode::OK, &list_response(&def, version, page))
        }
        Verb::Watch => {
            let selectors = selectors(&def, query)?;
            let from = match query.get("resourceVersion").map(String::as_str) {
                None | Some("" | "0") => WatchFrom::Now,
                Some(rv) => WatchFrom::After(rv.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid resourceVersion {rv:?}"))
                })?),
            };
            let params = WatchParams {
                resource: target.res,
                version: version.to_owned(),
                namespace: target.namespace.clone(),
                selectors: selectors.clone(),
                bookmarks: query_flag(query, "allowWatchBookmarks"),
                send_initial_events: query_flag(query, "sendInitialEvents"),
                timeout: query
                    .get("timeoutSeconds")
                    .and_then(|t| t.parse().ok())
                    .map(Duration::from_secs),
                bookmark_interval: shared.bookmark_interval,
            };
            let from = if params.send_initial_events {
                WatchFrom::Now
            } else {
                from
            };
            let started = lock(&shared.store).watch(
                target.res,
                target.namespace.as_deref(),
                &selectors,
                from,
            );
            match started {
                Ok(start) => Ok(watch::stream(def, params, start)),
                Err(error) if error.code == 410 => Ok(watch::error_stream(&error)),
                Err(error) => Err(error),
            }
        }
        Verb::Create => {
            let object = parse_body(headers, body)?;
            let created = lock(&shared.store).create(target.res, version, namespace, object)?;
            ok(
                StatusCode::CREATED,
                &store::present(&def, version, &created),
            )
        }
        Verb::Update => {
            let object = parse_body(headers, body)?;
            let updated = lock(&shared.store).update(
                target.res,
                version,
                namespace,
                name,
                object,
                target.status,
            )?;
            ok(StatusCode::OK, &store::present(&def, version, &updated))
        }
        Verb::Patch => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let kind = PatchKind::from_content_type(content_type)?;
            let patch_body = patch::parse_body(kind, body)?;
            let (patched, created) = lock(&shared.store).patch(
                target.res,
                version,
                namespace,
                name,
                kind,
                patch_body,
                target.status,
                query.get("fieldManager").map(String::as_str),
            )?;
            let code = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            ok(code, &store::present(&def, version, &patched))
        }
        Verb::Delete => {
            let options = delete_options(query, body)?;
            let outcome = lock(&shared.store).delete(target.res, namespace, name, &options)?;
            match outcome {
                DeleteOutcome::Pending(object) => ok(
                    StatusCode::ACCEPTED,
                    &store::present(&def, version, &object),
                ),
                DeleteOutcome::Deleted(object) if def.delete_returns_object => {
                    ok(StatusCode::OK, &store::present(&def, version, &object))
                }
                DeleteOutcome::Deleted(object) => ok(
                    StatusCode::OK,
                    &status::success_status(def.group, def.plural, name, crate::meta::uid(&object)),
                ),
            }
        }
        Verb::DeleteCollection => {
            let selectors = selectors(&def, query)?;
            let options = delete_options(query, body)?;
            let deleted = lock(&shared.store).delete_collection(
                target.res,
                target.namespace.as_deref(),
                &selectors,
                &options,
            )?;
            let revision = lock(&shared.store).revision();
            let page = store::ListPage {
                items: deleted,
                revision,
                continue_token: None,
                remaining: None,
            };
            ok(StatusCode::OK, &list_response(&def, version, page))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn registry() -> Registry {
        Registry::new(ResourceDef::defaults())
    }

    fn target(path: &str) -> Target {
        match parse_path(&registry(), path).unwrap() {
            Route::Resource(t) => t,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn namespaced_paths_parse_into_targets() {
        let t = target("/api/v1/namespaces/ns/pods/web-0/status");
        assert_eq!(t.namespace.as_deref(), Some("ns"));
        assert_eq!(t.name.as_deref(), Some("web-0"));
        assert!(t.status);
        let t =
            target("/apis/secrets-store.csi.x-k8s.io/v1alpha1/namespaces/ns/secretproviderclasses");
        assert_eq!(t.version, "v1alpha1");
        assert_eq!(t.name, None);
        let t = target("/api/v1/secrets");
        assert_eq!(t.namespace, None);
    }

    #[test]
    fn unknown_paths_and_missing_subresources_are_not_found() {
        let registry = registry();
        for path in [
            "/api/v2/pods",
            "/api/v1/namespaces/ns/widgets",
            "/api/v1/namespaces/ns/secrets/s/status",
            "/apis/secrets-store.csi.x-k8s.io/v1/namespaces/ns/secretproviderclasspodstatuses/x/status",
            "/api/v1/namespaces/ns/pods/p/status/extra",
            "/api/v1/pods/p",
            "/healthz",
        ] {
            assert_eq!(parse_path(&registry, path).unwrap_err().code, 404, "{path}");
        }
    }

    #[test]
    fn discovery_paths_parse() {
        let registry = registry();
        assert_eq!(parse_path(&registry, "/api").unwrap(), Route::CoreVersions);
        assert_eq!(parse_path(&registry, "/apis").unwrap(), Route::Groups);
        assert_eq!(
            parse_path(&registry, "/apis/events.k8s.io/v1").unwrap(),
            Route::Resources {
                group: "events.k8s.io".into(),
                version: "v1".into()
            }
        );
    }
}
