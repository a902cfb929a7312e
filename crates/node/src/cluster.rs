//! What the node needs from the Kubernetes API — read a SecretProviderClass, write a
//! SecretProviderClassPodStatus — behind a small trait, with the kube-rs implementation: a watch
//! cache of classes with a direct read on a cache miss (so a class created a moment ago is
//! found, unlike upstream #1436), and create-then-update of pod statuses with conflict retries.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use kube::api::{Api, PostParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::OnceCell;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};

use crate::crd::{MANAGED_LABEL, SecretProviderClass, SecretProviderClassPodStatus};

/// Kind of a Kubernetes event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// `Normal`.
    Normal,
    /// `Warning`.
    Warning,
}

impl EventType {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// What applying a synced Secret did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretOutcome {
    /// The Secret was created.
    Created,
    /// An existing managed Secret was updated (owners merged).
    Updated,
    /// Already up to date; nothing written.
    Unchanged,
    /// A Secret of that name exists without the managed label; left alone.
    NotManaged,
}

/// Attempts at updating a pod status that keeps changing under us.
const STATUS_UPDATE_TRIES: usize = 5;
/// How long a cache read waits for the class watch to have listed once.
const CACHE_WARMUP: Duration = Duration::from_secs(2);

/// Why a Kubernetes call failed, by what the API answered. The caller says which call it was;
/// the `kube::Error` stays the source, so the API server's own message reaches the edge.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The object does not exist (404).
    #[error("not found")]
    NotFound {
        /// The API's answer.
        #[source]
        source: kube::Error,
    },
    /// The API server did not accept the node's credentials (401), or the client could not
    /// produce any.
    #[error("unauthorized")]
    Unauthorized {
        /// The API's answer or the client's failure.
        #[source]
        source: kube::Error,
    },
    /// RBAC refused the node's service account (403).
    #[error("forbidden")]
    Forbidden {
        /// The API's answer.
        #[source]
        source: kube::Error,
    },
    /// The object changed under a write (409).
    #[error("conflict")]
    Conflict {
        /// The API's answer.
        #[source]
        source: kube::Error,
    },
    /// The object changed under every write attempted (409 each time).
    #[error("the object kept changing; gave up after {tries} tries")]
    KeptChanging {
        /// Writes attempted.
        tries: usize,
        /// The last conflict.
        #[source]
        source: kube::Error,
    },
    /// The API server rejected what the node sent (400, 422).
    #[error("rejected as invalid")]
    Invalid {
        /// The API's answer.
        #[source]
        source: kube::Error,
    },
    /// The API server could not serve the call now (408, 429, 5xx), or could not be reached.
    #[error("the Kubernetes API is unavailable")]
    Unavailable {
        /// The API's answer or the transport's failure.
        #[source]
        source: kube::Error,
    },
    /// Any other failure of the call (another status, an answer the client could not read).
    #[error("the Kubernetes API call failed")]
    Failed {
        /// The API's answer or the client's failure.
        #[source]
        source: kube::Error,
    },
    /// No Kubernetes API is configured ([`NoCluster`]).
    #[error("{reason}")]
    NotConfigured {
        /// Why (from the command line's client setup).
        reason: String,
    },
    /// The call did not finish in time.
    #[error("the Kubernetes API did not answer within {after:?}")]
    Timeout {
        /// The bound that passed.
        after: Duration,
    },
}

impl ClusterError {
    /// A short, closed name of the failure, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ClusterError::NotFound { .. } => "NotFound",
            ClusterError::Unauthorized { .. } => "Unauthorized",
            ClusterError::Forbidden { .. } => "Forbidden",
            ClusterError::Conflict { .. } => "Conflict",
            ClusterError::KeptChanging { .. } => "KeptChanging",
            ClusterError::Invalid { .. } => "Invalid",
            ClusterError::Unavailable { .. } => "Unavailable",
            ClusterError::Failed { .. } => "Failed",
            ClusterError::NotConfigured { .. } => "NotConfigured",
            ClusterError::Timeout { .. } => "Timeout",
        }
    }
}

impl From<kube::Error> for ClusterError {
    /// Sorts by the API status code, and transport failures apart from client-side ones.
    fn from(source: kube::Error) -> Self {
        match &source {
            kube::Error::Api(status) => match status.code {
                401 => ClusterError::Unauthorized { source },
                403 => ClusterError::Forbidden { source },
                404 => ClusterError::NotFound { source },
                409 => ClusterError::Conflict { source },
                400 | 422 => ClusterError::Invalid { source },
                408 | 429 | 500..=599 => ClusterError::Unavailable { source },
                _ => ClusterError::Failed { source },
            },
            kube::Error::Auth(_) => ClusterError::Unauthorized { source },
            kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => {
                ClusterError::Unavailable { source }
            }
            // Client-side failures: building the request, reading the answer, configuration.
            // (kube::Error's variant set depends on kube's features, so this arm stays open.)
            _ => ClusterError::Failed { source },
        }
    }
}

/// The node's view of the Kubernetes API.
#[async_trait]
pub trait Cluster: Send + Sync {
    /// A SecretProviderClass.
    async fn secret_provider_class(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<SecretProviderClass, ClusterError>;
    /// Creates the pod status, or replaces status, labels and owners of an existing one.
    async fn upsert_pod_status(
        &self,
        status: SecretProviderClassPodStatus,
    ) -> Result<(), ClusterError>;
    /// The owner references of a pod.
    async fn pod_owners(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Vec<OwnerReference>, ClusterError>;
    /// An owner reference to a pod status (used when the pod has no owners).
    async fn pod_status_owner(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<OwnerReference, ClusterError>;
    /// Creates a managed Secret, or updates one keyvol manages: data, labels and annotations
    /// replaced, owner references merged. A Secret without the managed label is not touched.
    async fn apply_secret(&self, secret: Secret) -> Result<SecretOutcome, ClusterError>;
    /// Records an event on a pod.
    async fn event(
        &self,
        namespace: &str,
        pod: &str,
        pod_uid: &str,
        kind: EventType,
        reason: &str,
        message: &str,
    ) -> Result<(), ClusterError>;
}

/// Used when no Kubernetes API is configured: the CSI surface still works, and requests that
/// need the API fail with a clear Unavailable.
pub struct NoCluster(pub String);

impl NoCluster {
    fn error(&self) -> ClusterError {
        ClusterError::NotConfigured {
            reason: self.0.clone(),
        }
    }
}

#[async_trait]
impl Cluster for NoCluster {
    async fn secret_provider_class(
        &self,
        _: &str,
        _: &str,
    ) -> Result<SecretProviderClass, ClusterError> {
        Err(self.error())
    }
    async fn upsert_pod_status(&self, _: SecretProviderClassPodStatus) -> Result<(), ClusterError> {
        Err(self.error())
    }
    async fn pod_owners(&self, _: &str, _: &str) -> Result<Vec<OwnerReference>, ClusterError> {
        Err(self.error())
    }
    async fn pod_status_owner(&self, _: &str, _: &str) -> Result<OwnerReference, ClusterError> {
        Err(self.error())
    }
    async fn apply_secret(&self, _: Secret) -> Result<SecretOutcome, ClusterError> {
        Err(self.error())
    }
    async fn event(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: EventType,
        _: &str,
        _: &str,
    ) -> Result<(), ClusterError> {
        Err(self.error())
    }
}

/// Idle connections to the API server kept for reuse. kube-rs speaks HTTP/1.1 to the API
/// server, so a burst of publishes opens one connection per request in flight; without a cap
/// every one of them stayed open (hyper's pool keeps any number) until its idle timeout.
const MAX_IDLE_API_CONNECTIONS: usize = 4;
/// How long an idle API connection is kept (the watch connection is never idle).
const API_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A kube-rs client for `config` whose connection pool is bounded ([`MAX_IDLE_API_CONNECTIONS`],
/// [`API_IDLE_TIMEOUT`]); otherwise what `kube::Client::try_from` builds: TLS with the
/// config's trust roots and credentials, its timeouts, base URI, auth (token refresh
/// included) and extra headers.
pub fn api_client(config: kube::Config) -> Result<kube::Client, kube::Error> {
    use kube::client::ConfigExt;
    let mut connector = hyper_timeout::TimeoutConnector::new(config.rustls_https_connector()?);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    let http: hyper_util::client::legacy::Client<_, kube::client::Body> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_max_idle_per_host(MAX_IDLE_API_CONNECTIONS)
            .pool_idle_timeout(API_IDLE_TIMEOUT)
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(connector);
    let service = tower::ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(tower::BoxError::from)
        .service(http);
    Ok(kube::Client::new(service, config.default_namespace))
}

/// The kube-rs implementation.
pub struct KubeCluster {
    client: kube::Client,
    classes: OnceCell<ClassCache>,
}

/// The watched SecretProviderClasses and whether the watch has listed once.
#[derive(Clone)]
struct ClassCache {
    store: Store<SecretProviderClass>,
    ready: Ready,
}

/// "The store has listed once", observable by any number of waiters. kube-runtime's own
/// `Store::wait_until_ready` wakes only the last of several concurrent waiters (its readiness is a
/// oneshot receiver, which keeps one waker), so on a fresh node all but one of a burst of publishes
/// would wait out [`CACHE_WARMUP`]; one task waits on the store and broadcasts instead.
#[derive(Clone)]
struct Ready(tokio::sync::watch::Receiver<bool>);

impl Ready {
    /// Starts the one task that waits for `store` to be ready.
    fn of<K>(store: &Store<K>) -> Self
    where
        K: kube::Resource + Clone + Send + Sync + 'static,
        K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
    {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let store = store.clone();
        tokio::spawn(async move {
            if store.wait_until_ready().await.is_ok() {
                let _ = tx.send(true);
            }
        });
        Self(rx)
    }

    /// Waits until ready, at most `limit`; true when ready.
    async fn wait(&self, limit: Duration) -> bool {
        let mut rx = self.0.clone();
        matches!(
            tokio::time::timeout(limit, rx.wait_for(|ready| *ready)).await,
            Ok(Ok(_))
        )
    }
}

impl KubeCluster {
    /// Wraps a client. The class watch starts on first use.
    pub fn new(client: kube::Client) -> Arc<Self> {
        Arc::new(Self {
            client,
            classes: OnceCell::new(),
        })
    }

    async fn class_store(&self) -> ClassCache {
        self.classes
            .get_or_init(|| async {
                let api: Api<SecretProviderClass> = Api::all(self.client.clone());
                let (reader, writer) = reflector::store();
                let stream = watcher(api, watcher::Config::default())
                    .default_backoff()
                    .reflect(writer)
                    .applied_objects();
                tokio::spawn(async move {
                    let mut stream = std::pin::pin!(stream);
                    while let Some(event) = stream.next().await {
                        if let Err(e) = event {
                            tracing::warn!(error = %keyvol_core::report::chain(&e), "SecretProviderClass watch error; retrying");
                        }
                    }
                });
                let ready = Ready::of(&reader);
                ClassCache {
                    store: reader,
                    ready,
                }
            })
            .await
            .clone()
    }
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

/// The error of a replace that ended a retry loop: the last of `tries` conflicts, or whatever
/// else the API answered.
fn kept_changing(e: kube::Error, tries: usize) -> ClusterError {
    if is_status(&e, 409) {
        ClusterError::KeptChanging { tries, source: e }
    } else {
        e.into()
    }
}

#[async_trait]
impl Cluster for KubeCluster {
    async fn secret_provider_class(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<SecretProviderClass, ClusterError> {
        let classes = self.class_store().await;
        classes.ready.wait(CACHE_WARMUP).await;
        if let Some(found) = classes.store.get(&ObjectRef::new(name).within(namespace)) {
            return Ok((*found).clone());
        }
        // A miss may just be a class created a moment ago: ask the API server directly.
        let api: Api<SecretProviderClass> = Api::namespaced(self.client.clone(), namespace);
        Ok(api.get(name).await?)
    }

    async fn upsert_pod_status(
        &self,
        status: SecretProviderClassPodStatus,
    ) -> Result<(), ClusterError> {
        let namespace = status.metadata.namespace.clone().unwrap_or_default();
        let name = status.metadata.name.clone().unwrap_or_default();
        let api: Api<SecretProviderClassPodStatus> =
            Api::namespaced(self.client.clone(), &namespace);
        match api.create(&PostParams::default(), &status).await {
            Ok(_) => return Ok(()),
            Err(e) if is_status(&e, 409) => {}
            Err(e) => return Err(e.into()),
        }
        let mut tries = 0;
        loop {
            tries += 1;
            let mut current = api.get(&name).await?;
            current.status = status.status.clone();
            current.metadata.labels = status.metadata.labels.clone();
            current.metadata.owner_references = status.metadata.owner_references.clone();
            match api.replace(&name, &PostParams::default(), &current).await {
                Ok(_) => return Ok(()),
                Err(e) if is_status(&e, 409) && tries < STATUS_UPDATE_TRIES => continue,
                Err(e) => return Err(kept_changing(e, tries)),
            }
        }
    }

    async fn pod_owners(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Vec<OwnerReference>, ClusterError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let pod = api.get(name).await?;
        Ok(pod.metadata.owner_references.unwrap_or_default())
    }

    async fn pod_status_owner(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<OwnerReference, ClusterError> {
        let api: Api<SecretProviderClassPodStatus> =
            Api::namespaced(self.client.clone(), namespace);
        let s = api.get(name).await?;
        Ok(OwnerReference {
            api_version: s.api_version.clone(),
            kind: s.kind.clone(),
            name: name.to_owned(),
            uid: s.metadata.uid.unwrap_or_default(),
            ..OwnerReference::default()
        })
    }

    async fn apply_secret(&self, secret: Secret) -> Result<SecretOutcome, ClusterError> {
        let namespace = secret.metadata.namespace.clone().unwrap_or_default();
        let name = secret.metadata.name.clone().unwrap_or_default();
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &namespace);
        match api.create(&PostParams::default(), &secret).await {
            Ok(_) => return Ok(SecretOutcome::Created),
            Err(e) if is_status(&e, 409) => {}
            Err(e) => return Err(e.into()),
        }
        let mut tries = 0;
        loop {
            tries += 1;
            let mut current = api.get(&name).await?;
            let managed = current
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(MANAGED_LABEL))
                .map(String::as_str)
                == Some("true");
            if !managed {
                return Ok(SecretOutcome::NotManaged);
            }
            let before = (
                current.data.clone(),
                current.metadata.labels.clone(),
                current.metadata.annotations.clone(),
                current.metadata.owner_references.clone(),
            );
            current.data = secret.data.clone();
            let mut labels = current.metadata.labels.take().unwrap_or_default();
            labels.extend(secret.metadata.labels.clone().unwrap_or_default());
            current.metadata.labels = Some(labels);
            if let Some(ann) = secret.metadata.annotations.clone() {
                let mut merged = current.metadata.annotations.take().unwrap_or_default();
                merged.extend(ann);
                current.metadata.annotations = Some(merged);
            }
            let mut owners = current.metadata.owner_references.take().unwrap_or_default();
            for o in secret.metadata.owner_references.clone().unwrap_or_default() {
                if !owners.iter().any(|e| e.uid == o.uid) {
                    owners.push(o);
                }
            }
            current.metadata.owner_references = Some(owners);
            if (
                current.data.clone(),
                current.metadata.labels.clone(),
                current.metadata.annotations.clone(),
                current.metadata.owner_references.clone(),
            ) == before
            {
                return Ok(SecretOutcome::Unchanged);
            }
            match api.replace(&name, &PostParams::default(), &current).await {
                Ok(_) => return Ok(SecretOutcome::Updated),
                Err(e) if is_status(&e, 409) && tries < STATUS_UPDATE_TRIES => continue,
                Err(e) => return Err(kept_changing(e, tries)),
            }
        }
    }

    async fn event(
        &self,
        namespace: &str,
        pod: &str,
        pod_uid: &str,
        kind: EventType,
        reason: &str,
        message: &str,
    ) -> Result<(), ClusterError> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        let event = Event {
            metadata: ObjectMeta {
                generate_name: Some(format!("{pod}.")),
                namespace: Some(namespace.to_owned()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(pod.to_owned()),
                namespace: Some(namespace.to_owned()),
                uid: Some(pod_uid.to_owned()),
                ..ObjectReference::default()
            },
            reason: Some(reason.to_owned()),
            message: Some(message.to_owned()),
            type_: Some(kind.as_str().into()),
            source: Some(EventSource {
                component: Some("csi-secrets-store-controller".into()),
                host: None,
            }),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            ..Event::default()
        };
        api.create(&PostParams::default(), &event)
            .await
            .map(|_| ())
            .map_err(ClusterError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A burst of class lookups on a fresh node: every waiter sees the store become ready, none
    /// waits out the warm-up (with kube-runtime's `wait_until_ready` alone, all but the last
    /// waiter polled would — time is paused, so a stuck waiter would run into the timeout).
    #[tokio::test(start_paused = true)]
    async fn every_concurrent_waiter_sees_the_class_store_become_ready() {
        let (reader, mut writer) = reflector::store::<SecretProviderClass>();
        let ready = Ready::of(&reader);
        let waiters: Vec<_> = (0..8)
            .map(|_| {
                let ready = ready.clone();
                tokio::spawn(async move {
                    let start = tokio::time::Instant::now();
                    let ok = ready.wait(CACHE_WARMUP).await;
                    (ok, start.elapsed())
                })
            })
            .collect();
        // Let every waiter register before the store lists.
        tokio::time::sleep(Duration::from_millis(10)).await;
        writer.apply_watcher_event(&watcher::Event::InitDone);
        for waiter in waiters {
            let (ok, waited) = waiter.await.expect("waiter");
            assert!(ok && waited < CACHE_WARMUP, "a waiter waited {waited:?}");
        }
        // And the control: the store's own readiness wakes only the last of several waiters; the
        // others sleep until their timeout wakes them (and then find the store ready).
        let (reader, mut writer) = reflector::store::<SecretProviderClass>();
        let direct: Vec<_> = (0..8)
            .map(|_| {
                let reader = reader.clone();
                tokio::spawn(async move {
                    let start = tokio::time::Instant::now();
                    let _ = tokio::time::timeout(CACHE_WARMUP, reader.wait_until_ready()).await;
                    start.elapsed()
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(10)).await;
        writer.apply_watcher_event(&watcher::Event::InitDone);
        let mut timed_out = 0;
        for waiter in direct {
            if waiter.await.expect("waiter") >= CACHE_WARMUP {
                timed_out += 1;
            }
        }
        assert!(
            timed_out > 0,
            "kube-runtime now wakes every waiter: Ready can go"
        );
    }
}
