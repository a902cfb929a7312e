//! The HTTP client every Azure call goes through: rustls with the system trust store (honouring
//! `SSL_CERT_FILE` / `SSL_CERT_DIR`) plus operator-supplied CA files, the system resolver, and an
//! explicit "connect to" override that sends Azure host names to another address (the dev vault)
//! while TLS still checks the real names.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::error::AzureError;

/// Per-try timeout of one HTTP request (connect + response). Kubelet gives a whole mount about two
/// minutes; one slow try must not eat all of it.
pub const DEFAULT_TRY_TIMEOUT: Duration = Duration::from_secs(20);
/// Connect timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends requests for matching host names to `addr` (like curl's `--connect-to`).
#[derive(Debug, Clone)]
pub struct ConnectTo {
    /// Where to connect.
    pub addr: SocketAddr,
    /// Host names to redirect; an entry `*.suffix` matches every name under `suffix`.
    pub hosts: Vec<String>,
}

impl ConnectTo {
    /// True when `host` is redirected.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.hosts.iter().any(|pattern| {
            let pattern = pattern.to_ascii_lowercase();
            match pattern.strip_prefix("*.") {
                Some(suffix) => host.ends_with(&format!(".{suffix}")),
                None => host == pattern,
            }
        })
    }

    /// Redirects every Azure endpoint of every built-in cloud (vault hosts and authority hosts).
    pub fn all_azure(addr: SocketAddr) -> Self {
        let mut hosts = Vec::new();
        for cloud in crate::cloud::Cloud::builtins() {
            hosts.push(format!("*.{}", cloud.vault_dns_suffix));
            if let Ok(u) = url::Url::parse(&cloud.authority_host)
                && let Some(h) = u.host_str()
            {
                hosts.push(h.to_owned());
            }
        }
        Self { addr, hosts }
    }
}

/// HTTP settings.
#[derive(Debug, Clone, Default)]
pub struct HttpConfig {
    /// PEM files with extra trust anchors (added to the system store).
    pub ca_files: Vec<PathBuf>,
    /// Extra trust anchors given in memory, PEM.
    pub ca_pems: Vec<Vec<u8>>,
    /// Optional redirect of Azure host names.
    pub connect_to: Option<ConnectTo>,
    /// Per-try timeout; [`DEFAULT_TRY_TIMEOUT`] when `None`.
    pub try_timeout: Option<Duration>,
}

struct OverrideResolver {
    connect_to: Option<ConnectTo>,
}

impl Resolve for OverrideResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let redirect = self
            .connect_to
            .as_ref()
            .filter(|c| c.matches(&host))
            .map(|c| c.addr);
        Box::pin(async move {
            if let Some(addr) = redirect {
                let addrs: Addrs = Box::new(std::iter::once(addr));
                return Ok(addrs);
            }
            // The system resolver (getaddrinfo), so /etc/hosts entries work.
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// Builds the shared client.
pub fn build_client(config: &HttpConfig) -> Result<reqwest::Client, AzureError> {
    let mut certs = Vec::new();
    for path in &config.ca_files {
        let pem = std::fs::read(path).map_err(|e| {
            AzureError::Internal(format!("failed to read CA file {}: {e}", path.display()))
        })?;
        let bundle = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            AzureError::Internal(format!(
                "CA file {} holds no usable PEM certificate: {e}",
                path.display()
            ))
        })?;
        if bundle.is_empty() {
            return Err(AzureError::Internal(format!(
                "CA file {} holds no PEM certificate",
                path.display()
            )));
        }
        certs.extend(bundle);
    }
    for pem in &config.ca_pems {
        let bundle = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
            AzureError::Internal(format!("a CA certificate is not usable PEM: {e}"))
        })?;
        certs.extend(bundle);
    }
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .dns_resolver(Arc::new(OverrideResolver {
            connect_to: config.connect_to.clone(),
        }))
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(config.try_timeout.unwrap_or(DEFAULT_TRY_TIMEOUT))
        .pool_idle_timeout(Duration::from_secs(90))
        .https_only(false);
    if !certs.is_empty() {
        builder = builder.tls_certs_merge(certs);
    }
    builder
        .build()
        .map_err(|e| AzureError::Internal(format!("failed to build the HTTP client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_to_matches_suffixes_and_exact_names() {
        let c = ConnectTo::all_azure(SocketAddr::from(([127, 0, 0, 1], 1)));
        assert!(c.matches("kv1.vault.azure.net"));
        assert!(c.matches("LOGIN.microsoftonline.com"));
        assert!(c.matches("kv.vault.usgovcloudapi.net"));
        assert!(!c.matches("vault.azure.net.evil.example"));
        assert!(!c.matches("localhost"));
    }
}
