//! The node holding many volumes: a fresh `keyvol node` (rotation on republish enabled) gets
//! `volumes` volumes of one class and one identity published with bounded concurrency; its
//! resident set is read with them all mounted, and a few more warm publishes are timed one at a
//! time on the loaded node. Then, once the poll interval has passed, every
//! volume is republished once — what kubelet does with `requiresRepublish` — and the requests
//! of that rotation round are counted. Finally everything is unpublished.

use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::burst::unpublish_all;
use crate::error::BenchError;
use crate::kubelet;
use crate::report::{MountedFootprint, RotationFigure};
use crate::rig::Rig;
use crate::stats::Summary;

/// The node's `--rotation-poll-interval` in this scenario: long enough for a round over every
/// volume to fit in one interval (the node's fetch share window defaults to the interval), short
/// enough not to stretch the run.
const ROTATION_POLL_INTERVAL: Duration = Duration::from_secs(10);

/// What to mount.
pub struct Plan {
    /// Volumes.
    pub volumes: usize,
    /// Objects per volume.
    pub objects: usize,
    /// Publishes in flight.
    pub concurrency: usize,
    /// Also measure one rotation round.
    pub rotation: bool,
    /// Warm publishes timed one at a time with every volume mounted.
    pub loaded_samples: usize,
}

/// Mounts, measures, republishes, unmounts.
pub async fn run(
    rig: &Rig,
    plan: &Plan,
) -> Result<(MountedFootprint, Option<RotationFigure>), BenchError> {
    rig.set_added_latency(0)?;
    let interval = format!(
        "--rotation-poll-interval={}s",
        ROTATION_POLL_INTERVAL.as_secs()
    );
    let mut node = rig
        .start_node(&["--enable-secret-rotation=true", &interval])
        .await?;
    let socket = node.socket().to_path_buf();
    let identity = rig.identities.fresh()?;
    let volumes: Vec<_> = (0..plan.volumes)
        .map(|_| rig.new_volume(plan.objects))
        .collect();

    rig.reset_counters();
    let started = Instant::now();
    let results: Vec<Result<kubelet::Published, BenchError>> = futures::stream::iter(&volumes)
        .map(|v| kubelet::publish(&socket, v.publish_request(&identity)))
        .buffer_unordered(plan.concurrency.max(1))
        .collect()
        .await;
    let publish_wall = started.elapsed();
    let requests = rig.counts();
    if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
        unpublish_all(&socket, &volumes).await;
        return Err(e);
    }
    let resident = node.resident()?;
    let mut loaded = Vec::with_capacity(plan.loaded_samples);
    for _ in 0..plan.loaded_samples {
        let volume = rig.new_volume(plan.objects);
        loaded.push(
            kubelet::publish(&socket, volume.publish_request(&identity))
                .await?
                .took,
        );
        kubelet::unpublish(&socket, &volume).await?;
    }
    let footprint = MountedFootprint {
        volumes: plan.volumes,
        objects: plan.objects,
        publish_wall_ms: publish_wall.as_secs_f64() * 1000.0,
        requests,
        resident,
        publish_ms_while_mounted: Summary::of_durations(&loaded),
    };

    let rotation = if plan.rotation {
        // Every volume's content is now at least one interval old (the loaded publishes above
        // were unpublished again).
        tokio::time::sleep(ROTATION_POLL_INTERVAL + Duration::from_millis(100)).await;
        rig.reset_counters();
        let started = Instant::now();
        let failed = futures::stream::iter(&volumes)
            .map(|v| kubelet::publish(&socket, v.publish_request(&identity)))
            .buffer_unordered(plan.concurrency.max(1))
            .filter(|r| std::future::ready(r.is_err()))
            .count()
            .await;
        Some(RotationFigure {
            poll_interval_secs: ROTATION_POLL_INTERVAL.as_secs(),
            volumes: plan.volumes,
            objects: plan.objects,
            failed,
            requests: rig.counts(),
            wall_ms: started.elapsed().as_secs_f64() * 1000.0,
        })
    } else {
        None
    };
    unpublish_all(&socket, &volumes).await;
    node.stop().await;
    Ok((footprint, rotation))
}
