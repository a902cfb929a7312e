//! Deadline-aware retries of one vault request: transient failures (throttling, server errors,
//! unreachable endpoints — of the vault or of the token endpoint the request needed) are tried
//! again, honouring the server's Retry-After or else backing off exponentially with jitter,
//! never past the mount's deadline: a wait that does not fit fails at once with the error that
//! asked for it. A vault's throttle gate ([`super::gate`]) is honoured and closed here.

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use super::gate::Gates;
use crate::error::{AzureError, Service};

/// Tries per request, the first included.
const MAX_TRIES: u32 = 5;
/// First backoff when the server gives no Retry-After; doubles per try, with jitter.
const BASE_BACKOFF: Duration = Duration::from_millis(250);
/// Longest backoff keyvol picks on its own (a server's Retry-After may be longer).
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// Runs `op` until it succeeds, fails for good, or the next wait would pass `deadline`. Waits
/// honour the server's Retry-After; otherwise they grow exponentially with jitter.
///
/// With a `gate`, a vault that answered 429 with Retry-After is not asked again before that
/// time by any request of the process — other vaults are not affected — and every try takes a
/// slot of the vault's request budget ([`super::budget`]) for as long as it is in flight.
/// `object` names what is fetched, for the error when the gate outlasts the deadline.
pub(super) async fn with_retries<T, F, Fut>(
    deadline: Instant,
    gate: Option<(&Gates, &str)>,
    object: &str,
    mut op: F,
) -> Result<T, AzureError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AzureError>>,
{
    let mut attempt = 0u32;
    loop {
        if let Some((gates, vault)) = gate
            && let Some(until) = gates.until(vault)
        {
            if until >= deadline {
                return Err(AzureError::Throttled {
                    object: object.to_owned(),
                    service: Service::Vault,
                    endpoint: vault.to_owned(),
                    detail: "the vault asked for a pause that outlasts this mount's deadline"
                        .into(),
                    retry_after: Some(until - Instant::now()),
                });
            }
            tokio::time::sleep_until(until).await;
        }
        let admission = match gate {
            Some((gates, vault)) => Some(gates.admit(vault).await),
            None => None,
        };
        let result = op().await;
        drop(admission);
        match result {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() && attempt + 1 < MAX_TRIES => {
                if let (
                    Some((gates, vault)),
                    AzureError::Throttled {
                        service: Service::Vault,
                        retry_after: Some(wait),
                        ..
                    },
                ) = (gate, &e)
                {
                    gates.close(vault, *wait);
                }
                let wait = e.retry_after().unwrap_or_else(|| backoff(attempt));
                if Instant::now() + wait >= deadline {
                    // The wait cannot be honoured within the caller's deadline: report the cause now.
                    return Err(e);
                }
                tracing::debug!(attempt, wait_ms = wait.as_millis() as u64, error = %e, "retrying");
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

fn backoff(attempt: u32) -> Duration {
    let base = BASE_BACKOFF
        .saturating_mul(1u32 << attempt.min(8))
        .min(MAX_BACKOFF);
    let jitter = rand::rng().random_range(0.8..1.2);
    base.mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn throttled(service: Service, secs: u64) -> AzureError {
        AzureError::Throttled {
            object: "o".into(),
            service,
            endpoint: "e".into(),
            detail: "d".into(),
            retry_after: Some(Duration::from_secs(secs)),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_endpoint_retry_after_past_the_deadline_fails_at_once_and_gates_no_vault() {
        let gates = Gates::default();
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        let start = Instant::now();
        let result: Result<(), _> = with_retries(
            start + Duration::from_secs(100),
            Some((&gates, "https://kv.vault.azure.net/")),
            "secret/s",
            || {
                c.fetch_add(1, Ordering::SeqCst);
                async { Err(throttled(Service::TokenEndpoint, 3600)) }
            },
        )
        .await;
        assert!(
            matches!(
                result,
                Err(AzureError::Throttled {
                    service: Service::TokenEndpoint,
                    ..
                })
            ),
            "{result:?}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(Instant::now() - start < Duration::from_secs(1), "no wait");
        assert_eq!(
            gates.until("https://kv.vault.azure.net/"),
            None,
            "the vault did not throttle"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_error_is_retried_with_backoff_then_reported_as_it_is() {
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        let result: Result<(), _> =
            with_retries(Instant::now() + Duration::from_secs(60), None, "o", || {
                c.fetch_add(1, Ordering::SeqCst);
                async {
                    Err(AzureError::ServerError {
                        object: "o".into(),
                        service: Service::Vault,
                        endpoint: "e".into(),
                        status: 500,
                        detail: "d".into(),
                        retry_after: None,
                    })
                }
            })
            .await;
        assert_eq!(calls.load(Ordering::SeqCst), MAX_TRIES, "bounded retries");
        assert_eq!(result.expect_err("fails").code(), "InternalServerError");
    }

    #[tokio::test(start_paused = true)]
    async fn retries_honour_retry_after_within_the_deadline() {
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        let start = Instant::now();
        let result = with_retries(start + Duration::from_secs(30), None, "o", || {
            let c = c.clone();
            async move {
                if c.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(throttled(Service::Vault, 5))
                } else {
                    Ok(7)
                }
            }
        })
        .await;
        assert_eq!(result.expect("succeeds"), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert!(
            Instant::now() - start >= Duration::from_secs(10),
            "waited as told"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_past_the_deadline_fails_at_once() {
        let start = Instant::now();
        let result: Result<(), _> =
            with_retries(start + Duration::from_secs(10), None, "o", || async {
                Err(throttled(Service::Vault, 60))
            })
            .await;
        assert!(matches!(result, Err(AzureError::Throttled { .. })));
        assert!(
            Instant::now() - start < Duration::from_secs(1),
            "did not sleep past the deadline"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried() {
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        let result: Result<(), _> =
            with_retries(Instant::now() + Duration::from_secs(10), None, "o", || {
                let c = c.clone();
                async move {
                    c.fetch_add(1, Ordering::SeqCst);
                    Err(AzureError::NotFound {
                        object: "o".into(),
                        detail: "d".into(),
                    })
                }
            })
            .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
