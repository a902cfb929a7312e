//! What the dev vault was asked: its request counters (route template, status, identity, count —
//! read from [`keyvol_devvault::observe::Counters::snapshot`]) folded into the four numbers the
//! benchmarks report — Key Vault requests, of which 401 challenges, identity-endpoint requests
//! (Entra ID token and discovery, IMDS, NMI), of which token requests, and failures.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::stats::mean_u64;

/// Which service a counted route belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// The Key Vault data plane (secrets, keys, certificates).
    Vault,
    /// Entra ID (token, OpenID and instance discovery), IMDS or NMI.
    Identity,
}

/// Classifies a counter route (`METHOD /path/template`).
pub fn service_of(route: &str) -> Service {
    let path = route.split_once(' ').map_or(route, |(_, p)| p);
    if path.contains("/oauth2/")
        || path.starts_with("/host/token")
        || path.contains("/.well-known/openid-configuration")
        || path.contains("/discovery/")
    {
        Service::Identity
    } else {
        Service::Vault
    }
}

/// Whether an identity route is a token request (Entra ID's v1 and v2 token endpoints, IMDS,
/// NMI) rather than discovery.
pub fn is_token(route: &str) -> bool {
    let path = route.split_once(' ').map_or(route, |(_, p)| p);
    service_of(route) == Service::Identity && path.trim_end_matches('/').ends_with("/token")
}

/// Requests counted over one measurement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCounts {
    /// Key Vault requests, the 401 challenges included.
    pub vault: u64,
    /// Of `vault`, the unauthenticated first requests answered with the 401 challenge.
    pub challenges: u64,
    /// Identity-endpoint requests (token, discovery, IMDS, NMI).
    pub identity: u64,
    /// Of `identity`, token requests (the rest is discovery).
    #[serde(default)]
    pub tokens: u64,
    /// Requests that failed (status ≥ 400 other than a vault challenge, or a dropped
    /// connection); none are expected, as the benchmarks inject latency only.
    pub failed: u64,
}

impl RequestCounts {
    /// Every request sent.
    pub fn total(&self) -> u64 {
        self.vault + self.identity
    }

    /// Folds a counters snapshot (`{"requests": [{"route", "status", "identity", "count"}]}`).
    /// Rows it cannot read are ignored.
    pub fn from_snapshot(snapshot: &Value) -> Self {
        let mut counts = Self::default();
        let Some(rows) = snapshot.get("requests").and_then(Value::as_array) else {
            return counts;
        };
        for row in rows {
            let (Some(route), Some(status), Some(n)) = (
                row.get("route").and_then(Value::as_str),
                row.get("status").and_then(Value::as_u64),
                row.get("count").and_then(Value::as_u64),
            ) else {
                continue;
            };
            let service = service_of(route);
            match service {
                Service::Vault => counts.vault += n,
                Service::Identity => counts.identity += n,
            }
            if is_token(route) {
                counts.tokens += n;
            }
            if service == Service::Vault && status == 401 {
                counts.challenges += n;
            } else if status >= 400 || status == u64::from(keyvol_devvault::observe::DROPPED) {
                counts.failed += n;
            }
        }
        counts
    }
}

/// Mean requests per mount over the samples of one figure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestsPerMount {
    /// Key Vault requests (challenges included).
    pub vault: f64,
    /// 401 challenges.
    pub challenges: f64,
    /// Identity-endpoint requests.
    pub identity: f64,
    /// Failed requests.
    pub failed: f64,
    /// Fewest requests (vault + identity) any one sample sent.
    pub min_total: u64,
    /// Most requests any one sample sent.
    pub max_total: u64,
}

impl RequestsPerMount {
    /// Means of the per-sample counts.
    pub fn of(samples: &[RequestCounts]) -> Self {
        let pick = |f: fn(&RequestCounts) -> u64| -> Vec<u64> { samples.iter().map(f).collect() };
        let totals = pick(RequestCounts::total);
        Self {
            vault: mean_u64(&pick(|c| c.vault)),
            challenges: mean_u64(&pick(|c| c.challenges)),
            identity: mean_u64(&pick(|c| c.identity)),
            failed: mean_u64(&pick(|c| c.failed)),
            min_total: totals.iter().copied().min().unwrap_or(0),
            max_total: totals.iter().copied().max().unwrap_or(0),
        }
    }

    /// Mean requests (vault + identity).
    pub fn total(&self) -> f64 {
        self.vault + self.identity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn routes_are_split_into_vault_and_identity_endpoints() {
        assert_eq!(service_of("GET /secrets/{name}/{version}"), Service::Vault);
        assert_eq!(service_of("GET /secrets/{name}"), Service::Vault);
        assert_eq!(service_of("GET /certificates/{name}"), Service::Vault);
        assert_eq!(
            service_of("POST /{tenant}/oauth2/v2.0/token"),
            Service::Identity
        );
        assert_eq!(service_of("POST /{tenant}/oauth2/token"), Service::Identity);
        assert_eq!(
            service_of("GET /metadata/identity/oauth2/token"),
            Service::Identity
        );
        assert_eq!(service_of("GET /host/token/"), Service::Identity);
        for token in [
            "POST /{tenant}/oauth2/v2.0/token",
            "POST /{tenant}/oauth2/token",
            "GET /metadata/identity/oauth2/token",
            "GET /host/token/",
        ] {
            assert!(is_token(token), "{token}");
        }
        assert!(!is_token("GET /common/discovery/instance"));
        assert!(
            !is_token("GET /secrets/token"),
            "a secret named token is a vault route"
        );
        assert_eq!(
            service_of("GET /common/discovery/instance"),
            Service::Identity
        );
        assert_eq!(
            service_of("GET /{tenant}/v2.0/.well-known/openid-configuration"),
            Service::Identity
        );
    }

    #[test]
    fn snapshots_fold_into_vault_challenge_identity_and_failure_counts() {
        let snapshot = json!({
            "total": 16,
            "requests": [
                {"route": "GET /secrets/{name}", "status": 401, "identity": "-", "count": 1},
                {"route": "GET /secrets/{name}", "status": 200, "identity": "sp", "count": 10},
                {"route": "POST /{tenant}/oauth2/v2.0/token", "status": 200, "identity": "-", "count": 1},
                {"route": "GET /{tenant}/v2.0/.well-known/openid-configuration", "status": 200, "identity": "-", "count": 1},
                {"route": "GET /secrets/{name}", "status": 429, "identity": "sp", "count": 3},
                {"route": "GET /secrets/{name}", "status": 0, "identity": "-", "count": 1},
                {"route": "bad row"},
            ]
        });
        let c = RequestCounts::from_snapshot(&snapshot);
        assert_eq!(
            c,
            RequestCounts {
                vault: 15,
                challenges: 1,
                identity: 2,
                tokens: 1,
                failed: 4
            }
        );
        assert_eq!(c.total(), 17);
        assert_eq!(
            RequestCounts::from_snapshot(&json!({})),
            RequestCounts::default()
        );
    }

    #[test]
    fn per_mount_figures_are_means_with_the_range_of_totals() {
        let a = RequestCounts {
            vault: 11,
            challenges: 1,
            identity: 1,
            tokens: 1,
            failed: 0,
        };
        let b = RequestCounts {
            vault: 10,
            ..RequestCounts::default()
        };
        let m = RequestsPerMount::of(&[a, b]);
        assert_eq!((m.vault, m.challenges, m.identity), (10.5, 0.5, 0.5));
        assert_eq!((m.min_total, m.max_total), (10, 12));
        assert_eq!(m.total(), 11.0);
        assert_eq!(RequestsPerMount::of(&[]), RequestsPerMount::default());
    }
}
