//! Which Key Vault clients have learned their vault's challenge. A new client sends its first
//! request unauthenticated and gets a 401 with the challenge; the provider sends the first
//! object of each kind alone on a new client so concurrent first requests do not each collect
//! a 401.

use std::collections::HashSet;
use std::sync::Mutex;

use crate::identity::IdentityKey;
use crate::objects::ObjectType;

/// (vault, identity, kind) whose client has made a request.
#[derive(Default)]
pub(super) struct Warmup {
    warm: Mutex<HashSet<(String, IdentityKey, ObjectType)>>,
}

impl Warmup {
    /// True when the client for (vault, identity, kind) has not made a request yet.
    pub(super) fn needed(&self, vault: &str, identity: &IdentityKey, kind: ObjectType) -> bool {
        self.warm
            .lock()
            .map(|w| !w.contains(&(vault.to_owned(), identity.clone(), kind)))
            .unwrap_or(false)
    }

    /// Records that the client for (vault, identity, kind) has made a request.
    pub(super) fn done(&self, vault: &str, identity: &IdentityKey, kind: ObjectType) {
        if let Ok(mut w) = self.warm.lock() {
            w.insert((vault.to_owned(), identity.clone(), kind));
        }
    }
}
