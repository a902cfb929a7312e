//! Which object kinds a Key Vault client has made a request for. A new client sends its first
//! request unauthenticated and gets a 401 with the challenge; the provider sends the first
//! object of each kind alone on a new client so concurrent first requests do not each collect
//! a 401.
//!
//! The state lives with its client in the provider's client cache, so it is dropped (and
//! learned again) exactly when the client is.

use std::sync::Mutex;

use crate::objects::ObjectType;

/// The kinds (secret, key, certificate) one client has made a request for.
#[derive(Default)]
pub(super) struct Warmup {
    warm: Mutex<[bool; 3]>,
}

fn slot(kind: ObjectType) -> usize {
    match kind {
        ObjectType::Secret => 0,
        ObjectType::Key => 1,
        ObjectType::Cert => 2,
    }
}

impl Warmup {
    /// True when the client has not made a request for `kind` yet.
    pub(super) fn needed(&self, kind: ObjectType) -> bool {
        self.warm.lock().map(|w| !w[slot(kind)]).unwrap_or(false)
    }

    /// Records that the client has made a request for `kind`.
    pub(super) fn done(&self, kind: ObjectType) {
        if let Ok(mut w) = self.warm.lock() {
            w[slot(kind)] = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_warms_once() {
        let w = Warmup::default();
        assert!(w.needed(ObjectType::Secret) && w.needed(ObjectType::Cert));
        w.done(ObjectType::Secret);
        assert!(!w.needed(ObjectType::Secret));
        assert!(w.needed(ObjectType::Key), "other kinds are not warm");
    }
}
