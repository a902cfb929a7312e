//! [`IdleCache`]: the bounded map behind every per-identity and per-vault cache of the provider
//! (credentials and their tokens, Key Vault clients). An entry not used for its idle time is
//! dropped, and the map never holds more than its capacity, so the node's memory returns to its
//! idle level after many identities have come and gone.
//!
//! Eviction is opportunistic — every access sweeps the whole map at most once per quarter of
//! the idle time — and [`IdleCache::sweep_now`] lets the provider's eviction task sweep a map
//! nothing accesses any more. When the map is full and nothing is idle,
//! the least recently used entry makes room. Time is `tokio::time`'s, so tests drive it with
//! `tokio::time::pause`.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

/// A map whose entries are dropped after `idle` without use, holding at most `capacity`.
pub(crate) struct IdleCache<K, V> {
    inner: Mutex<Inner<K, V>>,
    idle: Duration,
    capacity: usize,
}

struct Inner<K, V> {
    map: HashMap<K, (V, Instant)>,
    /// When the next full sweep is due.
    next_sweep: Instant,
}

impl<K: Eq + Hash + Clone, V: Clone> IdleCache<K, V> {
    /// An empty cache. A zero `capacity` is taken as one.
    pub(crate) fn new(idle: Duration, capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                next_sweep: Instant::now() + idle / 4,
            }),
            idle,
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<K, V>> {
        // The map stays consistent whatever a panicking holder was doing: every change is a
        // single insert or remove.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value for `key`, marked as used now.
    pub(crate) fn get(&self, key: &K) -> Option<V> {
        let now = Instant::now();
        let mut inner = self.lock();
        self.sweep(&mut inner, now);
        let (value, used) = inner.map.get_mut(key)?;
        *used = now;
        Some(value.clone())
    }

    /// The value for `key`, created with `make` when there is none (or it went idle).
    pub(crate) fn get_or_try_insert_with<E>(
        &self,
        key: &K,
        make: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        let now = Instant::now();
        let mut inner = self.lock();
        self.sweep(&mut inner, now);
        if let Some((value, used)) = inner.map.get_mut(key) {
            *used = now;
            return Ok(value.clone());
        }
        let value = make()?;
        self.make_room(&mut inner, now);
        inner.map.insert(key.clone(), (value.clone(), now));
        Ok(value)
    }

    /// Stores `value` for `key` (replacing any), making room first.
    pub(crate) fn insert(&self, key: K, value: V) {
        let now = Instant::now();
        let mut inner = self.lock();
        self.sweep(&mut inner, now);
        if let Some(entry) = inner.map.get_mut(&key) {
            *entry = (value, now);
            return;
        }
        self.make_room(&mut inner, now);
        inner.map.insert(key, (value, now));
    }

    /// Number of entries, idle ones not yet swept included.
    pub(crate) fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Drops every idle entry now, whether or not a sweep is due; returns how many went. The
    /// provider's eviction task calls it, so a node that nothing mounts on any more lets go of
    /// what it held too.
    pub(crate) fn sweep_now(&self) -> usize {
        let now = Instant::now();
        let mut inner = self.lock();
        let before = inner.map.len();
        inner.next_sweep = now;
        self.sweep(&mut inner, now);
        before - inner.map.len()
    }

    /// Drops idle entries when a sweep is due.
    fn sweep(&self, inner: &mut Inner<K, V>, now: Instant) {
        if now < inner.next_sweep {
            return;
        }
        let idle = self.idle;
        inner
            .map
            .retain(|_, (_, used)| now.saturating_duration_since(*used) < idle);
        inner.next_sweep = now + idle / 4;
    }

    /// Makes room for one entry: idle ones go first, then the least recently used.
    fn make_room(&self, inner: &mut Inner<K, V>, now: Instant) {
        if inner.map.len() < self.capacity {
            return;
        }
        inner.next_sweep = now;
        self.sweep(inner, now);
        while inner.map.len() >= self.capacity {
            let Some(oldest) = inner
                .map
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            inner.map.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(v: u32) -> impl FnOnce() -> Result<u32, ()> {
        move || Ok(v)
    }

    #[tokio::test(start_paused = true)]
    async fn entries_not_used_for_the_idle_time_are_dropped_on_a_later_access() {
        let cache: IdleCache<u32, u32> = IdleCache::new(Duration::from_secs(600), 100);
        for k in 0..50 {
            cache.get_or_try_insert_with(&k, ok(k)).expect("insert");
        }
        tokio::time::advance(Duration::from_secs(300)).await;
        assert_eq!(cache.get(&7), Some(7), "used: stays");
        tokio::time::advance(Duration::from_secs(400)).await;
        // 700 s after insertion, 400 s after its last use: only key 7 survives the sweep.
        assert_eq!(cache.get(&7), Some(7));
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get(&8), None);
        tokio::time::advance(Duration::from_secs(601)).await;
        assert_eq!(cache.get(&7), None);
        assert_eq!(cache.len(), 0, "memory back to idle");
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_cache_drops_the_least_recently_used_entry() {
        let cache: IdleCache<u32, u32> = IdleCache::new(Duration::from_secs(600), 3);
        for k in 0..3 {
            cache.get_or_try_insert_with(&k, ok(k)).expect("insert");
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        cache.get(&0);
        cache.get_or_try_insert_with(&3, ok(3)).expect("insert");
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get(&1), None, "least recently used went");
        assert_eq!(
            (cache.get(&0), cache.get(&2), cache.get(&3)),
            (Some(0), Some(2), Some(3))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_make_stores_nothing() {
        let cache: IdleCache<u32, u32> = IdleCache::new(Duration::from_secs(600), 3);
        assert_eq!(cache.get_or_try_insert_with(&1, || Err("no")), Err("no"));
        assert_eq!(cache.len(), 0);
    }
}
