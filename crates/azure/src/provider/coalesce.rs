//! Coalescing: identical requests in flight at the same time share one future, so a burst of
//! volumes asking for the same object version (with the same identity — the key says so) makes
//! one vault request. Entries live only while someone awaits the request: the last waiter to
//! finish — or to give up, when its mount's deadline cancels it — removes the entry. At most
//! [`MAX_IN_FLIGHT`] requests are shared at once. Results are kept, if at all, by the share
//! window ([`super::share`]).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};

use futures::future::{BoxFuture, FutureExt, Shared};

use crate::error::AzureError;

/// Most distinct requests shared at once. Every mount fetches at most its fetch concurrency
/// objects at a time, so this is only reached by thousands of concurrent mounts; past it, a
/// request simply is not shared.
const MAX_IN_FLIGHT: usize = 4096;

/// One request's result, awaitable by every identical request.
type SharedResult<T> = Shared<BoxFuture<'static, Result<T, AzureError>>>;

/// Requests in flight by key.
pub(super) struct InFlight<K, T> {
    map: Mutex<HashMap<K, SharedResult<T>>>,
}

impl<K, T> Default for InFlight<K, T> {
    fn default() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
        }
    }
}

/// One caller awaiting a shared request; removes the entry when it is the last one done with
/// it (finished or cancelled).
struct Waiter<'a, K: Eq + Hash + Clone, T: Clone> {
    inflight: &'a InFlight<K, T>,
    key: &'a K,
    /// The clone this caller polls (released once polled to completion).
    polled: Option<SharedResult<T>>,
    /// A clone never polled: still names the request after it completed.
    marker: SharedResult<T>,
}

impl<K: Eq + Hash + Clone, T: Clone> Drop for Waiter<'_, K, T> {
    fn drop(&mut self) {
        // Release the polled clone first, so the count below is the map's and the markers.
        self.polled = None;
        let mut map = self.inflight.lock();
        // The map's clone and this marker are all that is left: nobody else waits.
        if map.get(self.key).is_some_and(|f| {
            f.ptr_eq(&self.marker) && self.marker.strong_count().is_some_and(|n| n <= 2)
        }) {
            map.remove(self.key);
        }
    }
}

impl<K: Eq + Hash + Clone, T: Clone> InFlight<K, T> {
    fn lock(&self) -> MutexGuard<'_, HashMap<K, SharedResult<T>>> {
        // Every change is one insert or remove: the map is consistent after a panic.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Awaits the request in flight for `key`, or starts one with `start` when there is none.
    /// The entry is removed once no one awaits it, so a later call asks again.
    pub(super) async fn join_or_start(
        &self,
        key: &K,
        start: impl FnOnce() -> BoxFuture<'static, Result<T, AzureError>>,
    ) -> Result<T, AzureError> {
        let shared = {
            let mut map = self.lock();
            match map.get(key) {
                Some(f) => Ok(f.clone()),
                None if map.len() >= MAX_IN_FLIGHT => Err(start),
                None => {
                    let shared = start().shared();
                    map.insert(key.clone(), shared.clone());
                    Ok(shared)
                }
            }
        };
        match shared {
            Ok(shared) => self.wait(key, shared).await,
            Err(start) => start().await,
        }
    }

    /// Awaits `shared` as one of its waiters.
    async fn wait(&self, key: &K, shared: SharedResult<T>) -> Result<T, AzureError> {
        let mut waiter = Waiter {
            inflight: self,
            key,
            marker: shared.clone(),
            polled: Some(shared),
        };
        match waiter.polled.as_mut() {
            Some(shared) => shared.await,
            None => Err(AzureError::Internal("in-flight request vanished".into())),
        }
    }

    /// Number of requests in flight.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn identical_keys_share_one_start_while_in_flight_only() {
        let inflight: InFlight<&str, u32> = InFlight::default();
        let starts = Arc::new(AtomicU32::new(0));
        let start = || {
            let starts = starts.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                Ok(starts.fetch_add(1, Ordering::SeqCst))
            }
            .boxed()
        };
        let (a, b, c) = tokio::join!(
            inflight.join_or_start(&"k", start),
            inflight.join_or_start(&"k", start),
            inflight.join_or_start(&"other", start),
        );
        assert_eq!(a.expect("a"), b.expect("b"), "one start served both");
        assert!(c.is_ok());
        assert_eq!(starts.load(Ordering::SeqCst), 2);
        inflight.join_or_start(&"k", start).await.expect("again");
        assert_eq!(starts.load(Ordering::SeqCst), 3, "nothing kept once done");
        assert_eq!(inflight.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_whose_waiters_gave_up_leaves_nothing_behind() {
        let inflight: InFlight<String, u32> = InFlight::default();
        let slow = || {
            async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(1)
            }
            .boxed()
        };
        for i in 0..100 {
            let key = format!("identity-{i}");
            let (a, b) = tokio::join!(
                tokio::time::timeout(Duration::from_secs(1), inflight.join_or_start(&key, slow)),
                tokio::time::timeout(Duration::from_secs(2), inflight.join_or_start(&key, slow)),
            );
            assert!(a.is_err() && b.is_err(), "both deadlines passed");
        }
        assert_eq!(inflight.len(), 0, "cancelled requests are not kept");
    }
}
