//! Identities that come and go: on a fresh `keyvol node`, each of many service principals the
//! node has never seen publishes one volume and unpublishes it again, a bounded number at a time
//! — pods of many tenants starting and ending on one node (after one untimed publish of another
//! identity, as the first publish on a fresh node also loads the class). The node's resident set
//! is read before that and right after the last unpublish; its `VmHWM` afterwards is the peak of
//! the whole churn. What the node keeps per identity (credential, token, vault client) stays
//! until it has gone unused for the node's `--azure-identity-idle` (a few seconds here, minutes
//! by default): the figure right after is the upper end of what those caches cost, and a third
//! reading, once that idle time and the eviction task's next sweep have passed with nothing
//! mounted, is what the node holds when its tenants have gone.

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
    /// The node's `--azure-identity-idle`.
    pub identity_idle: Duration,
}

/// Runs the churn against a node started for it, with no added latency.
pub async fn run(rig: &Rig, plan: &Plan) -> Result<IdentityChurn, BenchError> {
    rig.set_added_latency(0)?;
    let idle = Duration::from_secs(plan.identity_idle.as_secs().max(1));
    let idle_flag = format!("--azure-identity-idle={}s", idle.as_secs());
    let mut node = rig.start_node(&[idle_flag.as_str()]).await?;
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
    // The eviction task sweeps every quarter of the idle time: one idle time and a sweep period
    // (and a margin) after the last use, everything of the churn is gone.
    tokio::time::sleep(idle + idle / 4 + Duration::from_millis(500)).await;
    let evicted = node.resident()?;
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
        identity_idle_secs: idle.as_secs(),
        evicted: Some(evicted),
    })
}
