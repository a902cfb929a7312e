//! keyvol's own rotation loop — upstream v1.5's model — for clusters whose CSIDriver does not
//! set `requiresRepublish`: every `--rotation-loop-interval`, each volume this process mounted
//! is refreshed; files are swapped atomically only when something changed, the
//! SecretProviderClassPodStatus and synced Secrets follow, and the pod gets an event
//! (`MountRotationComplete`, or `MountRotationFailed` with the current files kept).
//!
//! The loop works from what kubelet handed over at publish time (kept in memory only), so after
//! a restart it covers volumes again once kubelet republishes or the pod is recreated. The
//! volumes themselves are kept in [`crate::registry`], which the publish flow fills.
//!
//! A round refreshes at most [`ROTATION_CONCURRENCY`] volumes at a time.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use keyvol_core::report;

use crate::cluster::EventType;
use crate::error::NodeError;
use crate::publish::{NodeState, PublishOutcome};

/// Most volumes one rotation round refreshes at the same time. A node with hundreds of volumes
/// would otherwise send every fetch of every volume to the vaults at once — a burst Key Vault
/// throttles — and hold all their files in memory together; 16 keeps a round of a full node
/// (110 pods) to a few seconds.
pub const ROTATION_CONCURRENCY: usize = 16;

/// Runs `each` on every item, at most `limit` at a time.
async fn for_each_bounded<T, F, Fut>(items: Vec<T>, limit: usize, each: F)
where
    F: FnMut(T) -> Fut,
    Fut: Future<Output = ()>,
{
    futures::stream::iter(items)
        .for_each_concurrent(limit.max(1), each)
        .await;
}

/// Runs one round: refreshes every registered volume, at most [`ROTATION_CONCURRENCY`] at a
/// time (each under its own lock).
pub async fn round(state: &Arc<NodeState>) {
    let volumes = state.registry.snapshot();
    for_each_bounded(volumes, ROTATION_CONCURRENCY, |req| {
        let state = state.clone();
        async move {
            let (ns, pod, uid, class, volume_id) =
                (req.pod_namespace.clone(), req.pod_name.clone(), req.pod_uid.clone(), req.class_name.clone(), req.volume_id.clone());
            let result = state.refresh(req).await;
            let event = match &result {
                Ok(PublishOutcome::Refreshed { changed: true }) => Some((
                    EventType::Normal,
                    "MountRotationComplete",
                    format!("successfully rotated mounted contents for spc {ns}/{class}"),
                )),
                Ok(PublishOutcome::KeptAfterError) => Some((
                    EventType::Warning,
                    "MountRotationFailed",
                    format!("failed to rotate mounted contents for spc {ns}/{class}; the current files are kept"),
                )),
                Err(e) => Some((EventType::Warning, "MountRotationFailed", format!("failed to rotate mounted contents for spc {ns}/{class}: {}", report::chain(e)))),
                Ok(_) => None,
            };
            if let Err(NodeError::InvalidArgument(_)) = &result {
                // No longer mounted (unpublished behind our back): stop refreshing it.
                state.registry.forget(&volume_id);
                return;
            }
            if let Some((kind, reason, message)) = event {
                let _ = state.cluster.event(&ns, &pod, &uid, kind, reason, &message).await;
            }
        }
    })
    .await;
}

/// Runs rounds every `interval` until the future is dropped.
pub async fn run(state: Arc<NodeState>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        round(&state).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_round_refreshes_at_most_the_limit_at_a_time_and_every_volume_once() {
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let done = AtomicUsize::new(0);
        for_each_bounded((0..200).collect(), ROTATION_CONCURRENCY, |_| async {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
            running.fetch_sub(1, Ordering::SeqCst);
            done.fetch_add(1, Ordering::SeqCst);
        })
        .await;
        assert_eq!(done.load(Ordering::SeqCst), 200);
        assert_eq!(peak.load(Ordering::SeqCst), ROTATION_CONCURRENCY);
    }
}
