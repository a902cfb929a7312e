//! Coalescing: identical requests in flight at the same time share one future, so a burst of
//! volumes asking for the same object version (with the same identity — the key says so) makes
//! one vault request. Entries live only while the request is in flight; results are kept, if at
//! all, by the share window ([`super::share`]).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use futures::future::{BoxFuture, FutureExt, Shared};

use crate::error::AzureError;

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

impl<K: Eq + Hash + Clone, T: Clone> InFlight<K, T> {
    /// Awaits the request in flight for `key`, or starts one with `start` when there is none.
    /// The entry is removed once done, so a later call asks again.
    pub(super) async fn join_or_start(
        &self,
        key: &K,
        start: impl FnOnce() -> BoxFuture<'static, Result<T, AzureError>>,
    ) -> Result<T, AzureError> {
        let shared = {
            let mut map = self
                .map
                .lock()
                .map_err(|_| AzureError::Internal("in-flight map poisoned".into()))?;
            match map.get(key) {
                Some(f) => f.clone(),
                None => {
                    let shared = start().shared();
                    map.insert(key.clone(), shared.clone());
                    shared
                }
            }
        };
        let result = shared.clone().await;
        if let Ok(mut map) = self.map.lock()
            && map.get(key).is_some_and(|f| f.ptr_eq(&shared))
        {
            map.remove(key);
        }
        result
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
    }
}
