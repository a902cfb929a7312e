//! `keyvol node`, `keyvol provider` and `keyvol crd`: flags with upstream's names and defaults,
//! turned into the node crate's configuration.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use keyvol_azure::AzureProvider;
use keyvol_core::Provider;
use keyvol_node::cluster::{Cluster, KubeCluster, NoCluster};
use keyvol_node::publish::NodeConfig;
use keyvol_node::server::{
    NodeServerConfig, ProviderServerConfig, RegistrationConfig, run_node, run_provider,
};

use crate::azure_flags::AzureFlags;
use keyvol_cli::Failure;

/// Arguments of `keyvol node` (upstream driver flags first).
#[derive(clap::Args, Debug)]
pub struct NodeArgs {
    /// CSI endpoint.
    #[arg(long, env = "CSI_ENDPOINT", default_value = "unix://tmp/csi.sock")]
    pub endpoint: String,
    /// CSI driver name.
    #[arg(long, default_value = "secrets-store.csi.k8s.io")]
    pub drivername: String,
    /// Node name.
    #[arg(long, env = "KUBE_NODE_NAME", default_value = "")]
    pub nodeid: String,
    /// Directory of provider sockets.
    #[arg(long, default_value = "/var/run/secrets-store-csi-providers")]
    pub provider_volume: PathBuf,
    /// More provider socket directories, comma-separated, searched first.
    #[arg(long, default_value = "/etc/kubernetes/secrets-store-csi-providers")]
    pub additional_provider_volume_paths: String,
    /// Prometheus endpoint; empty disables.
    #[arg(long, default_value = ":8095")]
    pub metrics_addr: String,
    /// Only Prometheus is supported.
    #[arg(long, default_value = "Prometheus")]
    pub metrics_backend: String,
    /// Re-fetch on kubelet republish once content is older than --rotation-poll-interval.
    #[arg(long)]
    pub enable_secret_rotation: bool,
    /// keyvol's own rotation loop (upstream v1.5's model) for clusters whose CSIDriver lacks
    /// requiresRepublish: refresh every mounted volume this often. Off by default.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub rotation_loop_interval: Option<Duration>,
    /// Minimum age of mounted content before a republish re-fetches.
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    pub rotation_poll_interval: Duration,
    /// Largest provider response accepted, bytes.
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    pub max_call_recv_msg_size: usize,
    /// Check external providers with the Version RPC.
    #[arg(long)]
    pub provider_health_check: bool,
    /// Interval of provider health checks.
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    pub provider_health_check_interval: Duration,
    /// Accepted for compatibility; pprof is not served.
    #[arg(long)]
    pub enable_pprof: bool,
    /// Accepted for compatibility.
    #[arg(long, default_value_t = 6065)]
    pub pprof_port: u16,
    /// CSI socket path as kubelet sees it, announced in plugin registration.
    #[arg(
        long,
        default_value = "/var/lib/kubelet/plugins/csi-secrets-store/csi.sock"
    )]
    pub kubelet_registration_path: String,
    /// kubelet's plugin registry directory; empty disables built-in registration (when a
    /// node-driver-registrar sidecar is used).
    #[arg(long, default_value = "/var/lib/kubelet/plugins_registry")]
    pub plugin_registration_dir: String,
    /// `/healthz` endpoint (replaces the livenessprobe sidecar); empty disables.
    #[arg(long, default_value = ":9808")]
    pub health_addr: String,
    /// Size cap of each volume's tmpfs, bytes (upstream mounts without a cap).
    #[arg(long)]
    pub tmpfs_size: Option<u64>,
    /// Deadline of an external provider's Mount call.
    #[arg(long, default_value = "100s", value_parser = humantime::parse_duration)]
    pub provider_timeout: Duration,
    /// Removed upstream (v1.1.0); accepted and ignored so old manifests still start.
    #[arg(long, hide = true)]
    pub filtered_watch_secret: bool,
    /// Accepted and ignored (upstream charts of v0.0.8+ may render it; it never gated
    /// anything keyvol does).
    #[arg(long, hide = true)]
    pub min_provider_version: Option<String>,
    /// Kubeconfig to use instead of the in-cluster configuration.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// The built-in azure provider.
    #[command(flatten)]
    pub azure: AzureFlags,
}

/// Arguments of `keyvol provider` (upstream Azure provider flags).
#[derive(clap::Args, Debug)]
pub struct ProviderArgs {
    /// Provider socket.
    #[arg(long, default_value = "unix:///tmp/azure.sock")]
    pub endpoint: String,
    /// Port of `/healthz`; 0 disables.
    #[arg(long, default_value_t = 8989)]
    pub healthz_port: u16,
    /// Accepted for compatibility (the path is `/healthz`).
    #[arg(long, default_value = "/healthz")]
    pub healthz_path: String,
    /// Accepted for compatibility.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub healthz_timeout: Duration,
    /// Only Prometheus is supported.
    #[arg(long, default_value = "Prometheus")]
    pub metrics_backend: String,
    /// Port of `/metrics` (the provider's `keyvault_request`); 0 disables.
    #[arg(long, default_value_t = 8898)]
    pub prometheus_port: u16,
    /// Accepted for compatibility: upstream stopped sending it with any request (a no-op there
    /// too).
    #[arg(long, default_value = "")]
    pub custom_user_agent: String,
    /// Accepted for compatibility; pprof is not served.
    #[arg(long)]
    pub enable_pprof: bool,
    /// Accepted for compatibility.
    #[arg(long, default_value_t = 6060)]
    pub pprof_port: u16,
    /// The provider.
    #[command(flatten)]
    pub azure: AzureFlags,
}

/// `unix:///csi/csi.sock` → `/csi/csi.sock`; upstream's default `unix://tmp/csi.sock` means `/tmp/csi.sock`.
pub fn socket_path(endpoint: &str) -> Result<PathBuf, Failure> {
    let rest = endpoint.strip_prefix("unix://").ok_or_else(|| {
        Failure::input(format!(
            "--endpoint {endpoint:?}: only unix:// endpoints are supported"
        ))
    })?;
    if rest.is_empty() {
        return Err(Failure::input("--endpoint: the socket path is empty"));
    }
    Ok(if rest.starts_with('/') {
        PathBuf::from(rest)
    } else {
        PathBuf::from(format!("/{rest}"))
    })
}

/// Go-style listen addresses: `:8095` means every interface.
pub fn listen_addr(flag: &str, value: &str) -> Result<Option<SocketAddr>, Failure> {
    if value.is_empty() {
        return Ok(None);
    }
    let full = if value.starts_with(':') {
        format!("0.0.0.0{value}")
    } else {
        value.to_owned()
    };
    full.parse()
        .map(Some)
        .map_err(|_| Failure::input(format!("--{flag} {value:?} is not host:port")))
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// Largest kubeconfig read (they hold a few certificates; 1 MiB leaves room for many contexts).
const MAX_KUBECONFIG_BYTES: u64 = 1024 * 1024;

/// Reads a kubeconfig with a size cap; errors never hold its contents (it carries credentials).
fn read_kubeconfig(path: &std::path::Path) -> Result<kube::config::Kubeconfig, String> {
    let text = keyvol_core::bounded::read_to_string(path, MAX_KUBECONFIG_BYTES)
        .map_err(|e| keyvol_core::report::chain(&e))?;
    kube::config::Kubeconfig::from_yaml(&text)
        .map_err(|_| format!("{} is not a valid kubeconfig", path.display()))
}

async fn cluster(kubeconfig: Option<&PathBuf>) -> Arc<dyn Cluster> {
    let config = match kubeconfig {
        Some(path) => match read_kubeconfig(path) {
            Ok(kc) => kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        },
        None => kube::Config::infer().await.map_err(|e| e.to_string()),
    };
    match config.and_then(|c| keyvol_node::cluster::api_client(c).map_err(|e| e.to_string())) {
        Ok(client) => KubeCluster::new(client),
        Err(e) => {
            tracing::warn!(error = %e, "no Kubernetes API configured; serving CSI without it");
            Arc::new(NoCluster(format!("no Kubernetes API configured: {e}")))
        }
    }
}

/// `keyvol node`.
pub async fn run(args: NodeArgs) -> Result<(), Failure> {
    if !args.metrics_backend.eq_ignore_ascii_case("prometheus") {
        return Err(Failure::input(format!(
            "--metrics-backend {:?}: only Prometheus is supported",
            args.metrics_backend
        )));
    }
    if args.enable_pprof {
        tracing::warn!("--enable-pprof is accepted for compatibility; keyvol does not serve pprof");
    }
    let csi_socket = socket_path(&args.endpoint)?;
    let metrics_addr = listen_addr("metrics-addr", &args.metrics_addr)?;
    let health_addr = listen_addr("health-addr", &args.health_addr)?;
    let metrics = keyvol_node::metrics::Metrics::new();
    let mut azure_config = args.azure.config();
    azure_config.observer = Some(metrics.clone());
    if args.enable_secret_rotation && azure_config.share_window.is_zero() {
        // Volumes of this node that need the same object with the same identity share one fetch
        // per rotation interval.
        azure_config.share_window = args.rotation_poll_interval;
    }
    let azure = Arc::new(AzureProvider::new(azure_config).map_err(|e| Failure::chain(&e, true))?);
    azure.spawn_eviction();
    let azure: Arc<dyn Provider> = azure;
    let builtin: HashMap<String, Arc<dyn Provider>> = HashMap::from([("azure".to_owned(), azure)]);
    let mut provider_dirs: Vec<PathBuf> = args
        .additional_provider_volume_paths
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .collect();
    provider_dirs.push(args.provider_volume.clone());
    let config = NodeServerConfig {
        node: NodeConfig {
            driver_name: args.drivername.clone(),
            node_id: args.nodeid.clone(),
            enable_secret_rotation: args.enable_secret_rotation,
            rotation_poll_interval: args.rotation_poll_interval,
            tmpfs_size_bytes: args.tmpfs_size,
            rotation_loop: args.rotation_loop_interval,
        },
        csi_socket,
        registration: (!args.plugin_registration_dir.is_empty()).then(|| RegistrationConfig {
            dir: PathBuf::from(&args.plugin_registration_dir),
            kubelet_registration_path: args.kubelet_registration_path.clone(),
        }),
        metrics_addr,
        health_addr,
        provider_dirs,
        max_recv_bytes: args.max_call_recv_msg_size,
        provider_timeout: args.provider_timeout,
        provider_health_check: args
            .provider_health_check
            .then_some(args.provider_health_check_interval),
    };
    let cluster = cluster(args.kubeconfig.as_ref()).await;
    run_node(config, metrics, builtin, cluster, shutdown_signal())
        .await
        .map_err(|e| Failure::chain(&e, false))
}

/// `keyvol provider`.
pub async fn run_provider_cmd(args: ProviderArgs) -> Result<(), Failure> {
    if args.enable_pprof {
        tracing::warn!("--enable-pprof is accepted for compatibility; keyvol does not serve pprof");
    }
    let socket = socket_path(&args.endpoint)?;
    let metrics = keyvol_node::metrics::Metrics::for_provider();
    let mut azure_config = args.azure.config();
    azure_config.observer = Some(metrics.clone());
    let provider =
        Arc::new(AzureProvider::new(azure_config).map_err(|e| Failure::chain(&e, true))?);
    provider.spawn_eviction();
    let provider: Arc<dyn Provider> = provider;
    let health_addr =
        (args.healthz_port != 0).then(|| SocketAddr::from(([0, 0, 0, 0], args.healthz_port)));
    let metrics_addr =
        (args.prometheus_port != 0).then(|| SocketAddr::from(([0, 0, 0, 0], args.prometheus_port)));
    run_provider(
        ProviderServerConfig {
            socket,
            health_addr,
            metrics_addr,
        },
        metrics,
        provider,
        shutdown_signal(),
    )
    .await
    .map_err(|e| Failure::chain(&e, false))
}

/// `keyvol crd`.
pub fn run_crd() -> Result<(), Failure> {
    let yaml = keyvol_node::crd::crds_yaml().map_err(|e| Failure::chain(&e, false))?;
    print!("{yaml}");
    Ok(())
}
