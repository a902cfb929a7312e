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

use crate::crd::{SecretProviderClass, SecretProviderClassPodStatus};

/// Attempts at updating a pod status that keeps changing under us.
const STATUS_UPDATE_TRIES: usize = 5;
/// How long a cache read waits for the class watch to have listed once.
const CACHE_WARMUP: Duration = Duration::from_secs(2);

/// Why a Kubernetes call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    /// The object does not exist.
    #[error("{namespace}/{name} not found")]
    NotFound {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// No API server is configured or reachable.
    #[error("{0}")]
    Unavailable(String),
    /// The API server refused the request.
    #[error("{0}")]
    Api(String),
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
}

/// Used when no Kubernetes API is configured: the CSI surface still works, and requests that
/// need the API fail with a clear Unavailable.
pub struct NoCluster(pub String);

#[async_trait]
impl Cluster for NoCluster {
    async fn secret_provider_class(
        &self,
        _: &str,
        _: &str,
    ) -> Result<SecretProviderClass, ClusterError> {
        Err(ClusterError::Unavailable(self.0.clone()))
    }
    async fn upsert_pod_status(&self, _: SecretProviderClassPodStatus) -> Result<(), ClusterError> {
        Err(ClusterError::Unavailable(self.0.clone()))
    }
}

/// The kube-rs implementation.
pub struct KubeCluster {
    client: kube::Client,
    classes: OnceCell<Store<SecretProviderClass>>,
}

impl KubeCluster {
    /// Wraps a client. The class watch starts on first use.
    pub fn new(client: kube::Client) -> Arc<Self> {
        Arc::new(Self {
            client,
            classes: OnceCell::new(),
        })
    }

    async fn class_store(&self) -> Store<SecretProviderClass> {
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
                            tracing::warn!(error = %e, "SecretProviderClass watch error; retrying");
                        }
                    }
                });
                reader
            })
            .await
            .clone()
    }
}

fn api_error(e: kube::Error) -> ClusterError {
    match &e {
        kube::Error::Api(status) => {
            ClusterError::Api(format!("{} ({})", status.message, status.code))
        }
        _ => ClusterError::Unavailable(e.to_string()),
    }
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

#[async_trait]
impl Cluster for KubeCluster {
    async fn secret_provider_class(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<SecretProviderClass, ClusterError> {
        let store = self.class_store().await;
        let _ = tokio::time::timeout(CACHE_WARMUP, store.wait_until_ready()).await;
        if let Some(found) = store.get(&ObjectRef::new(name).within(namespace)) {
            return Ok((*found).clone());
        }
        // A miss may just be a class created a moment ago: ask the API server directly.
        let api: Api<SecretProviderClass> = Api::namespaced(self.client.clone(), namespace);
        match api.get(name).await {
            Ok(c) => Ok(c),
            Err(e) if is_status(&e, 404) => Err(ClusterError::NotFound {
                namespace: namespace.into(),
                name: name.into(),
            }),
            Err(e) => Err(api_error(e)),
        }
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
            Err(e) => return Err(api_error(e)),
        }
        for _ in 0..STATUS_UPDATE_TRIES {
            let mut current = match api.get(&name).await {
                Ok(c) => c,
                Err(e) => return Err(api_error(e)),
            };
            current.status = status.status.clone();
            current.metadata.labels = status.metadata.labels.clone();
            current.metadata.owner_references = status.metadata.owner_references.clone();
            match api.replace(&name, &PostParams::default(), &current).await {
                Ok(_) => return Ok(()),
                Err(e) if is_status(&e, 409) => continue,
                Err(e) => return Err(api_error(e)),
            }
        }
        Err(ClusterError::Api(format!(
            "SecretProviderClassPodStatus {namespace}/{name} kept changing; gave up after {STATUS_UPDATE_TRIES} tries"
        )))
    }
}
