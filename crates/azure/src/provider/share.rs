//! The share window: one fetch of an object version serves every volume that asks for it with
//! the same identity within `--share-window` (node-wide sharing). Zero turns it off. Used by
//! [`super::fetch`], whose key keeps identities apart.
//!
//! The cache holds secret values, so it keeps nothing longer than needed: results older than
//! the window are swept out (on access, at most once per window), and it never holds more than
//! [`MAX_SHARED_RESULTS`] results or [`MAX_SHARED_BYTES`] of them.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use crate::format::Fetched;

/// Most results the share window keeps; beyond it, new results are not cached. A node mounts a
/// few hundred volumes; sharing pays off for the objects many of them name.
const MAX_SHARED_RESULTS: usize = 4096;
/// Most bytes of results the share window keeps (Key Vault secrets are up to 25 KiB each, so
/// the count alone could let the cache take a large part of the node's memory limit).
const MAX_SHARED_BYTES: usize = 16 * 1024 * 1024;

/// The approximate memory a cached value takes, for [`MAX_SHARED_BYTES`].
pub(super) trait Weigh {
    /// Bytes held by the value.
    fn weight(&self) -> usize;
}

impl Weigh for Arc<Fetched> {
    fn weight(&self) -> usize {
        let opt = |v: &Option<Vec<u8>>| v.as_ref().map_or(0, Vec::len);
        match self.as_ref() {
            Fetched::Secret(s) => {
                s.value.expose().len()
                    + s.id.len()
                    + s.content_type.as_ref().map_or(0, String::len)
                    + s.kid.as_ref().map_or(0, String::len)
            }
            Fetched::Key(k) => k.kid.len() + opt(&k.n) + opt(&k.e) + opt(&k.x) + opt(&k.y),
            Fetched::Cert(c) => c.id.len() + c.cer.len(),
        }
    }
}

/// Recent results by key, each with the time it was fetched.
pub(super) struct ShareCache<K, V> {
    inner: Mutex<Inner<K, V>>,
}

struct Inner<K, V> {
    recent: HashMap<K, (Instant, V)>,
    /// Sum of the held values' weights.
    bytes: usize,
    next_sweep: Instant,
}

impl<K, V> Default for ShareCache<K, V> {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                recent: HashMap::new(),
                bytes: 0,
                next_sweep: Instant::now(),
            }),
        }
    }
}

impl<K: Eq + Hash, V: Clone + Weigh> ShareCache<K, V> {
    /// The cache, with results older than `window` swept out when a sweep is due.
    fn lock(&self, window: Duration) -> MutexGuard<'_, Inner<K, V>> {
        // Every change keeps `bytes` in step with `recent`: consistent after a panic.
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if now >= inner.next_sweep {
            let mut freed = 0;
            inner.recent.retain(|_, (at, v)| {
                let keep = now.saturating_duration_since(*at) < window;
                if !keep {
                    freed += v.weight();
                }
                keep
            });
            inner.bytes = inner.bytes.saturating_sub(freed);
            inner.next_sweep = now + window;
        }
        inner
    }

    /// The result fetched for `key` less than `window` ago.
    pub(super) fn recent(&self, key: &K, window: Duration) -> Option<V> {
        if window.is_zero() {
            return None;
        }
        let inner = self.lock(window);
        inner
            .recent
            .get(key)
            .filter(|(at, _)| at.elapsed() < window)
            .map(|(_, v)| v.clone())
    }

    /// Keeps `value` for `window`; when full, expired entries go first, and a still-full cache
    /// does not take new ones.
    pub(super) fn remember(&self, key: K, value: V, window: Duration) {
        if window.is_zero() {
            return;
        }
        let mut inner = self.lock(window);
        let weight = value.weight();
        let full = |i: &Inner<K, V>| {
            i.recent.len() >= MAX_SHARED_RESULTS || i.bytes + weight > MAX_SHARED_BYTES
        };
        if full(&inner) {
            inner.next_sweep = Instant::now();
            drop(inner);
            inner = self.lock(window);
            if full(&inner) {
                return;
            }
        }
        if let Some((_, old)) = inner.recent.insert(key, (Instant::now(), value)) {
            inner.bytes = inner.bytes.saturating_sub(old.weight());
        }
        inner.bytes += weight;
    }

    /// Number of results held, and their bytes.
    #[cfg(test)]
    pub(super) fn size(&self) -> (usize, usize) {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        (inner.recent.len(), inner.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Weigh for Vec<u8> {
        fn weight(&self) -> usize {
            self.len()
        }
    }

    const WINDOW: Duration = Duration::from_secs(120);

    #[tokio::test(start_paused = true)]
    async fn results_older_than_the_window_are_swept_out() {
        let cache: ShareCache<u32, Vec<u8>> = ShareCache::default();
        for k in 0..100 {
            cache.remember(k, vec![0; 10], WINDOW);
        }
        assert_eq!(cache.recent(&5, WINDOW), Some(vec![0; 10]));
        assert_eq!(cache.size(), (100, 1000));
        tokio::time::advance(WINDOW).await;
        assert_eq!(cache.recent(&5, WINDOW), None);
        assert_eq!(cache.size(), (0, 0), "memory back to idle: no secret kept");
    }

    #[tokio::test(start_paused = true)]
    async fn the_cache_is_bounded_by_count_and_bytes() {
        let cache: ShareCache<usize, Vec<u8>> = ShareCache::default();
        for k in 0..MAX_SHARED_RESULTS + 10 {
            cache.remember(k, vec![0; 1], WINDOW);
        }
        assert_eq!(cache.size().0, MAX_SHARED_RESULTS);
        let cache: ShareCache<usize, Vec<u8>> = ShareCache::default();
        let big = MAX_SHARED_BYTES / 4 + 1;
        for k in 0..5 {
            cache.remember(k, vec![0; big], WINDOW);
        }
        assert_eq!(cache.size(), (3, 3 * big));
        // Once the window has passed, room is made for new results.
        tokio::time::advance(WINDOW).await;
        cache.remember(9, vec![0; big], WINDOW);
        assert_eq!(cache.size(), (1, big));
    }
}
