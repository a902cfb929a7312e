//! The state every handler shares ([`AppState`]: store, token issuer, directory, access
//! policies, faults, counters, NMI's readiness) and how a request's host picks its vault.
//! [`crate::server`] builds it; the handlers read it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderMap, Uri};

use crate::access::AccessPolicies;
use crate::directory::Directory;
use crate::faults::Faults;
use crate::observe::Counters;
use crate::store::Store;
use crate::token::TokenIssuer;

/// State shared by every handler.
pub struct AppState {
    /// Objects.
    pub store: Store,
    /// Token minting and checking.
    pub issuer: TokenIssuer,
    /// Applications, managed identities, pod bindings, trusted issuers.
    pub directory: Directory,
    /// Access policies per vault.
    pub policies: AccessPolicies,
    /// Vault DNS suffix.
    pub vault_suffix: String,
    /// Authority URL for challenges.
    pub authority: String,
    /// Token resource named in challenges and required of tokens, when not the default.
    pub resource: Option<String>,
    /// Fault rules.
    pub faults: Arc<Faults>,
    /// Request counters.
    pub counters: Arc<Counters>,
    /// NMI calls still to answer "not ready".
    pub nmi_not_ready: NotReady,
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

/// Calls still to be answered "not ready".
#[derive(Debug, Default)]
pub struct NotReady(AtomicU64);

impl NotReady {
    /// Sets the count.
    pub fn set(&self, n: u64) {
        self.0.store(n, Ordering::SeqCst);
    }

    /// The count left.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    /// Takes one if any is left.
    pub(crate) fn take(&self) -> bool {
        self.0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
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

    #[test]
    fn not_ready_answers_exactly_n_times() {
        let n = NotReady::default();
        n.set(2);
        assert!(n.take());
        assert!(n.take());
        assert!(!n.take());
        assert_eq!(n.get(), 0);
    }
}
