//! keyvol's own rotation loop — upstream v1.5's model — for clusters whose CSIDriver does not
//! set `requiresRepublish`: every `--rotation-loop-interval`, each volume this process mounted
//! is refreshed; files are swapped atomically only when something changed, the
//! SecretProviderClassPodStatus and synced Secrets follow, and the pod gets an event
//! (`MountRotationComplete`, or `MountRotationFailed` with the current files kept).
//!
//! The loop works from what kubelet handed over at publish time (kept in memory only), so after
//! a restart it covers volumes again once kubelet republishes or the pod is recreated. The
//! volumes themselves are kept in [`crate::registry`], which the publish flow fills.

use std::sync::Arc;
use std::time::Duration;

use keyvol_core::report;

use crate::cluster::EventType;
use crate::error::NodeError;
use crate::publish::{NodeState, PublishOutcome};

/// Runs one round: refreshes every registered volume, concurrently (each under its own lock).
pub async fn round(state: &Arc<NodeState>) {
    let volumes = state.registry.snapshot();
    let tasks = volumes.into_iter().map(|req| {
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
    });
    futures::future::join_all(tasks).await;
}

/// Runs rounds every `interval` until the future is dropped.
pub async fn run(state: Arc<NodeState>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        round(&state).await;
    }
}
