//! The share window: one fetch of an object version serves every volume that asks for it with
//! the same identity within `--share-window` (node-wide sharing). Bounded; zero turns it off.
//! Used by [`super::fetch`], whose key keeps identities apart.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Most entries the share-window cache keeps; beyond it, new results are not cached.
const MAX_SHARED_RESULTS: usize = 10_000;

/// Recent results by key, each with the time it was fetched.
pub(super) struct ShareCache<K, V> {
    recent: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K, V> Default for ShareCache<K, V> {
    fn default() -> Self {
        Self {
            recent: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V: Clone> ShareCache<K, V> {
    /// The result fetched for `key` less than `window` ago.
    pub(super) fn recent(&self, key: &K, window: Duration) -> Option<V> {
        if window.is_zero() {
            return None;
        }
        let map = self.recent.lock().ok()?;
        map.get(key)
            .filter(|(at, _)| at.elapsed() < window)
            .map(|(_, v)| v.clone())
    }

    /// Keeps `value` for `window`; when full, expired entries go first, and a still-full cache
    /// does not take new ones.
    pub(super) fn remember(&self, key: K, value: V, window: Duration) {
        if window.is_zero() {
            return;
        }
        if let Ok(mut map) = self.recent.lock() {
            if map.len() >= MAX_SHARED_RESULTS {
                map.retain(|_, (at, _)| at.elapsed() < window);
            }
            if map.len() < MAX_SHARED_RESULTS {
                map.insert(key, (Instant::now(), value));
            }
        }
    }
}
