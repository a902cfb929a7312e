//! The node-wide request budget of each vault: every Key Vault request of the process (all
//! mounts, all identities, rotation included) takes one slot of its vault's in-flight limit and
//! one token of its vault's rate bucket before it is sent. A mount sends all its objects at once
//! (one round trip); only the vault-wide budget holds requests back, so one mount never waits
//! on a second round and a burst of mounts never outruns what Key Vault allows.
//!
//! Key Vault's documented service limits count transactions per vault per region over a
//! 10-second window: 4,000 for "secrets, managed storage account keys, and vault transactions"
//! (every GET of a secret or certificate, every listing), and the same 4,000 for GETs of RSA
//! 2048-bit and EC software keys (HSM keys and larger RSA keys cost more: weighted). The bucket
//! here holds [`RATE_BURST`] tokens and refills at [`RATE_PER_SECOND`], so no 10-second window
//! ever sees more than `RATE_BURST + 10 × RATE_PER_SECOND` = 4,000 requests from this process:
//! the documented limit, reached only by a node doing nothing but fetching. Other clients of
//! the vault (and other nodes) share the same limit; a vault that answers 429 anyway closes its
//! throttle gate ([`super::gate`]) for everyone here.
//!
//! The in-flight limit (`--azure-fetch-concurrency`, [`super::DEFAULT_FETCH_CONCURRENCY`])
//! bounds the connections and memory a burst takes; a mount of up to that many objects is one
//! round trip when nothing else is in flight to its vault.
//!
//! Budgets are kept per vault URL in a bounded map that drops vaults idle for
//! [`BUDGET_IDLE`] (at most [`MAX_BUDGETS`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::cache::IdleCache;

/// Tokens the per-vault rate bucket holds when full: a burst of this many requests goes at once.
pub const RATE_BURST: u32 = 400;
/// Tokens added to the per-vault rate bucket per second.
pub const RATE_PER_SECOND: u32 = 360;
/// A vault no request went to for this long loses its budget (a full one is made again).
pub const BUDGET_IDLE: Duration = Duration::from_secs(600);
/// Most vaults with a budget held at once; past this the least recently used one is dropped.
pub const MAX_BUDGETS: usize = 1024;

/// One vault's budget: the in-flight slots and the rate bucket.
struct Budget {
    in_flight: Arc<Semaphore>,
    bucket: Mutex<Bucket>,
}

/// A token bucket that lends: a request takes its token at once and waits until the bucket
/// would have held it, so waiters go in arrival order without polling.
struct Bucket {
    /// Tokens now; negative when requests are waiting for tokens not yet added.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
}

impl Bucket {
    /// Takes one token; returns how long the taker must wait before sending.
    fn take(&mut self, now: Instant) -> Duration {
        let rate = f64::from(RATE_PER_SECOND);
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(RATE_BURST));
        self.at = now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / rate)
        }
    }
}

/// The right to send one request: hold it until the answer is in.
pub(super) struct Admission {
    _slot: Option<OwnedSemaphorePermit>,
}

/// Every vault's budget, by vault URL.
pub(super) struct Budgets {
    in_flight: usize,
    map: IdleCache<String, Arc<Budget>>,
}

impl Budgets {
    /// Budgets allowing `in_flight` requests at once per vault (at least one).
    pub(super) fn new(in_flight: usize) -> Self {
        Self {
            in_flight: in_flight.max(1),
            map: IdleCache::new(BUDGET_IDLE, MAX_BUDGETS),
        }
    }

    /// Drops the budgets of vaults no request has gone to for [`BUDGET_IDLE`]; returns how many.
    pub(super) fn evict_idle(&self) -> usize {
        self.map.sweep_now()
    }

    /// Waits for an in-flight slot and a rate token of `vault`.
    pub(super) async fn admit(&self, vault: &str) -> Admission {
        let budget = self
            .map
            .get_or_try_insert_with(&vault.to_owned(), || {
                Ok::<_, std::convert::Infallible>(Arc::new(Budget {
                    in_flight: Arc::new(Semaphore::new(self.in_flight)),
                    bucket: Mutex::new(Bucket {
                        tokens: f64::from(RATE_BURST),
                        at: Instant::now(),
                    }),
                }))
            })
            .unwrap_or_else(|never| match never {});
        // The semaphore is never closed, so acquiring does not fail.
        let slot = budget.in_flight.clone().acquire_owned().await.ok();
        let wait = budget
            .bucket
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(Instant::now());
        if !wait.is_zero() {
            tracing::debug!(
                vault,
                wait_ms = wait.as_millis() as u64,
                "request budget spent, waiting"
            );
            tokio::time::sleep(wait).await;
        }
        Admission { _slot: slot }
    }

    /// Number of vaults with a budget held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }
}

impl Default for Budgets {
    fn default() -> Self {
        Self::new(super::DEFAULT_FETCH_CONCURRENCY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(start_paused = true)]
    async fn no_more_than_the_in_flight_limit_is_sent_at_once_per_vault() {
        let budgets = Arc::new(Budgets::new(4));
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..20 {
            let (budgets, now, peak) = (budgets.clone(), now.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                let vault = if i % 2 == 0 { "a" } else { "b" };
                let _admission = budgets.admit(vault).await;
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                now.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        assert_eq!(
            peak.load(Ordering::SeqCst),
            8,
            "4 per vault, two vaults side by side"
        );
        assert_eq!(budgets.len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn no_ten_second_window_sees_more_than_the_documented_4000() {
        let budgets = Budgets::new(100_000);
        let start = Instant::now();
        let mut sent = Vec::new();
        for _ in 0..6000 {
            let admission = budgets.admit("v").await;
            sent.push(Instant::now() - start);
            drop(admission);
        }
        assert_eq!(RATE_BURST + 10 * RATE_PER_SECOND, 4000);
        // Times are in order: the busiest window starts at some request.
        let mut most = 0;
        let mut end = 0;
        for (i, &t0) in sent.iter().enumerate() {
            while end < sent.len() && sent[end] < t0 + Duration::from_secs(10) {
                end += 1;
            }
            most = most.max(end - i);
        }
        assert!(most <= 4000, "{most} requests in one 10-second window");
        assert!(most >= 3990, "the budget is used, not wasted: {most}");
        assert_eq!(
            sent.iter().filter(|t| t.is_zero()).count(),
            RATE_BURST as usize,
            "a full bucket lets a burst go at once"
        );
    }
}
