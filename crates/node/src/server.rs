//! Running `keyvol node` and `keyvol provider`: bind the sockets and HTTP listeners, serve until
//! shutdown. Everything is bound before anything is served, so a bad address fails at start.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use futures::FutureExt;
use keyvol_core::Provider;
use keyvol_proto::csi::v1 as csi;
use keyvol_proto::pluginregistration as reg;
use keyvol_proto::uds::{UdsError, UdsListener};
use tonic::transport::Server;

use crate::cluster::Cluster;
use crate::csi::{IdentityService, NodeService};
use crate::locks::VolumeLocks;
use crate::metrics::Metrics;
use crate::provider_server::ProviderService;
use crate::providers::Providers;
use crate::publish::{NodeConfig, NodeState};
use crate::registration::RegistrationService;

/// Why a server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A unix socket could not be bound.
    #[error(transparent)]
    Socket(#[from] UdsError),
    /// A TCP listener could not be bound.
    #[error("failed to listen on {addr}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A gRPC server failed.
    #[error("gRPC server failed")]
    Grpc(#[source] tonic::transport::Error),
    /// An HTTP server failed.
    #[error("HTTP server failed")]
    Http(#[source] std::io::Error),
}

/// Kubelet registration settings.
#[derive(Debug, Clone)]
pub struct RegistrationConfig {
    /// kubelet's plugin registry directory (`/var/lib/kubelet/plugins_registry`).
    pub dir: PathBuf,
    /// The CSI socket path as kubelet sees it.
    pub kubelet_registration_path: String,
}

/// Everything `keyvol node` needs.
#[derive(Debug, Clone)]
pub struct NodeServerConfig {
    /// Behaviour.
    pub node: NodeConfig,
    /// CSI socket path.
    pub csi_socket: PathBuf,
    /// Built-in kubelet registration; `None` when a node-driver-registrar sidecar does it.
    pub registration: Option<RegistrationConfig>,
    /// `/metrics` listener.
    pub metrics_addr: Option<SocketAddr>,
    /// `/healthz` listener.
    pub health_addr: Option<SocketAddr>,
    /// Provider socket directories, in search order.
    pub provider_dirs: Vec<PathBuf>,
    /// Largest provider response.
    pub max_recv_bytes: usize,
    /// External provider call deadline.
    pub provider_timeout: Duration,
    /// Interval of `Version` checks on external providers, if enabled.
    pub provider_health_check: Option<Duration>,
}

async fn bind_tcp(addr: SocketAddr) -> Result<tokio::net::TcpListener, ServeError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Listen { addr, source })
}

/// Runs the node plugin until `shutdown` completes.
pub async fn run_node(
    config: NodeServerConfig,
    metrics: Arc<Metrics>,
    builtin: HashMap<String, Arc<dyn Provider>>,
    cluster: Arc<dyn Cluster>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let providers = Providers::new(
        builtin,
        config.provider_dirs.clone(),
        config.max_recv_bytes,
        config.provider_timeout,
    );
    let state = Arc::new(NodeState {
        config: config.node.clone(),
        providers,
        cluster,
        locks: VolumeLocks::default(),
        metrics: metrics.clone(),
        registry: crate::registry::Registry::default(),
    });
    let ready = Arc::new(AtomicBool::new(true));

    if let Some(parent) = config.csi_socket.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let csi_listener = UdsListener::bind(&config.csi_socket)?;
    let reg_listener = match &config.registration {
        Some(r) => {
            let _ = std::fs::create_dir_all(&r.dir);
            Some((
                UdsListener::bind(r.dir.join(format!("{}-reg.sock", config.node.driver_name)))?,
                r.clone(),
            ))
        }
        None => None,
    };
    let metrics_listener = match config.metrics_addr {
        Some(a) => Some(bind_tcp(a).await?),
        None => None,
    };
    let health_listener = match config.health_addr {
        Some(a) => Some(bind_tcp(a).await?),
        None => None,
    };

    let shutdown = shutdown.shared();
    let mut tasks = tokio::task::JoinSet::new();
    {
        let identity = IdentityService::new(
            config.node.driver_name.clone(),
            env!("CARGO_PKG_VERSION").into(),
            ready.clone(),
        );
        let node = NodeService::new(state.clone());
        let stop = shutdown.clone();
        tasks.spawn(async move {
            Server::builder()
                .add_service(csi::identity_server::IdentityServer::new(identity))
                .add_service(csi::node_server::NodeServer::new(node))
                .serve_with_incoming_shutdown(csi_listener.into_incoming(), stop)
                .await
                .map_err(ServeError::Grpc)
        });
    }
    if let Some((listener, r)) = reg_listener {
        let service = RegistrationService::new(
            config.node.driver_name.clone(),
            r.kubelet_registration_path.clone(),
            Arc::new(AtomicBool::new(false)),
        );
        let stop = shutdown.clone();
        tasks.spawn(async move {
            Server::builder()
                .add_service(reg::registration_server::RegistrationServer::new(service))
                .serve_with_incoming_shutdown(listener.into_incoming(), stop)
                .await
                .map_err(ServeError::Grpc)
        });
    }
    if let Some(listener) = metrics_listener {
        let app = crate::http::metrics_router(metrics.clone());
        let stop = shutdown.clone();
        tasks.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
                .map_err(ServeError::Http)
        });
    }
    if let Some(listener) = health_listener {
        let app = crate::http::health_router(config.csi_socket.clone());
        let stop = shutdown.clone();
        tasks.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
                .map_err(ServeError::Http)
        });
    }
    if let Some(interval) = config.node.rotation_loop {
        let state = state.clone();
        let stop = shutdown.clone();
        tasks.spawn(async move {
            tokio::select! { _ = crate::rotation::run(state, interval) => {}, _ = stop => {} }
            Ok(())
        });
    }
    if let Some(interval) = config.provider_health_check {
        let state = state.clone();
        let stop = shutdown.clone();
        tasks.spawn(async move {
            let checks = async {
                loop {
                    tokio::time::sleep(interval).await;
                    for p in state.providers.external() {
                        if let Err(e) = p.version().await {
                            tracing::warn!(provider = ?p, error = %e.message(), "provider health check failed");
                        }
                    }
                }
            };
            tokio::select! { _ = checks => {}, _ = stop => {} }
            Ok(())
        });
    }
    tracing::info!(socket = %config.csi_socket.display(), driver = %config.node.driver_name, "keyvol node serving");
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(ServeError::Http(std::io::Error::other(e))),
        }
    }
    Ok(())
}

/// `keyvol provider` settings.
#[derive(Debug, Clone)]
pub struct ProviderServerConfig {
    /// The provider socket (`unix:///tmp/azure.sock` upstream).
    pub socket: PathBuf,
    /// `/healthz` listener (upstream: `:8989`).
    pub health_addr: Option<SocketAddr>,
    /// `/metrics` listener (upstream: `--prometheus-port`, 8898).
    pub metrics_addr: Option<SocketAddr>,
}

/// Serves `provider` over the provider gRPC protocol until `shutdown`, and its `metrics`
/// (what the provider's observer records) on `/metrics`.
pub async fn run_provider(
    config: ProviderServerConfig,
    metrics: Arc<Metrics>,
    provider: Arc<dyn Provider>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    if let Some(parent) = config.socket.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let listener = UdsListener::bind(&config.socket)?;
    let health = match config.health_addr {
        Some(a) => Some(bind_tcp(a).await?),
        None => None,
    };
    let metrics_listener = match config.metrics_addr {
        Some(a) => Some(bind_tcp(a).await?),
        None => None,
    };
    let shutdown = shutdown.shared();
    let mut tasks = tokio::task::JoinSet::new();
    {
        let stop = shutdown.clone();
        tasks.spawn(async move {
            Server::builder()
                .add_service(ProviderService::new(provider).into_server())
                .serve_with_incoming_shutdown(listener.into_incoming(), stop)
                .await
                .map_err(ServeError::Grpc)
        });
    }
    if let Some(listener) = health {
        let socket = config.socket.clone();
        let app = axum::Router::new().route(
            "/healthz",
            axum::routing::get(move || {
                let socket = socket.clone();
                async move {
                    let check = async {
                        let channel = keyvol_proto::uds::connect(&socket).await.map_err(|e| e.to_string())?;
                        keyvol_proto::provider::v1alpha1::csi_driver_provider_client::CsiDriverProviderClient::new(channel)
                            .version(keyvol_proto::provider::v1alpha1::VersionRequest { version: "v1alpha1".into() })
                            .await
                            .map_err(|s| s.message().to_owned())?;
                        Ok::<(), String>(())
                    };
                    match tokio::time::timeout(Duration::from_secs(5), check).await {
                        Ok(Ok(())) => (axum::http::StatusCode::OK, "ok".to_owned()),
                        Ok(Err(e)) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, e),
                        Err(_) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, "timed out".to_owned()),
                    }
                }
            }),
        );
        let stop = shutdown.clone();
        tasks.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
                .map_err(ServeError::Http)
        });
    }
    if let Some(listener) = metrics_listener {
        let app = crate::http::metrics_router(metrics);
        let stop = shutdown.clone();
        tasks.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
                .map_err(ServeError::Http)
        });
    }
    tracing::info!(socket = %config.socket.display(), "keyvol provider serving");
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(ServeError::Http(std::io::Error::other(e))),
        }
    }
    Ok(())
}
