//! One lock per volume: operations on the same volume run one at a time, unrelated volumes never
//! wait on each other. Entries disappear when no one holds or waits for them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// The lock table.
#[derive(Default)]
pub struct VolumeLocks {
    map: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
}

/// A held volume lock; dropping it releases the volume.
pub struct VolumeGuard<'a> {
    locks: &'a VolumeLocks,
    key: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl VolumeLocks {
    /// Waits for and takes the lock of `volume_id`.
    pub async fn lock(&self, volume_id: &str) -> VolumeGuard<'_> {
        let mutex = {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(volume_id.to_owned()).or_default().clone()
        };
        let guard = mutex.lock_owned().await;
        VolumeGuard {
            locks: self,
            key: volume_id.to_owned(),
            guard: Some(guard),
        }
    }

    /// Number of volumes with a lock entry (held or awaited).
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// True when no volume is locked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for VolumeGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.locks.map.lock().unwrap_or_else(|p| p.into_inner());
        // Only the table holds the mutex now: nobody waits, so the entry can go.
        if map
            .get(&self.key)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn unrelated_volumes_do_not_wait_and_entries_are_freed() {
        let locks = VolumeLocks::default();
        let a = locks.lock("a").await;
        // "b" is free even though "a" is held.
        let b = tokio::time::timeout(Duration::from_millis(100), locks.lock("b"))
            .await
            .expect("b is not blocked by a");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), locks.lock("a"))
                .await
                .is_err(),
            "a is exclusive"
        );
        drop(a);
        drop(b);
        assert!(locks.is_empty());
    }
}
