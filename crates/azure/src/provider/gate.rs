//! Per-vault throttle gates: when a vault answers 429 with a Retry-After, no request of this
//! process goes to that vault before the time it named — other vaults are not affected. Read
//! and closed by the retry loop ([`super::retry`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Vault URL → the time before which no request may go to it.
#[derive(Default)]
pub(super) struct Gates {
    until: Mutex<HashMap<String, Instant>>,
}

impl Gates {
    /// When the vault may be asked again, if it is throttling us.
    pub(super) fn until(&self, vault: &str) -> Option<Instant> {
        let gates = self.until.lock().ok()?;
        gates
            .get(vault)
            .copied()
            .filter(|until| *until > Instant::now())
    }

    /// Keeps requests away from `vault` for `for_how_long` (or longer, if already closed longer).
    pub(super) fn close(&self, vault: &str, for_how_long: Duration) {
        if let Ok(mut gates) = self.until.lock() {
            let until = Instant::now() + for_how_long;
            let entry = gates.entry(vault.to_owned()).or_insert(until);
            if *entry < until {
                *entry = until;
            }
        }
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
}
