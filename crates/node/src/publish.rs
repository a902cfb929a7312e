//! NodePublishVolume and NodeUnpublishVolume: the node's state (providers, cluster, locks,
//! metrics) and the two flows. All or nothing: `keyvol_core::volume::publish` hands back an
//! uncommitted publication, committed only once the pod status is recorded — an error or a
//! dropped call (kubelet's deadline) before that unmounts a volume this call mounted; a
//! republish that fails keeps the files already there.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use keyvol_core::provider::DEFAULT_FILE_MODE;
use keyvol_core::report;
use keyvol_core::volume::{self, Backing, PublishError, TargetState, Unpublished};
use keyvol_core::{MountRequest, ObjectVersion};

use crate::cluster::{Cluster, ClusterError};
use crate::crd::{
    NODE_LABEL, SecretProviderClassObject, SecretProviderClassPodStatus,
    SecretProviderClassPodStatusStatus, pod_status_name,
};
use crate::error::NodeError;
use crate::locks::VolumeLocks;
use crate::metrics::Metrics;
use crate::providers::Providers;
use crate::registry::Registry;
use crate::request::{PublishRequest, SA_TOKENS};

/// Deadline of one Kubernetes API call on the publish path. kube-rs retries 429/503/504 on its
/// own with growing delays; without a bound those retries could eat kubelet's whole two minutes.
const API_CALL_TIMEOUT: Duration = Duration::from_secs(20);

async fn bounded<T>(
    call: impl std::future::Future<Output = Result<T, ClusterError>>,
) -> Result<T, ClusterError> {
    match tokio::time::timeout(API_CALL_TIMEOUT, call).await {
        Ok(r) => r,
        Err(_) => Err(ClusterError::Timeout {
            after: API_CALL_TIMEOUT,
        }),
    }
}

/// How the node behaves (from the command line).
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// CSI driver name (`--drivername`).
    pub driver_name: String,
    /// Node name (`--nodeid`).
    pub node_id: String,
    /// `--enable-secret-rotation`: republishes of mounted volumes re-fetch.
    pub enable_secret_rotation: bool,
    /// `--rotation-poll-interval`: minimum age of a volume's content before a republish re-fetches.
    pub rotation_poll_interval: Duration,
    /// Size cap of each volume's tmpfs, bytes.
    pub tmpfs_size_bytes: Option<u64>,
    /// keyvol's own rotation loop (upstream v1.5's model) for clusters without republish:
    /// every this often, each volume mounted by this process is refreshed.
    pub rotation_loop: Option<Duration>,
}

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishOutcome {
    /// Files were fetched and written into a new mount.
    Mounted,
    /// A refresh re-fetched; `changed` when the content was swapped (not already current).
    Refreshed {
        /// True when new content was written.
        changed: bool,
    },
    /// Already mounted and not due for refresh.
    SkippedNotDue,
    /// A republish failed; the previous files stay (upstream masks these errors, kubernetes#121271).
    KeptAfterError,
}

impl PublishOutcome {
    /// The outcome as logs and events name it.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Mounted => "mounted",
            Self::Refreshed { changed: true } => "rotated",
            Self::Refreshed { changed: false } => "unchanged",
            Self::SkippedNotDue => "already-mounted",
            Self::KeptAfterError => "kept-current-files-after-error",
        }
    }
}

/// Everything the node service shares between requests.
pub struct NodeState {
    /// Configuration.
    pub config: NodeConfig,
    /// Provider lookup.
    pub providers: Providers,
    /// The Kubernetes API.
    pub cluster: Arc<dyn Cluster>,
    /// Per-volume locks.
    pub locks: VolumeLocks,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Volumes this process mounted, for the rotation loop.
    pub registry: Registry,
}

impl NodeState {
    /// Serves one NodePublishVolume and counts it.
    pub async fn publish(&self, req: PublishRequest) -> Result<PublishOutcome, NodeError> {
        let mut provider = String::new();
        let snapshot = self.config.rotation_loop.is_some().then(|| req.clone());
        let who = LogContext::of(&req);
        let result = self.publish_inner(req, &mut provider, false).await;
        who.log("node publish volume", &result);
        if let (Some(snapshot), Ok(PublishOutcome::Mounted | PublishOutcome::Refreshed { .. })) =
            (snapshot, &result)
        {
            self.registry.register(snapshot);
        }
        match &result {
            Ok(PublishOutcome::KeptAfterError) => {}
            Ok(_) => self.metrics.publish_ok(&provider),
            Err(e) => self.metrics.publish_error(&provider, e.code()),
        }
        result
    }

    /// A refresh from the rotation loop: re-fetch now, whatever the republish settings say.
    pub async fn refresh(&self, req: PublishRequest) -> Result<PublishOutcome, NodeError> {
        let mut provider = String::new();
        let who = LogContext::of(&req);
        let result = self.publish_inner(req, &mut provider, true).await;
        who.log("rotation", &result);
        result
    }

    async fn publish_inner(
        &self,
        req: PublishRequest,
        provider_label: &mut String,
        force_refresh: bool,
    ) -> Result<PublishOutcome, NodeError> {
        let _guard = self.locks.lock(&req.volume_id).await;
        // Published = a tmpfs with a completed write. A tmpfs left empty by a publish that was
        // killed or cancelled is not: it is fetched into again.
        let mounted = inspect(&req.target_path).await?.is_published();
        if force_refresh && !mounted {
            return Err(NodeError::InvalidArgument(format!(
                "{} is no longer mounted",
                req.target_path.display()
            )));
        }
        if mounted && !force_refresh && !self.config.enable_secret_rotation {
            // Idempotent publish: the volume is there and rotation is off.
            return Ok(PublishOutcome::SkippedNotDue);
        }
        let class = bounded(
            self.cluster
                .secret_provider_class(&req.pod_namespace, &req.class_name),
        )
        .await
        .map_err(|source| NodeError::GetClass {
            namespace: req.pod_namespace.clone(),
            name: req.class_name.clone(),
            source,
        })?;
        if mounted
            && !force_refresh
            && !due_for_refresh(
                &req.target_path,
                rotation_interval(&class, self.config.rotation_poll_interval),
            )
        {
            return Ok(PublishOutcome::SkippedNotDue);
        }
        tracing::debug!("fetching: {}", req.summary());

        let provider_name = class.spec.provider.clone();
        provider_label.clone_from(&provider_name);
        if provider_name.is_empty() {
            return Err(NodeError::InvalidClass(format!(
                "SecretProviderClass {}/{} has no spec.provider",
                req.pod_namespace, req.class_name
            )));
        }
        if class.spec.parameters.is_empty() {
            return Err(NodeError::InvalidClass(format!(
                "SecretProviderClass {}/{} has no spec.parameters",
                req.pod_namespace, req.class_name
            )));
        }
        let provider = self.providers.get(&provider_name)?;

        // Class parameters, then the whole volume context over them (upstream's merge), and the
        // service-account tokens wherever kubelet put them.
        let mut attributes: BTreeMap<String, String> = class.spec.parameters.clone();
        attributes.extend(req.volume_context.clone());
        if let Some(tokens) = req.secrets.get(SA_TOKENS) {
            attributes.insert(SA_TOKENS.into(), tokens.expose().clone());
        }
        let request = MountRequest {
            attributes,
            secrets: req.secrets.clone(),
            default_mode: DEFAULT_FILE_MODE,
            target_path: req.target_path.display().to_string(),
            current_versions: Vec::new(),
        };
        let started = Instant::now();
        let backing = Backing::Tmpfs {
            size_bytes: self.config.tmpfs_size_bytes,
        };
        let publication = match volume::publish_for_group(
            provider.as_ref(),
            request,
            &req.target_path,
            backing,
            req.mount_group,
        )
        .await
        {
            Ok(p) => p,
            Err(e) if mounted => {
                let err = NodeError::from(e);
                self.metrics.rotation_error(&provider_name, err.code());
                self.metrics.publish_error(&provider_name, err.code());
                tracing::warn!(error = %report::chain(&err), "republish failed; keeping the current files: {}", req.summary());
                return Ok(PublishOutcome::KeptAfterError);
            }
            Err(e) => return Err(e.into()),
        };
        self.metrics
            .publish_duration(&provider_name, started.elapsed());

        let status = pod_status(
            &self.config.node_id,
            &req,
            &publication.published().object_versions,
        );
        let status_name = pod_status_name(&req.pod_name, &req.pod_namespace, &req.class_name);
        if let Err(source) = bounded(self.cluster.upsert_pod_status(status)).await {
            let e = NodeError::PodStatus {
                namespace: req.pod_namespace.clone(),
                name: status_name,
                source,
            };
            // Dropping the uncommitted publication unmounts a volume this call mounted (a
            // republish keeps its files).
            drop(publication);
            if mounted {
                tracing::warn!(error = %report::chain(&e), "republish could not update the pod status: {}", req.summary());
                return Ok(PublishOutcome::KeptAfterError);
            }
            return Err(e);
        }
        // From here on the volume stays: files written, pod status recorded.
        let published = publication.commit();
        let sync = crate::sync::sync_secrets(
            self.cluster.as_ref(),
            &class,
            &req.pod_namespace,
            &req.pod_name,
            &req.pod_uid,
            &status_name,
            &req.target_path,
        );
        let sync_started = Instant::now();
        let report = match tokio::time::timeout(API_CALL_TIMEOUT, sync).await {
            Ok(report) => report,
            Err(_) => {
                tracing::warn!(
                    "secret sync did not finish within {API_CALL_TIMEOUT:?}: {}",
                    req.summary()
                );
                crate::sync::SyncReport::default()
            }
        };
        if !class.spec.secret_objects.is_empty() {
            self.metrics
                .synced(&provider_name, report.synced, sync_started.elapsed());
        }
        if !report.errors.is_empty() {
            tracing::warn!(
                failed = report.errors.len(),
                "some secretObjects were not synced: {}",
                req.summary()
            );
        }
        if mounted {
            let rotated = matches!(published.write, keyvol_core::WriteOutcome::Written { .. });
            self.metrics
                .rotation(&provider_name, rotated, started.elapsed());
            Ok(PublishOutcome::Refreshed { changed: rotated })
        } else {
            tracing::debug!(files = published.files.len(), "wrote: {}", req.summary());
            Ok(PublishOutcome::Mounted)
        }
    }

    /// Serves one NodeUnpublishVolume: unmount and remove, idempotent, from the mount table.
    pub async fn unpublish(&self, volume_id: &str, target: &Path) -> Result<(), NodeError> {
        let _guard = self.locks.lock(volume_id).await;
        self.registry.forget(volume_id);
        let owned = target.to_path_buf();
        let result = tokio::task::spawn_blocking(move || volume::unpublish(&owned))
            .await
            .unwrap_or_else(|_| {
                Err(PublishError::Blocking {
                    path: target.to_path_buf(),
                })
            });
        match result {
            Ok(outcome) => {
                let outcome = match outcome {
                    Unpublished::AlreadyClean => "already-clean",
                    Unpublished::Unmounted => "unmounted",
                    Unpublished::Removed => "removed",
                };
                tracing::info!(volume = volume_id, target = %target.display(), outcome, "node unpublish volume");
                Ok(())
            }
            Err(e) => {
                let err = NodeError::from(e);
                tracing::warn!(volume = volume_id, target = %target.display(), outcome = "failed", error = %report::chain(&err), "node unpublish volume");
                Err(err)
            }
        }
    }
}

/// Who a publish or refresh was for, kept for its one log line (names only, never values).
struct LogContext {
    pod: String,
    namespace: String,
    class: String,
    volume: String,
}

impl LogContext {
    fn of(req: &PublishRequest) -> Self {
        Self {
            pod: req.pod_name.clone(),
            namespace: req.pod_namespace.clone(),
            class: req.class_name.clone(),
            volume: req.volume_id.clone(),
        }
    }

    /// The one line a publish or refresh logs: info when it ended well, warning otherwise.
    fn log(&self, what: &str, result: &Result<PublishOutcome, NodeError>) {
        let (pod, namespace, class, volume) =
            (&self.pod, &self.namespace, &self.class, &self.volume);
        match result {
            // The warning with the cause was logged where the refresh failed.
            Ok(outcome) => tracing::info!(
                pod,
                namespace,
                class,
                volume,
                outcome = outcome.label(),
                "{what}"
            ),
            Err(e) => tracing::warn!(
                pod, namespace, class, volume, outcome = "failed", error = %report::chain(e), "{what}"
            ),
        }
    }
}

/// What is at a target (off the async runtime: it reads the mount table and the directory).
async fn inspect(target: &Path) -> Result<TargetState, NodeError> {
    let owned = target.to_path_buf();
    tokio::task::spawn_blocking(move || volume::inspect(&owned))
        .await
        .unwrap_or_else(|_| {
            Err(PublishError::Blocking {
                path: target.to_path_buf(),
            })
        })
        .map_err(NodeError::from)
}

/// Annotation on a SecretProviderClass that overrides `--rotation-poll-interval` for its
/// volumes (a duration such as `30s` or `10m`); upstream has one global interval (#322).
pub const ROTATION_INTERVAL_ANNOTATION: &str = "keyvol.dev/rotation-poll-interval";

/// The class's own interval, when it sets a valid one.
fn rotation_interval(class: &crate::crd::SecretProviderClass, default: Duration) -> Duration {
    let Some(text) = class
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ROTATION_INTERVAL_ANNOTATION))
    else {
        return default;
    };
    match humantime::parse_duration(text.trim()) {
        Ok(d) => d,
        Err(_) => {
            tracing::warn!(annotation = ROTATION_INTERVAL_ANNOTATION, value = %text, "not a duration; using --rotation-poll-interval");
            default
        }
    }
}

/// Upstream v1.6's rule: content older than the poll interval (by the target's mtime, which the
/// atomic writer bumps on every swap) is due for a refresh.
fn due_for_refresh(target: &Path, interval: Duration) -> bool {
    match std::fs::metadata(target).and_then(|m| m.modified()) {
        Ok(mtime) => SystemTime::now()
            .duration_since(mtime)
            .map(|age| age >= interval)
            .unwrap_or(true),
        Err(_) => true,
    }
}

fn pod_status(
    node_id: &str,
    req: &PublishRequest,
    versions: &[ObjectVersion],
) -> SecretProviderClassPodStatus {
    let mut objects: Vec<SecretProviderClassObject> = versions
        .iter()
        .map(|v| SecretProviderClassObject {
            id: v.id.clone(),
            version: v.version.clone(),
        })
        .collect();
    objects.sort();
    SecretProviderClassPodStatus {
        api_version: format!("{}/v1", crate::crd::GROUP),
        kind: "SecretProviderClassPodStatus".into(),
        metadata: ObjectMeta {
            name: Some(pod_status_name(
                &req.pod_name,
                &req.pod_namespace,
                &req.class_name,
            )),
            namespace: Some(req.pod_namespace.clone()),
            labels: Some(BTreeMap::from([(
                NODE_LABEL.to_owned(),
                node_id.to_owned(),
            )])),
            owner_references: (!req.pod_uid.is_empty()).then(|| {
                vec![OwnerReference {
                    api_version: "v1".into(),
                    kind: "Pod".into(),
                    name: req.pod_name.clone(),
                    uid: req.pod_uid.clone(),
                    ..OwnerReference::default()
                }]
            }),
            ..ObjectMeta::default()
        },
        status: SecretProviderClassPodStatusStatus {
            pod_name: req.pod_name.clone(),
            secret_provider_class_name: req.class_name.clone(),
            mounted: true,
            target_path: req.target_path.display().to_string(),
            objects,
        },
    }
}
