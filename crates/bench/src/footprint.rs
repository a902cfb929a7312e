//! The node holding many volumes: a fresh `keyvol node` (rotation on republish enabled) gets
//! `volumes` volumes of one class published with bounded concurrency — all with one identity, or
//! each with its own; its resident set is read with them all mounted, and (one identity) a few
//! more warm publishes are timed one at a time on the loaded node. Then, once the poll interval
//! has passed, every volume is republished once with the dev vault's added latency — what kubelet
//! does with `requiresRepublish` — and the requests, the time and the node's peak memory of that
//! rotation round are recorded. Finally everything is unpublished.

use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::burst::unpublish_all;
use crate::error::BenchError;
use crate::kubelet::{self, Volume};
use crate::report::{Identities, MountedFootprint, RotationFigure};
use crate::rig::Rig;
use crate::stats::Summary;
use crate::workload::Identity;

/// What to mount.
pub struct Plan {
    /// Volumes.
    pub volumes: usize,
    /// One identity for all, or one each.
    pub identities: Identities,
    /// Objects per volume.
    pub objects: usize,
    /// Publishes in flight.
    pub concurrency: usize,
    /// Also measure one rotation round, with this latency added to every request (ms).
    pub rotation_latency_ms: Option<u64>,
    /// The node's `--rotation-poll-interval`, waited out before the round: long enough for a
    /// round over every volume to fit in one interval (the node's fetch share window defaults
    /// to the interval), short enough not to stretch the run.
    pub poll_interval: Duration,
    /// Warm publishes timed one at a time with every volume mounted.
    pub loaded_samples: usize,
}

/// Publishes every volume with its identity, `concurrency` at a time; the time of each success
/// and the first failure, if any.
async fn publish_all(
    socket: &std::path::Path,
    volumes: &[(Volume, Identity)],
    concurrency: usize,
) -> (Vec<Duration>, usize, Option<BenchError>) {
    let results: Vec<Result<kubelet::Published, BenchError>> = futures::stream::iter(volumes)
        .map(|(v, id)| kubelet::publish(socket, v.publish_request(id)))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut times = Vec::with_capacity(results.len());
    let mut failed = 0;
    let mut first = None;
    for r in results {
        match r {
            Ok(p) => times.push(p.took),
            Err(e) => {
                failed += 1;
                first.get_or_insert(e);
            }
        }
    }
    (times, failed, first)
}

/// Mounts, measures, republishes, unmounts.
pub async fn run(
    rig: &Rig,
    plan: &Plan,
) -> Result<(MountedFootprint, Option<RotationFigure>), BenchError> {
    rig.set_added_latency(0)?;
    let interval = format!("--rotation-poll-interval={}s", plan.poll_interval.as_secs());
    let mut node = rig
        .start_node(&["--enable-secret-rotation=true", &interval])
        .await?;
    let socket = node.socket().to_path_buf();
    let shared = rig.identities.fresh()?;
    let mut volumes = Vec::with_capacity(plan.volumes);
    for _ in 0..plan.volumes {
        let identity = match plan.identities {
            Identities::Shared => shared.clone(),
            Identities::Distinct => rig.identities.fresh()?,
        };
        volumes.push((rig.new_volume(plan.objects), identity));
    }
    let plain: Vec<Volume> = volumes.iter().map(|(v, _)| v.clone()).collect();

    rig.reset_counters();
    let started = Instant::now();
    let (_, _, failure) = publish_all(&socket, &volumes, plan.concurrency).await;
    let publish_wall = started.elapsed();
    let requests = rig.counts();
    if let Some(e) = failure {
        unpublish_all(&socket, &plain).await;
        return Err(e);
    }
    let resident = node.resident()?;
    let mut loaded = Vec::with_capacity(plan.loaded_samples);
    for _ in 0..plan.loaded_samples {
        let volume = rig.new_volume(plan.objects);
        loaded.push(
            kubelet::publish(&socket, volume.publish_request(&shared))
                .await?
                .took,
        );
        kubelet::unpublish(&socket, &volume).await?;
    }
    let footprint = MountedFootprint {
        volumes: plan.volumes,
        identities: match plan.identities {
            Identities::Shared => 1,
            Identities::Distinct => plan.volumes,
        },
        objects: plan.objects,
        publish_wall_ms: publish_wall.as_secs_f64() * 1000.0,
        requests,
        resident,
        publish_ms_while_mounted: Summary::of_durations(&loaded),
    };

    let rotation = match plan.rotation_latency_ms {
        Some(added) => {
            // Every volume's content is now at least one interval old (the loaded publishes
            // above were unpublished again).
            tokio::time::sleep(plan.poll_interval + Duration::from_millis(100)).await;
            rig.set_added_latency(added)?;
            let peak_of_round = node.reset_peak()?;
            rig.reset_counters();
            let started = Instant::now();
            let (times, failed, _) = publish_all(&socket, &volumes, plan.concurrency).await;
            let wall = started.elapsed();
            let requests = rig.counts();
            rig.set_added_latency(0)?;
            Some(RotationFigure {
                poll_interval_secs: plan.poll_interval.as_secs(),
                volumes: plan.volumes,
                identities: footprint.identities,
                objects: plan.objects,
                added_latency_ms: added,
                concurrency: plan.concurrency,
                failed,
                requests,
                wall_ms: wall.as_secs_f64() * 1000.0,
                republish_ms: Summary::of_durations(&times),
                node_resident: node.resident().ok(),
                peak_of_round,
            })
        }
        None => None,
    };
    unpublish_all(&socket, &plain).await;
    node.stop().await;
    Ok((footprint, rotation))
}
