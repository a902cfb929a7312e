//! What a fetch works with: the process-wide [`FetchState`] (requests in flight, the share
//! window, throttle gates and request budgets) and one mount's [`MountCtx`] (its vault client,
//! identity, deadline and formatting), plus the [`FetchKey`] that keeps identities apart.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::coalesce::InFlight;
use super::gate::Gates;
use super::share::ShareCache;
use crate::format::{Fetched, FormatOptions};
use crate::identity::IdentityKey;
use crate::keyvault::KeyVault;
use crate::objects::ObjectType;

/// Identity of one vault request, for coalescing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct FetchKey {
    /// The vault URL.
    pub(super) vault: String,
    /// Who asks (never shared across identities).
    pub(super) identity: IdentityKey,
    /// Secret, key or certificate.
    pub(super) kind: ObjectType,
    /// Object name.
    pub(super) name: String,
    /// Object version; empty for the newest.
    pub(super) version: String,
}

/// Process-wide fetch state: identical requests in flight, recent results within the share
/// window, and per-vault throttling gates. Each is bounded and shrinks back when idle.
#[derive(Default)]
pub(super) struct FetchState {
    /// Requests in flight, joined by identical ones.
    pub(super) in_flight: InFlight<FetchKey, Arc<Fetched>>,
    /// Results within the share window.
    pub(super) shared: ShareCache<FetchKey, Arc<Fetched>>,
    /// Vaults that asked for a pause.
    pub(super) gates: Gates,
    /// Told about every vault request (metrics).
    pub(super) observer: Option<Arc<dyn keyvol_core::RequestObserver>>,
}

/// One mount's view of the provider: the vault client and identity to use, and the deadline.
#[derive(Clone)]
pub(super) struct MountCtx {
    /// The Key Vault client for (vault, identity).
    pub(super) vault: Arc<dyn KeyVault>,
    /// The vault URL (coalescing key, throttle gate).
    pub(super) vault_url: String,
    /// Who asks: the identity the client authenticates as.
    pub(super) identity: IdentityKey,
    /// When the mount gives up, retries included.
    pub(super) deadline: Instant,
    /// The process-wide fetch state.
    pub(super) state: Arc<FetchState>,
    /// How long one fetch serves other volumes (zero: off).
    pub(super) share_window: Duration,
    /// PEM output switches.
    pub(super) format: FormatOptions,
    /// Mode of files whose object sets none.
    pub(super) default_mode: u32,
}

impl MountCtx {
    /// A context for unit tests: `vault` at `https://kv.vault.azure.net/` as a fixed service
    /// principal, a fresh fetch state, no sharing, default formats, a 30-second deadline.
    #[cfg(test)]
    pub(super) fn for_test(vault: Arc<dyn KeyVault>) -> Self {
        Self {
            vault,
            vault_url: "https://kv.vault.azure.net/".into(),
            identity: IdentityKey {
                mode: "ServicePrincipal",
                tenant: "t".into(),
                client_id: "c".into(),
                authority: "a".into(),
                secret_digest: [0; 32],
            },
            deadline: Instant::now() + Duration::from_secs(30),
            state: Arc::new(FetchState::default()),
            share_window: Duration::ZERO,
            format: FormatOptions::default(),
            default_mode: 0o644,
        }
    }
}
