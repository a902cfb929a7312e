//! The volumes this process mounted, kept for keyvol's own rotation loop ([`crate::rotation`]):
//! the publish flow registers a volume once its files are written and forgets it on unpublish;
//! the loop refreshes what is registered. In memory only — after a restart, kubelet's
//! republishes fill it again.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::request::PublishRequest;

/// Volumes to refresh, by volume id.
#[derive(Default)]
pub struct Registry {
    volumes: Mutex<BTreeMap<String, PublishRequest>>,
}

impl Registry {
    /// Remembers (or updates) a mounted volume.
    pub fn register(&self, req: PublishRequest) {
        if let Ok(mut v) = self.volumes.lock() {
            v.insert(req.volume_id.clone(), req);
        }
    }

    /// Forgets a volume (unpublished).
    pub fn forget(&self, volume_id: &str) {
        if let Ok(mut v) = self.volumes.lock() {
            v.remove(volume_id);
        }
    }

    /// The volumes now registered.
    pub fn snapshot(&self) -> Vec<PublishRequest> {
        self.volumes
            .lock()
            .map(|v| v.values().cloned().collect())
            .unwrap_or_default()
    }

    /// How many volumes are registered.
    pub fn len(&self) -> usize {
        self.volumes.lock().map(|v| v.len()).unwrap_or(0)
    }

    /// True when none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
