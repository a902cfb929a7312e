//! Per-vault throttle gates: when a vault answers 429 with a Retry-After, no request of this
//! process goes to that vault before the time it named — other vaults are not affected. Read
//! and closed by the retry loop ([`super::retry`]), which also takes each request's slot in its
//! vault's request budget ([`super::budget`], held here so every caller of the loop has it).
//!
//! A gate is dropped once it has opened (on the next look at it, or by a sweep at most every
//! [`SWEEP_EVERY`]), and at most [`MAX_GATES`] are closed at once, so vaults a class named once
//! do not stay in memory.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::budget::{Admission, Budgets};

/// Most vaults gated at the same time. Vault names come from classes, so the map must not grow
/// with them; a node talks to a handful of vaults. Past this, a newly throttled vault is not
/// gated: its own requests still wait out their Retry-After, only other mounts of it are not
/// held back.
const MAX_GATES: usize = 1024;
/// How often a look at the gates also drops every gate that has opened.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Vault URL → the time before which no request may go to it, and each vault's request budget.
pub(super) struct Gates {
    inner: Mutex<Inner>,
    budgets: Budgets,
}

struct Inner {
    until: HashMap<String, Instant>,
    next_sweep: Instant,
}

impl Default for Gates {
    fn default() -> Self {
        Self::new(Budgets::default())
    }
}

impl Gates {
    /// Open gates, with `budgets` for the requests that pass them.
    pub(super) fn new(budgets: Budgets) -> Self {
        Self {
            inner: Mutex::new(Inner {
                until: HashMap::new(),
                next_sweep: Instant::now() + SWEEP_EVERY,
            }),
            budgets,
        }
    }

    /// Waits for a slot in `vault`'s request budget; hold it while the request is in flight.
    pub(super) async fn admit(&self, vault: &str) -> Admission {
        self.budgets.admit(vault).await
    }

    fn lock(&self, now: Instant) -> MutexGuard<'_, Inner> {
        // Every change is one insert or remove: the map is consistent after a panic.
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if now >= inner.next_sweep {
            inner.until.retain(|_, until| *until > now);
            inner.next_sweep = now + SWEEP_EVERY;
        }
        inner
    }

    /// When the vault may be asked again, if it is throttling us.
    pub(super) fn until(&self, vault: &str) -> Option<Instant> {
        let now = Instant::now();
        let mut inner = self.lock(now);
        match inner.until.get(vault).copied() {
            Some(until) if until > now => Some(until),
            Some(_) => {
                inner.until.remove(vault);
                None
            }
            None => None,
        }
    }

    /// Keeps requests away from `vault` for `for_how_long` (or longer, if already closed longer).
    pub(super) fn close(&self, vault: &str, for_how_long: Duration) {
        let now = Instant::now();
        let mut inner = self.lock(now);
        let until = now + for_how_long;
        if let Some(entry) = inner.until.get_mut(vault) {
            if *entry < until {
                *entry = until;
            }
            return;
        }
        if inner.until.len() >= MAX_GATES {
            inner.until.retain(|_, until| *until > now);
            if inner.until.len() >= MAX_GATES {
                tracing::debug!(vault, "too many throttled vaults to gate another");
                return;
            }
        }
        inner.until.insert(vault.to_owned(), until);
    }

    /// Drops the request budgets of vaults gone idle; returns how many.
    pub(super) fn evict_idle(&self) -> usize {
        self.budgets.evict_idle()
    }

    /// Number of gates held (closed, or opened and not yet dropped).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.lock(Instant::now()).until.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_gate_keeps_the_longest_wait_and_opens_by_itself() {
        let gates = Gates::default();
        assert_eq!(gates.until("a"), None);
        gates.close("a", Duration::from_secs(5));
        gates.close("a", Duration::from_secs(2));
        let until = gates.until("a").expect("closed");
        assert!(until - Instant::now() >= Duration::from_secs(5));
        assert_eq!(gates.until("b"), None, "other vaults are not affected");
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(gates.until("a"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn opened_gates_are_dropped_and_at_most_max_gates_are_held() {
        let gates = Gates::default();
        for i in 0..MAX_GATES + 10 {
            gates.close(
                &format!("https://kv{i}.vault.azure.net/"),
                Duration::from_secs(30),
            );
        }
        assert_eq!(gates.len(), MAX_GATES, "bounded");
        assert!(gates.until("https://kv0.vault.azure.net/").is_some());
        tokio::time::advance(SWEEP_EVERY).await;
        assert_eq!(gates.until("https://other.vault.azure.net/"), None);
        assert_eq!(gates.len(), 0, "every opened gate is gone after a sweep");
    }
}
