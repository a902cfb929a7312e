//! Starting and stopping a dev vault: configuration, building the shared [`AppState`], the
//! routers, the HTTPS listener (Key Vault, Entra ID, IMDS, admin) and the optional plain-HTTP
//! identity listener (IMDS and NMI, as a node's 169.254.169.254 and NMI's port 2579 are plain
//! HTTP).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum_server::tls_rustls::RustlsConfig;

use crate::access::AccessPolicies;
use crate::directory::Directory;
use crate::faults::{FaultError, FaultRule, Faults};
use crate::observe::{Counters, Observed};
use crate::persist::{Db, PersistError};
use crate::seed::{Seed, SeedError};
use crate::state::{AppState, NotReady};
use crate::store::Store;
use crate::tls::CaKeys;
use crate::token::TokenIssuer;
use crate::{admin, certificates, entra, imds, keys, nmi, observe, secrets, tls, vault};

/// DNS suffix of public-cloud vaults.
pub const DEFAULT_VAULT_SUFFIX: &str = "vault.azure.net";
/// Authority named in challenges by default.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

/// Keys of the dev vault's own state in the data store.
const META_CA_CERT: &str = "ca.cert.pem";
const META_CA_KEY: &str = "ca.key.pem";
const META_TOKEN_KEY: &str = "token.key.pem";

/// How to run a dev vault.
#[derive(Debug, Clone)]
pub struct DevVaultConfig {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Initial contents.
    pub seed: Seed,
    /// DNS suffix under which vaults are served (`<name>.<suffix>`).
    pub vault_suffix: String,
    /// Authority URL put in the 401 challenge.
    pub authority: String,
    /// Token resource the 401 challenge names and tokens must be for, when not the default
    /// `https://<vault_suffix>` (a vault whose resource differs from its cloud's usual one).
    pub resource: Option<String>,
    /// Extra host names for the server certificate.
    pub extra_hosts: Vec<String>,
    /// Where to write the CA certificate (PEM), if anywhere.
    pub ca_file: Option<PathBuf>,
    /// Tenant id, overriding the seed's.
    pub tenant: Option<String>,
    /// Data directory for the file-backed store; in memory when absent.
    pub data_dir: Option<PathBuf>,
    /// Plain-HTTP listener for IMDS and NMI, if any.
    pub identity_listen: Option<SocketAddr>,
    /// Fault rules in force at start.
    pub faults: Vec<FaultRule>,
    /// NMI answers 404 to this many calls first.
    pub nmi_not_ready: u64,
    /// Serve the admin API.
    pub admin: bool,
}

impl DevVaultConfig {
    /// Defaults: loopback, a free port, public-cloud names, in memory, admin API on, no faults.
    pub fn new(seed: Seed) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed,
            vault_suffix: DEFAULT_VAULT_SUFFIX.into(),
            authority: DEFAULT_AUTHORITY.into(),
            resource: None,
            extra_hosts: Vec::new(),
            ca_file: None,
            tenant: None,
            data_dir: None,
            identity_listen: None,
            faults: Vec::new(),
            nmi_not_ready: 0,
            admin: true,
        }
    }
}

/// Why a dev vault could not start.
#[derive(Debug, thiserror::Error)]
pub enum DevVaultError {
    /// The seed is invalid.
    #[error(transparent)]
    Seed(#[from] SeedError),
    /// Key or certificate generation failed.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// Token key generation failed.
    #[error(transparent)]
    Key(#[from] crate::token::KeyError),
    /// The data directory could not be used.
    #[error(transparent)]
    Persist(#[from] PersistError),
    /// A fault rule is invalid.
    #[error(transparent)]
    Fault(#[from] FaultError),
    /// The listen address could not be bound.
    #[error("failed to listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The CA file could not be written.
    #[error("failed to write the CA certificate to {path}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn observed(state: &AppState) -> Arc<Observed> {
    Arc::new(Observed {
        faults: state.faults.clone(),
        counters: state.counters.clone(),
    })
}

/// The HTTPS router: Key Vault, Entra ID, IMDS and (when `admin`) the admin API.
pub fn router(state: Arc<AppState>, admin: bool) -> Router {
    let served = Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/token",
            post(entra::token::<entra::V2>),
        )
        .route("/{tenant}/oauth2/token", post(entra::token::<entra::V1>))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(entra::openid_configuration::<entra::V2>),
        )
        .route(
            "/{tenant}/.well-known/openid-configuration",
            get(entra::openid_configuration::<entra::V1>),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(entra::keys))
        .route("/common/discovery/keys", get(entra::keys))
        .route("/common/discovery/instance", get(entra::instance_discovery))
        .route("/metadata/identity/oauth2/token", get(imds::token))
        .merge(secrets::routes())
        .merge(keys::routes())
        .merge(certificates::routes())
        .route_layer(from_fn_with_state(observed(&state), observe::layer));
    let app = if admin {
        served.merge(admin::routes())
    } else {
        served
    };
    app.fallback(vault::not_found).with_state(state)
}

/// The plain-HTTP identity router: IMDS and NMI (and the admin API when `admin`).
pub fn identity_router(state: Arc<AppState>, admin: bool) -> Router {
    let served = Router::new()
        .route("/metadata/identity/oauth2/token", get(imds::token))
        .route("/host/token", get(nmi::token))
        .route("/host/token/", get(nmi::token))
        .route_layer(from_fn_with_state(observed(&state), observe::layer));
    let app = if admin {
        served.merge(admin::routes())
    } else {
        served
    };
    app.fallback(|| async { (StatusCode::NOT_FOUND, "404 page not found\n").into_response() })
        .with_state(state)
}

/// A dev vault that is not yet running.
pub struct DevVault;

/// A running dev vault.
pub struct RunningDevVault {
    addr: SocketAddr,
    identity_addr: Option<SocketAddr>,
    ca_pem: String,
    tenant: String,
    state: Arc<AppState>,
    handle: axum_server::Handle<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    identity: Option<(
        Arc<tokio::sync::Notify>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    )>,
}

fn bind(addr: SocketAddr) -> Result<(std::net::TcpListener, SocketAddr), DevVaultError> {
    let bind_err = |source| DevVaultError::Bind { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(bind_err)?;
    listener.set_nonblocking(true).map_err(bind_err)?;
    let local = listener.local_addr().map_err(bind_err)?;
    Ok((listener, local))
}

fn meta_text(db: &Db, key: &str) -> Result<Option<String>, PersistError> {
    Ok(db.meta(key)?.and_then(|b| String::from_utf8(b).ok()))
}

impl DevVault {
    /// Opens the store, seeds it, generates (or reloads) keys, binds the listeners and starts
    /// serving in the background.
    pub async fn start(config: DevVaultConfig) -> Result<RunningDevVault, DevVaultError> {
        let tenant = config
            .tenant
            .clone()
            .unwrap_or_else(|| config.seed.tenant().to_owned());
        for rule in &config.faults {
            rule.check()?;
        }
        let mut names = vec![
            config.vault_suffix.clone(),
            format!("*.{}", config.vault_suffix),
            "localhost".to_owned(),
            "*.localhost".to_owned(),
        ];
        if let Some(host) = url::Url::parse(&config.authority)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
        {
            names.push(host);
        }
        names.extend(config.extra_hosts.iter().cloned());
        names.sort();
        names.dedup();

        let db = config.data_dir.as_deref().map(Db::open).transpose()?;
        let stored_ca = match &db {
            Some(db) => match (meta_text(db, META_CA_CERT)?, meta_text(db, META_CA_KEY)?) {
                (Some(cert_pem), Some(key_pem)) => Some(CaKeys { cert_pem, key_pem }),
                _ => None,
            },
            None => None,
        };
        let identity = tls::generate_with(&names, stored_ca.as_ref())?;
        let issuer = match db
            .as_ref()
            .map(|db| meta_text(db, META_TOKEN_KEY))
            .transpose()?
            .flatten()
        {
            Some(pem) => TokenIssuer::with_key_pem(&tenant, &pem)?,
            None => TokenIssuer::new(&tenant)?,
        };
        if let Some(db) = &db {
            if stored_ca.is_none() {
                db.set_meta(META_CA_CERT, identity.ca.cert_pem.as_bytes())?;
                db.set_meta(META_CA_KEY, identity.ca.key_pem.as_bytes())?;
            }
            db.set_meta(META_TOKEN_KEY, issuer.key_pem().as_bytes())?;
        }
        if let Some(path) = &config.ca_file {
            std::fs::write(path, &identity.ca_pem).map_err(|source| DevVaultError::CaFile {
                path: path.clone(),
                source,
            })?;
        }
        let store = match db {
            Some(db) => Store::with_db(db)?,
            None => Store::in_memory(),
        };
        config.seed.populate(&store)?;
        let nmi_not_ready = NotReady::default();
        nmi_not_ready.set(config.nmi_not_ready);
        let state = Arc::new(AppState {
            store,
            issuer,
            directory: Directory::from_seed(&config.seed)?,
            policies: AccessPolicies::from_seed(&config.seed),
            vault_suffix: config.vault_suffix.clone(),
            authority: config.authority.trim_end_matches('/').to_owned(),
            resource: config
                .resource
                .as_deref()
                .map(|r| r.trim_end_matches('/').to_owned()),
            faults: Arc::new(Faults::new(config.faults.clone())),
            counters: Arc::new(Counters::default()),
            nmi_not_ready,
        });

        let (listener, addr) = bind(config.listen)?;
        let server = axum_server::from_tcp_rustls(
            listener,
            RustlsConfig::from_config(identity.server_config),
        )
        .map_err(|source| DevVaultError::Bind { addr, source })?
        .map(|tls| tls.acceptor(axum_server::accept::NoDelayAcceptor));
        let handle = axum_server::Handle::new();
        let app = router(state.clone(), config.admin);
        let task = tokio::spawn(server.handle(handle.clone()).serve(app.into_make_service()));

        let mut identity_addr = None;
        let mut identity_task = None;
        if let Some(listen) = config.identity_listen {
            let (std_listener, local) = bind(listen)?;
            let listener = tokio::net::TcpListener::from_std(std_listener).map_err(|source| {
                DevVaultError::Bind {
                    addr: local,
                    source,
                }
            })?;
            let stop = Arc::new(tokio::sync::Notify::new());
            let stopped = stop.clone();
            let app = identity_router(state.clone(), config.admin);
            // Small answers go out at once, as on the HTTPS listener.
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let task = tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move { stopped.notified().await })
                    .await
            });
            identity_addr = Some(local);
            identity_task = Some((stop, task));
        }
        Ok(RunningDevVault {
            addr,
            identity_addr,
            ca_pem: identity.ca_pem,
            tenant,
            state,
            handle,
            task,
            identity: identity_task,
        })
    }
}

impl RunningDevVault {
    /// The bound HTTPS address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound plain-HTTP identity (IMDS, NMI) address, if one was asked for.
    pub fn identity_addr(&self) -> Option<SocketAddr> {
        self.identity_addr
    }

    /// The CA certificate clients must trust, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The tenant id.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The request counters.
    pub fn counters(&self) -> &Counters {
        &self.state.counters
    }

    /// The fault rules (replace them to change faults at runtime).
    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }

    /// Stops accepting connections and waits for the server tasks.
    pub async fn shutdown(self) {
        self.handle
            .graceful_shutdown(Some(std::time::Duration::from_secs(1)));
        if let Some((stop, task)) = self.identity {
            stop.notify_one();
            let _ = task.await;
        }
        let _ = self.task.await;
    }

    /// Serves until the task ends (it does not, unless it fails).
    pub async fn wait(self) -> std::io::Result<()> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}
