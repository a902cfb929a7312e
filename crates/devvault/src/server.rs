//! Starting and stopping a dev vault: configuration, the shared state, the router and the TLS
//! listener.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, Uri};
use axum::routing::{get, post};
use axum_server::tls_rustls::RustlsConfig;

use crate::seed::{Seed, SeedError};
use crate::store::Store;
use crate::token::TokenIssuer;
use crate::{entra, tls, vault};

/// DNS suffix of public-cloud vaults.
pub const DEFAULT_VAULT_SUFFIX: &str = "vault.azure.net";
/// Authority named in challenges by default.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

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
    /// Extra host names for the server certificate.
    pub extra_hosts: Vec<String>,
    /// Where to write the CA certificate (PEM), if anywhere.
    pub ca_file: Option<PathBuf>,
}

impl DevVaultConfig {
    /// Defaults: loopback, a free port, public-cloud names.
    pub fn new(seed: Seed) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed,
            vault_suffix: DEFAULT_VAULT_SUFFIX.into(),
            authority: DEFAULT_AUTHORITY.into(),
            extra_hosts: Vec::new(),
            ca_file: None,
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

/// State shared by every handler.
pub struct AppState {
    /// Objects.
    pub store: Store,
    /// Token minting and checking.
    pub issuer: TokenIssuer,
    /// Client id to client secret.
    pub clients: BTreeMap<String, String>,
    /// Vault DNS suffix.
    pub vault_suffix: String,
    /// Authority URL for challenges.
    pub authority: String,
}

impl AppState {
    /// The host (with port, if any) the client addressed.
    pub fn request_host(headers: &HeaderMap, uri: &Uri) -> String {
        uri.authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                headers
                    .get(axum::http::header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_owned)
            })
            .unwrap_or_default()
    }

    /// The vault a request is for: `<name>.<suffix>`, or the only vault when addressed by IP or
    /// `localhost`.
    pub fn vault_for_host(&self, host: &str) -> Option<String> {
        let name = split_port(host).0.to_ascii_lowercase();
        let suffix = format!(".{}", self.vault_suffix.to_ascii_lowercase());
        if let Some(vault) = name.strip_suffix(&suffix) {
            return Some(vault.to_owned());
        }
        let names = self.store.vault_names();
        if names.len() == 1 {
            names.into_iter().next()
        } else {
            None
        }
    }
}

/// Splits `host:port` (or `[v6]:port`) into host and port.
pub fn split_port(host: &str) -> (&str, Option<u16>) {
    if let Some(rest) = host.strip_prefix('[')
        && let Some((h, p)) = rest.split_once(']')
    {
        return (h, p.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse().ok()),
        _ => (host, None),
    }
}

/// Builds the router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(entra::token_v2))
        .route("/{tenant}/oauth2/token", post(entra::token_v1))
        .route(
            "/secrets/{name}",
            get(vault::get_secret).put(vault::set_secret),
        )
        .route("/secrets/{name}/", get(vault::get_secret))
        .route("/secrets/{name}/{version}", get(vault::get_secret_version))
        .fallback(vault::not_found)
        .with_state(state)
}

/// A dev vault that is not yet running.
pub struct DevVault;

/// A running dev vault.
pub struct RunningDevVault {
    addr: SocketAddr,
    ca_pem: String,
    tenant: String,
    handle: axum_server::Handle<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl DevVault {
    /// Generates keys, binds the listener and starts serving in the background.
    pub async fn start(config: DevVaultConfig) -> Result<RunningDevVault, DevVaultError> {
        let tenant = config.seed.tenant().to_owned();
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
        let identity = tls::generate(&names)?;
        if let Some(path) = &config.ca_file {
            std::fs::write(path, &identity.ca_pem).map_err(|source| DevVaultError::CaFile {
                path: path.clone(),
                source,
            })?;
        }
        let state = Arc::new(AppState {
            store: Store::from_seed(&config.seed),
            issuer: TokenIssuer::new(&tenant)?,
            clients: config
                .seed
                .clients
                .iter()
                .map(|c| (c.client_id.clone(), c.client_secret.clone()))
                .collect(),
            vault_suffix: config.vault_suffix.clone(),
            authority: config.authority.trim_end_matches('/').to_owned(),
        });
        let listener =
            std::net::TcpListener::bind(config.listen).map_err(|source| DevVaultError::Bind {
                addr: config.listen,
                source,
            })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| DevVaultError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| DevVaultError::Bind {
                addr: config.listen,
                source,
            })?;
        let server = axum_server::from_tcp_rustls(
            listener,
            RustlsConfig::from_config(identity.server_config),
        )
        .map_err(|source| DevVaultError::Bind { addr, source })?;
        let handle = axum_server::Handle::new();
        let app = router(state);
        let task = tokio::spawn(server.handle(handle.clone()).serve(app.into_make_service()));
        Ok(RunningDevVault {
            addr,
            ca_pem: identity.ca_pem,
            tenant,
            handle,
            task,
        })
    }
}

impl RunningDevVault {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The CA certificate clients must trust, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The tenant id.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Stops accepting connections and waits for the server task.
    pub async fn shutdown(self) {
        self.handle
            .graceful_shutdown(Some(std::time::Duration::from_secs(1)));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_split_for_names_and_ips() {
        assert_eq!(
            split_port("kv.vault.azure.net:8443"),
            ("kv.vault.azure.net", Some(8443))
        );
        assert_eq!(
            split_port("kv.vault.azure.net"),
            ("kv.vault.azure.net", None)
        );
        assert_eq!(split_port("[::1]:443"), ("::1", Some(443)));
        assert_eq!(split_port("127.0.0.1:1"), ("127.0.0.1", Some(1)));
    }
}
