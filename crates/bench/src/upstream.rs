//! Upstream's design as a model, not a measurement (upstream cannot run here): what the upstream
//! Azure provider sends for one Mount of a volume of secrets with a service principal, from its
//! documented behaviour — a new credential and new Key Vault clients on every Mount, so every
//! Mount pays the 401 challenge, MSAL's instance and tenant discovery and a token request, then
//! one GET per object, strictly one after another. A rotation poll is an ordinary Mount, so a
//! round over many volumes is that many Mounts.

/// One Mount of a volume of `objects` secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamMount {
    /// Objects in the volume.
    pub objects: u64,
}

impl UpstreamMount {
    /// The unauthenticated first request answered with the challenge: one per Key Vault client
    /// used; a volume of secrets uses the secrets client only.
    pub const CHALLENGES: u64 = 1;
    /// MSAL's instance discovery and tenant (OpenID configuration) discovery, per credential.
    pub const DISCOVERY: u64 = 2;
    /// Token requests, per credential.
    pub const TOKENS: u64 = 1;

    /// A volume of `objects` secrets.
    pub fn of(objects: usize) -> Self {
        Self {
            objects: objects as u64,
        }
    }

    /// Key Vault requests: the challenge and one GET per object.
    pub fn vault(&self) -> u64 {
        Self::CHALLENGES + self.objects
    }

    /// Identity-endpoint requests: discovery and the token.
    pub fn identity(&self) -> u64 {
        Self::DISCOVERY + Self::TOKENS
    }

    /// Round trips the Mount waits for one after another: every request, as none overlap.
    pub fn round_trips(&self) -> u64 {
        self.vault() + self.identity()
    }

    /// Waiting for the vault and Entra ID alone, with `added_latency_ms` per round trip.
    pub fn wait_ms(&self, added_latency_ms: u64) -> u64 {
        self.round_trips() * added_latency_ms
    }
}

/// A rotation round over `volumes` volumes: one Mount each, whatever the identities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamRound {
    /// Volumes republished.
    pub volumes: u64,
    /// Each volume's Mount.
    pub mount: UpstreamMount,
}

impl UpstreamRound {
    /// `volumes` volumes of `objects` secrets.
    pub fn of(volumes: usize, objects: usize) -> Self {
        Self {
            volumes: volumes as u64,
            mount: UpstreamMount::of(objects),
        }
    }

    /// Key Vault requests.
    pub fn vault(&self) -> u64 {
        self.volumes * self.mount.vault()
    }

    /// Of them, 401 challenges.
    pub fn challenges(&self) -> u64 {
        self.volumes * UpstreamMount::CHALLENGES
    }

    /// Identity-endpoint requests.
    pub fn identity(&self) -> u64 {
        self.volumes * self.mount.identity()
    }

    /// Token requests.
    pub fn tokens(&self) -> u64 {
        self.volumes * UpstreamMount::TOKENS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ten_object_mount_is_fourteen_sequential_round_trips() {
        let m = UpstreamMount::of(10);
        assert_eq!((m.vault(), m.identity(), m.round_trips()), (11, 3, 14));
        assert_eq!(m.wait_ms(20), 280);
        assert_eq!(UpstreamMount::of(1).round_trips(), 5);
    }

    #[test]
    fn a_round_is_one_mount_per_volume() {
        let r = UpstreamRound::of(1000, 10);
        assert_eq!(r.vault(), 11_000);
        assert_eq!(r.challenges(), 1000);
        assert_eq!(r.identity(), 3000);
        assert_eq!(r.tokens(), 1000);
    }
}
