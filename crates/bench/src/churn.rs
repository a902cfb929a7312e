//! Identities that come and go: on a fresh `keyvol node`, each of many service principals the
//! node has never seen publishes one volume and unpublishes it again, a bounded number at a time
//! — pods of many tenants starting and ending on one node (after one untimed publish of another
//! identity, as the first publish on a fresh node also loads the class). The node's resident set
//! is read before that and right after the last unpublish; its `VmHWM` afterwards is the peak of the whole churn. What the node
//! keeps per identity (credential, token, vault client) stays until its idle eviction, so the
//! figure right after is the upper end of what those caches cost.

use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::error::BenchError;
use crate::kubelet;
use crate::report::IdentityChurn;
use crate::rig::Rig;

/// How long the fresh node is left alone before its first reading.
const SETTLE: Duration = Duration::from_millis(500);

/// What to churn.
pub struct Plan {
    /// Distinct identities, one volume each.
    pub identities: usize,
    /// Objects per volume.
    pub objects: usize,
    /// Publish-unpublish pairs in flight.
    pub concurrency: usize,
}

/// Runs the churn against a node started for it, with no added latency.
pub async fn run(rig: &Rig, plan: &Plan) -> Result<IdentityChurn, BenchError> {
    rig.set_added_latency(0)?;
    let mut node = rig.start_node(&[]).await?;
    let socket = node.socket().to_path_buf();
    let mut work = Vec::with_capacity(plan.identities);
    for _ in 0..plan.identities {
        work.push((rig.new_volume(plan.objects), rig.identities.fresh()?));
    }
    tokio::time::sleep(SETTLE).await;
    let before = node.resident()?;
    // One untimed publish first: a fresh node's first publish also waits for its view of the
    // API (the class), which is not what this phase measures.
    let warm_up = rig.new_volume(plan.objects);
    kubelet::publish(&socket, warm_up.publish_request(&rig.identities.fresh()?)).await?;
    kubelet::unpublish(&socket, &warm_up).await?;

    rig.reset_counters();
    let started = Instant::now();
    let socket_ref = &socket;
    let failed = futures::stream::iter(&work)
        .map(|(volume, identity)| async move {
            kubelet::publish(socket_ref, volume.publish_request(identity)).await?;
            kubelet::unpublish(socket_ref, volume).await
        })
        .buffer_unordered(plan.concurrency.max(1))
        .filter(|r| std::future::ready(r.is_err()))
        .count()
        .await;
    let wall = started.elapsed();
    let requests = rig.counts();
    let after = node.resident()?;
    node.stop().await;
    Ok(IdentityChurn {
        identities: plan.identities,
        objects: plan.objects,
        concurrency: plan.concurrency,
        wall_ms: wall.as_secs_f64() * 1000.0,
        failed,
        requests,
        before,
        after,
    })
}
