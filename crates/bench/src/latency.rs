//! Mount latency and requests per mount, cold and warm, one mount at a time: NodePublishVolume
//! through `keyvol node` (each sample a new volume, unpublished afterwards, untimed) or Mount
//! through `keyvol provider`. A cold sample uses a service principal the daemon has never seen;
//! a warm one the daemon's warm identity. Cold and warm samples alternate, so drift on a shared
//! machine affects both alike. The dev vault's counters are reset before and read after each
//! mount.
//!
//! Samples are paced to the daemon's own per-vault request rate (keyvol-azure's
//! [`RATE_PER_SECOND`]): a mount of `n` objects starts no sooner than `n / RATE_PER_SECOND`
//! after the one before, so no sample waits on that budget — back to back, 10-object mounts
//! with no added latency would ask for several thousand requests a second, and the figure
//! would measure the budget instead of keyvol's work.

use std::path::PathBuf;
use std::time::Duration;

use keyvol_azure::provider::RATE_PER_SECOND;
use tokio::time::Instant;

use crate::driver::Driver;
use crate::error::BenchError;
use crate::kubelet;
use crate::report::{Cache, LatencyFigure};
use crate::requests::{RequestCounts, RequestsPerMount};
use crate::rig::Rig;
use crate::stats::Summary;
use crate::workload::Identity;

/// Untimed mounts with the warm identity before each figure: the first loads the class (node)
/// and the identity's token and vault client; the second settles connections.
const WARM_UP_MOUNTS: usize = 2;

/// The least time between the starts of two mounts of `objects` objects, so the samples stay
/// within the daemon's per-vault request rate.
pub fn pace(objects: usize) -> Duration {
    Duration::from_secs_f64(objects as f64 / f64::from(RATE_PER_SECOND))
}

/// The daemon being measured.
pub enum Via {
    /// `keyvol node`, through its CSI socket.
    Node {
        /// The CSI socket.
        socket: PathBuf,
    },
    /// `keyvol provider`, through its provider socket.
    Provider(Driver),
}

impl Via {
    /// One mount of a new volume with `objects` objects as `identity`; the node's volume is
    /// unpublished again (not timed).
    async fn mount(
        &mut self,
        rig: &Rig,
        objects: usize,
        identity: &Identity,
    ) -> Result<(Duration, RequestCounts), BenchError> {
        let volume = rig.new_volume(objects);
        rig.reset_counters();
        match self {
            Via::Node { socket } => {
                let took = kubelet::publish(socket, volume.publish_request(identity))
                    .await?
                    .took;
                let counts = rig.counts();
                kubelet::unpublish(socket, &volume).await?;
                Ok((took, counts))
            }
            Via::Provider(driver) => {
                let took = driver.mount(&volume, objects, identity).await?;
                Ok((took, rig.counts()))
            }
        }
    }
}

/// What to measure.
pub struct Plan<'a> {
    /// Samples per figure (each cold and each warm).
    pub samples: usize,
    /// Added vault latencies, ms.
    pub added_latency_ms: &'a [u64],
    /// Objects per volume.
    pub object_counts: &'a [usize],
}

/// Measures every figure of `plan` through `via`; `progress` hears one line per figure.
pub async fn measure(
    rig: &Rig,
    via: &mut Via,
    plan: &Plan<'_>,
    progress: &(dyn Fn(String) + Sync),
) -> Result<Vec<LatencyFigure>, BenchError> {
    let warm = rig.identities.fresh()?;
    let mut figures = Vec::new();
    for &added in plan.added_latency_ms {
        rig.set_added_latency(added)?;
        for &objects in plan.object_counts {
            for _ in 0..WARM_UP_MOUNTS {
                via.mount(rig, objects, &warm).await?;
            }
            let mut times = [Vec::new(), Vec::new()];
            let mut counts = [Vec::new(), Vec::new()];
            let mut next = Instant::now();
            for _ in 0..plan.samples {
                for (i, cache) in [Cache::Cold, Cache::Warm].into_iter().enumerate() {
                    let identity = match cache {
                        Cache::Cold => rig.identities.fresh()?,
                        Cache::Warm => warm.clone(),
                    };
                    tokio::time::sleep_until(next).await;
                    next = Instant::now() + pace(objects);
                    let (took, c) = via.mount(rig, objects, &identity).await?;
                    times[i].push(took);
                    counts[i].push(c);
                }
            }
            for (i, cache) in [Cache::Cold, Cache::Warm].into_iter().enumerate() {
                let Some(latency_ms) = Summary::of_durations(&times[i]) else {
                    continue;
                };
                let requests = RequestsPerMount::of(&counts[i]);
                progress(format!(
                    "  {objects:>3} objects, +{added} ms, {}: p50 {:.1} ms, p99 {:.1} ms, {:.1} requests/mount",
                    cache.label(),
                    latency_ms.p50,
                    latency_ms.p99,
                    requests.total()
                ));
                figures.push(LatencyFigure {
                    objects,
                    added_latency_ms: added,
                    cache,
                    latency_ms,
                    requests,
                });
            }
        }
    }
    rig.set_added_latency(0)?;
    Ok(figures)
}
