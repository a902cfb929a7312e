//! Prometheus metrics with upstream's names and labels (the driver's `node_publish_total`,
//! `node_publish_error_total`, `node_unpublish_total`, `node_unpublish_error_total`,
//! `rotation_reconcile_total`, `rotation_reconcile_error_total`,
//! `rotation_reconcile_duration_sec`, `sync_k8s_secret_total`, `k8s_secret_duration_sec`; the
//! Azure provider's `keyvault_request`), plus keyvol's latency histograms. Label values come
//! from closed sets (provider names, error codes) or object names, never from error text
//! (upstream's `keyvault_request` put whole error strings in its `error` label).

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// `os_type` label value.
pub const OS_TYPE: &str = "linux";

/// Upstream's buckets: `ExponentialBucketsRange(0.1, 2, 11)`, 11 bounds from 0.1 s to 2 s.
fn upstream_buckets() -> Vec<f64> {
    let factor = (2.0f64 / 0.1).powf(1.0 / 10.0);
    (0..11).map(|i| 0.1 * factor.powi(i)).collect()
}

/// Finer buckets for keyvol's own latency histograms (5 ms to ~80 s).
fn latency_buckets() -> Vec<f64> {
    (0..15).map(|i| 0.005 * 2f64.powi(i)).collect()
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
    os_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderErrorLabels {
    provider: String,
    error_type: String,
    os_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OsLabels {
    os_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RotationLabels {
    provider: String,
    os_type: String,
    rotated: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RotationErrorLabels {
    provider: String,
    error_type: String,
    os_type: String,
    rotated: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VaultRequestLabels {
    object_type: String,
    object_name: String,
    /// The error code, empty on success.
    error: String,
    provider: String,
    os_type: String,
}

/// Buckets of the Azure provider's `keyvault_request` (seconds), as upstream.
const VAULT_REQUEST_BUCKETS: [f64; 14] = [
    0.1, 0.2, 0.3, 0.4, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0, 10.0, 15.0, 30.0,
];

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The node's metrics.
pub struct Metrics {
    registry: Registry,
    publish: Family<ProviderLabels, Counter>,
    publish_error: Family<ProviderErrorLabels, Counter>,
    unpublish: Family<OsLabels, Counter>,
    unpublish_error: Family<OsLabels, Counter>,
    rotation: Family<RotationLabels, Counter>,
    rotation_error: Family<RotationErrorLabels, Counter>,
    rotation_duration: HistogramFamily<OsLabels>,
    publish_duration: HistogramFamily<ProviderLabels>,
    sync_secret: Family<ProviderLabels, Counter>,
    sync_duration: HistogramFamily<OsLabels>,
    vault_request: HistogramFamily<VaultRequestLabels>,
}

impl Metrics {
    /// Registers every metric of `keyvol node`.
    pub fn new() -> Arc<Self> {
        Self::build(true)
    }

    /// The metrics `keyvol provider` serves: only the provider's `keyvault_request`.
    pub fn for_provider() -> Arc<Self> {
        Self::build(false)
    }

    fn build(node: bool) -> Arc<Self> {
        let mut registry = Registry::default();
        let publish = Family::<ProviderLabels, Counter>::default();
        let publish_error = Family::<ProviderErrorLabels, Counter>::default();
        let unpublish = Family::<OsLabels, Counter>::default();
        let unpublish_error = Family::<OsLabels, Counter>::default();
        let rotation = Family::<RotationLabels, Counter>::default();
        let rotation_error = Family::<RotationErrorLabels, Counter>::default();
        let rotation_duration: HistogramFamily<OsLabels> =
            Family::new_with_constructor(|| Histogram::new(upstream_buckets()));
        let publish_duration: HistogramFamily<ProviderLabels> =
            Family::new_with_constructor(|| Histogram::new(latency_buckets()));
        let sync_secret = Family::<ProviderLabels, Counter>::default();
        let sync_duration: HistogramFamily<OsLabels> =
            Family::new_with_constructor(|| Histogram::new(upstream_buckets()));
        let vault_request: HistogramFamily<VaultRequestLabels> =
            Family::new_with_constructor(|| Histogram::new(VAULT_REQUEST_BUCKETS));
        registry.register(
            "keyvault_request",
            "Distribution of how long Key Vault requests took",
            vault_request.clone(),
        );
        if node {
            Self::register_node(
                &mut registry,
                [&publish, &sync_secret],
                &publish_error,
                [&unpublish, &unpublish_error],
                &rotation,
                &rotation_error,
                [&rotation_duration, &sync_duration],
                &publish_duration,
            );
        }
        Arc::new(Self {
            registry,
            publish,
            publish_error,
            unpublish,
            unpublish_error,
            rotation,
            rotation_error,
            rotation_duration,
            publish_duration,
            sync_secret,
            sync_duration,
            vault_request,
        })
    }

    /// The driver's metrics, under upstream's names.
    #[allow(clippy::too_many_arguments)]
    fn register_node(
        registry: &mut Registry,
        [publish, sync_secret]: [&Family<ProviderLabels, Counter>; 2],
        publish_error: &Family<ProviderErrorLabels, Counter>,
        [unpublish, unpublish_error]: [&Family<OsLabels, Counter>; 2],
        rotation: &Family<RotationLabels, Counter>,
        rotation_error: &Family<RotationErrorLabels, Counter>,
        [rotation_duration, sync_duration]: [&HistogramFamily<OsLabels>; 2],
        publish_duration: &HistogramFamily<ProviderLabels>,
    ) {
        registry.register(
            "node_publish",
            "Total number of node publish calls",
            publish.clone(),
        );
        registry.register(
            "node_publish_error",
            "Total number of node publish calls with error",
            publish_error.clone(),
        );
        registry.register(
            "node_unpublish",
            "Total number of node unpublish calls",
            unpublish.clone(),
        );
        registry.register(
            "node_unpublish_error",
            "Total number of node unpublish calls with error",
            unpublish_error.clone(),
        );
        registry.register(
            "rotation_reconcile",
            "Total number of rotation reconciles",
            rotation.clone(),
        );
        registry.register(
            "rotation_reconcile_error",
            "Total number of rotation reconciles with error",
            rotation_error.clone(),
        );
        registry.register(
            "rotation_reconcile_duration_sec",
            "Distribution of how long it took to rotate secrets-store content for pods",
            rotation_duration.clone(),
        );
        registry.register(
            "keyvol_node_publish_duration_seconds",
            "Time to serve a NodePublishVolume that reached the provider",
            publish_duration.clone(),
        );
        registry.register(
            "sync_k8s_secret",
            "Total number of Kubernetes Secrets synced from mounted content",
            sync_secret.clone(),
        );
        registry.register(
            "k8s_secret_duration_sec",
            "Distribution of how long it took to sync Kubernetes Secrets for a volume",
            sync_duration.clone(),
        );
    }

    /// A publish succeeded (or was skipped).
    pub fn publish_ok(&self, provider: &str) {
        self.publish
            .get_or_create(&ProviderLabels {
                provider: provider.into(),
                os_type: OS_TYPE.into(),
            })
            .inc();
    }

    /// A publish failed.
    pub fn publish_error(&self, provider: &str, error_type: &str) {
        self.publish_error
            .get_or_create(&ProviderErrorLabels {
                provider: provider.into(),
                error_type: error_type.into(),
                os_type: OS_TYPE.into(),
            })
            .inc();
    }

    /// Time of a publish that reached the provider.
    pub fn publish_duration(&self, provider: &str, d: Duration) {
        self.publish_duration
            .get_or_create(&ProviderLabels {
                provider: provider.into(),
                os_type: OS_TYPE.into(),
            })
            .observe(d.as_secs_f64());
    }

    /// An unpublish, successful or not.
    pub fn unpublish(&self, ok: bool) {
        let l = OsLabels {
            os_type: OS_TYPE.into(),
        };
        if ok {
            self.unpublish.get_or_create(&l).inc();
        } else {
            self.unpublish_error.get_or_create(&l).inc();
        }
    }

    /// A rotation (remount) reconcile.
    pub fn rotation(&self, provider: &str, rotated: bool, d: Duration) {
        self.rotation
            .get_or_create(&RotationLabels {
                provider: provider.into(),
                os_type: OS_TYPE.into(),
                rotated: rotated.to_string(),
            })
            .inc();
        self.rotation_duration
            .get_or_create(&OsLabels {
                os_type: OS_TYPE.into(),
            })
            .observe(d.as_secs_f64());
    }

    /// A failed rotation.
    pub fn rotation_error(&self, provider: &str, error_type: &str) {
        self.rotation_error
            .get_or_create(&RotationErrorLabels {
                provider: provider.into(),
                error_type: error_type.into(),
                os_type: OS_TYPE.into(),
                rotated: "false".into(),
            })
            .inc();
    }

    /// Secrets synced for one volume, and how long that took.
    pub fn synced(&self, provider: &str, secrets: usize, d: Duration) {
        if secrets > 0 {
            self.sync_secret
                .get_or_create(&ProviderLabels {
                    provider: provider.into(),
                    os_type: OS_TYPE.into(),
                })
                .inc_by(secrets as u64);
        }
        self.sync_duration
            .get_or_create(&OsLabels {
                os_type: OS_TYPE.into(),
            })
            .observe(d.as_secs_f64());
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl keyvol_core::RequestObserver for Metrics {
    fn request(
        &self,
        object_type: &'static str,
        object_name: &str,
        elapsed: Duration,
        error: Option<&'static str>,
    ) {
        self.vault_request
            .get_or_create(&VaultRequestLabels {
                object_type: object_type.into(),
                object_name: object_name.into(),
                error: error.unwrap_or_default().into(),
                provider: "azure".into(),
                os_type: OS_TYPE.into(),
            })
            .observe(elapsed.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_upstream() {
        let m = Metrics::new();
        m.publish_ok("azure");
        m.publish_error("azure", "SecretProviderClassNotFound");
        m.unpublish(true);
        m.unpublish(false);
        m.rotation("azure", true, Duration::from_millis(300));
        m.synced("azure", 2, Duration::from_millis(40));
        keyvol_core::RequestObserver::request(
            m.as_ref(),
            "secret",
            "db-password",
            Duration::from_millis(20),
            Some("Forbidden"),
        );
        let text = m.encode();
        for name in [
            "node_publish_total{provider=\"azure\",os_type=\"linux\"} 1",
            "node_publish_error_total{provider=\"azure\",error_type=\"SecretProviderClassNotFound\",os_type=\"linux\"} 1",
            "node_unpublish_total{os_type=\"linux\"} 1",
            "node_unpublish_error_total{os_type=\"linux\"} 1",
            "rotation_reconcile_total{provider=\"azure\",os_type=\"linux\",rotated=\"true\"} 1",
            "rotation_reconcile_duration_sec_bucket",
            "sync_k8s_secret_total{provider=\"azure\",os_type=\"linux\"} 2",
            "k8s_secret_duration_sec_bucket",
            "keyvault_request_count{object_type=\"secret\",object_name=\"db-password\",error=\"Forbidden\",provider=\"azure\",os_type=\"linux\"} 1",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
        let provider = Metrics::for_provider();
        keyvol_core::RequestObserver::request(
            provider.as_ref(),
            "key",
            "k1",
            Duration::from_millis(5),
            None,
        );
        provider.publish_ok("azure");
        let text = provider.encode();
        assert!(
            text.contains("keyvault_request") && !text.contains("node_publish"),
            "{text}"
        );
        let buckets = upstream_buckets();
        assert!((buckets[0] - 0.1).abs() < 1e-9 && (buckets[10] - 2.0).abs() < 1e-9);
    }
}
