//! Bursts: many NodePublishVolume calls sent at once — a Deployment scaled up on one node — to a
//! freshly started `keyvol node`, all for the same class, either with one service principal or
//! with one each. The node is warmed only by one unrelated publish (another class, another
//! identity) so its class cache is running; the burst's identities are cold. Reported: wall
//! time, outcomes, requests the dev vault saw, each publish's time, and the node's resident set
//! (its `VmHWM` is the peak, the node having been started for this burst).

use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::join_all;

use crate::error::BenchError;
use crate::kubelet::{self, Volume};
use crate::report::{BurstFigure, Identities};
use crate::rig::Rig;
use crate::stats::Summary;

/// Unpublishes in flight while cleaning up after a burst.
const CLEANUP_CONCURRENCY: usize = 16;

/// One burst.
pub struct Burst {
    /// Shared or distinct identities.
    pub identities: Identities,
    /// Volumes published at once.
    pub volumes: usize,
    /// Objects per volume (a class with this many objects must exist).
    pub objects: usize,
    /// Object count of another class, used to warm the node.
    pub warm_up_objects: usize,
    /// Added vault latency, ms.
    pub added_latency_ms: u64,
}

/// Unpublishes `volumes` (bounded concurrency); returns how many failed.
pub async fn unpublish_all(socket: &std::path::Path, volumes: &[Volume]) -> usize {
    futures::stream::iter(volumes)
        .map(|v| kubelet::unpublish(socket, v))
        .buffer_unordered(CLEANUP_CONCURRENCY)
        .filter(|r| std::future::ready(r.is_err()))
        .count()
        .await
}

/// Runs the burst `runs` times, each against a node started for it, and reports the run with
/// the median wall time (a single burst on a shared machine is a noisy sample), with every
/// run's wall time alongside.
pub async fn run_median(rig: &Rig, burst: &Burst, runs: usize) -> Result<BurstFigure, BenchError> {
    let mut figures = Vec::with_capacity(runs.max(1));
    for _ in 0..runs.max(1) {
        figures.push(run(rig, burst).await?);
    }
    let walls: Vec<f64> = figures.iter().map(|f| f.wall_ms).collect();
    figures.sort_by(|a, b| a.wall_ms.total_cmp(&b.wall_ms));
    let mut median = figures.swap_remove((figures.len() - 1) / 2);
    median.wall_ms_runs = walls;
    Ok(median)
}

/// Runs one burst against a node started for it. Connects the node's socket refuses (its
/// listen backlog is finite) are retried as gRPC clients do, and counted.
pub async fn run(rig: &Rig, burst: &Burst) -> Result<BurstFigure, BenchError> {
    rig.set_added_latency(burst.added_latency_ms)?;
    let mut node = rig.start_node(&[]).await?;
    let socket = node.socket().to_path_buf();

    let warm_up = rig.new_volume(burst.warm_up_objects);
    kubelet::publish(&socket, warm_up.publish_request(&rig.identities.fresh()?)).await?;
    kubelet::unpublish(&socket, &warm_up).await?;

    let shared = rig.identities.fresh()?;
    let mut requests = Vec::with_capacity(burst.volumes);
    let mut volumes = Vec::with_capacity(burst.volumes);
    for _ in 0..burst.volumes {
        let volume = rig.new_volume(burst.objects);
        let identity = match burst.identities {
            Identities::Shared => shared.clone(),
            Identities::Distinct => rig.identities.fresh()?,
        };
        requests.push(volume.publish_request(&identity));
        volumes.push(volume);
    }

    rig.reset_counters();
    let started = Instant::now();
    let results = join_all(requests.into_iter().map(|r| kubelet::publish(&socket, r))).await;
    let wall = started.elapsed();
    let counts = rig.counts();
    let resident = node.resident().ok();

    let mut times: Vec<Duration> = Vec::new();
    let mut failed = 0;
    let mut refused_connects = 0;
    let mut first_error = None;
    for r in results {
        match r {
            Ok(p) => {
                times.push(p.took);
                refused_connects += u64::from(p.refused_connects);
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    unpublish_all(&socket, &volumes).await;
    node.stop().await;
    rig.set_added_latency(0)?;
    Ok(BurstFigure {
        identities: burst.identities,
        volumes: burst.volumes,
        objects: burst.objects,
        added_latency_ms: burst.added_latency_ms,
        wall_ms: wall.as_secs_f64() * 1000.0,
        wall_ms_runs: Vec::new(),
        succeeded: times.len(),
        failed,
        first_error,
        refused_connects,
        requests: counts,
        publish_ms: Summary::of_durations(&times),
        node_resident: resident,
    })
}
