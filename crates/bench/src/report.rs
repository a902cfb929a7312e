//! The report one run produces, as written to `benchmarks.json` and rendered into the table,
//! the chart and `benchmarks.md`. Field names are camelCase in JSON; durations are milliseconds
//! and memory KiB unless a field says otherwise.

use serde::{Deserialize, Serialize};

use crate::machine::Machine;
use crate::requests::{RequestCounts, RequestsPerMount};
use crate::resident::Resident;
use crate::stats::Summary;

/// Version of the JSON layout, bumped when a field changes meaning.
pub const REPORT_SCHEMA: u32 = 2;

/// Everything one run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// [`REPORT_SCHEMA`].
    pub schema: u32,
    /// keyvol's version.
    pub keyvol_version: String,
    /// `release` or `debug`: debug builds are several times slower and only fit for smoke runs.
    pub build_profile: String,
    /// The command that produced the report.
    pub command: String,
    /// Start of the run, RFC 3339 (UTC).
    pub started: String,
    /// Length of the run, seconds.
    pub duration_secs: f64,
    /// A smoke run (tiny counts; checks the harness, measures nothing worth publishing).
    pub smoke: bool,
    /// The machine.
    pub machine: Machine,
    /// What was asked for.
    pub settings: Settings,
    /// NodePublishVolume through `keyvol node` over its CSI socket (empty when not root).
    pub node_latency: Vec<LatencyFigure>,
    /// Mount through `keyvol provider` over its provider socket.
    pub provider_latency: Vec<LatencyFigure>,
    /// Many volumes published at once (empty when not root).
    pub bursts: Vec<BurstFigure>,
    /// Resident memory of the daemons.
    pub memory: MemoryFigures,
    /// Rotation rounds (when measured): one identity for every volume, then one identity each.
    pub rotation: Vec<RotationFigure>,
    /// What was skipped or is worth knowing, one sentence each.
    pub notes: Vec<String>,
}

/// The run's parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// Samples per latency figure (each cold and each warm).
    pub samples: usize,
    /// Latency the dev vault adds to every Key Vault and identity request, per setting, ms.
    pub added_latency_ms: Vec<u64>,
    /// Objects per volume in the latency figures.
    pub object_counts: Vec<usize>,
    /// Volumes per burst, one burst size after another.
    pub burst_volumes: Vec<usize>,
    /// Objects per burst volume.
    pub burst_objects: usize,
    /// Volumes mounted for the memory figure.
    pub memory_volumes: usize,
    /// Objects per volume of the memory figure.
    pub memory_objects: usize,
    /// Publishes in flight while mounting the memory figure's volumes.
    pub memory_concurrency: usize,
    /// Runs of each burst (the median run is reported).
    pub burst_runs: usize,
    /// Distinct service principals that publish and unpublish one volume each on a fresh node
    /// for the memory-after-identities figure.
    pub churn_identities: usize,
    /// The node's `--rotation-poll-interval` for the rotation rounds, seconds (the round waits
    /// it out first).
    pub rotation_interval_secs: u64,
}

/// First mount for an identity, or a later one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cache {
    /// A service principal the daemon has never used: credential, token request and the 401
    /// challenge are all part of the mount.
    Cold,
    /// The same service principal as earlier mounts: token and vault client are reused.
    Warm,
}

impl Cache {
    /// `cold` / `warm`.
    pub fn label(self) -> &'static str {
        match self {
            Cache::Cold => "cold",
            Cache::Warm => "warm",
        }
    }
}

/// One latency figure: a path, an object count, an added latency, cold or warm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencyFigure {
    /// Objects in the volume.
    pub objects: usize,
    /// Latency the dev vault added per request, ms.
    pub added_latency_ms: u64,
    /// Cold or warm.
    pub cache: Cache,
    /// Time of one mount call as the caller sees it, ms.
    pub latency_ms: Summary,
    /// Requests per mount.
    pub requests: RequestsPerMount,
}

/// Whose identity the volumes of a burst use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Identities {
    /// Every volume: the same class and the same service principal.
    Shared,
    /// Every volume its own service principal (same class).
    Distinct,
}

impl Identities {
    /// Words for tables.
    pub fn label(self) -> &'static str {
        match self {
            Identities::Shared => "one identity",
            Identities::Distinct => "distinct identities",
        }
    }
}

/// Many NodePublishVolume calls at once, each on its own connection as kubelet makes them, to
/// a freshly started `keyvol node`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BurstFigure {
    /// Shared or distinct identities.
    pub identities: Identities,
    /// Volumes published at once.
    pub volumes: usize,
    /// Objects per volume.
    pub objects: usize,
    /// Latency the dev vault added per request, ms.
    pub added_latency_ms: u64,
    /// From the first call sent to the last answer, ms (the median run's).
    pub wall_ms: f64,
    /// Every run's wall time, ms, in the order they ran; the figure is the median run.
    pub wall_ms_runs: Vec<f64>,
    /// Publishes that succeeded.
    pub succeeded: usize,
    /// Publishes that failed.
    pub failed: usize,
    /// The first failure's gRPC code and message, if any.
    pub first_error: Option<String>,
    /// Connects the node's socket refused and the harness retried (a full listen backlog).
    pub refused_connects: u64,
    /// Requests the burst sent to the dev vault.
    pub requests: RequestCounts,
    /// Time of each successful publish, ms.
    pub publish_ms: Option<Summary>,
    /// The node's resident set after the burst; `hwm_kib` is its peak (the node was started
    /// just for this burst).
    pub node_resident: Option<Resident>,
}

/// Resident memory of the daemons.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryFigures {
    /// `keyvol node` just started, connected to the API, no volumes.
    pub node_idle: Option<Resident>,
    /// `keyvol node` holding many mounted volumes of one identity.
    pub node_mounted: Option<MountedFootprint>,
    /// `keyvol node` holding many mounted volumes, each of its own identity (the rotation-at-scale
    /// node before its round).
    pub node_mounted_distinct: Option<MountedFootprint>,
    /// `keyvol node` after many distinct identities have each published and unpublished a volume.
    pub node_after_identities: Option<IdentityChurn>,
    /// `keyvol provider` just started.
    pub provider_idle: Option<Resident>,
    /// `keyvol provider` after its latency figures (hundreds of mounts, many identities cached).
    pub provider_after: Option<Resident>,
}

/// The node with many volumes mounted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MountedFootprint {
    /// Volumes mounted (each a tmpfs with its files).
    pub volumes: usize,
    /// Distinct identities among them (1: all share one).
    pub identities: usize,
    /// Objects per volume.
    pub objects: usize,
    /// Time to publish them all (bounded concurrency), ms.
    pub publish_wall_ms: f64,
    /// Requests sent to the dev vault while publishing them.
    pub requests: RequestCounts,
    /// The node's resident set with them all mounted (and its peak so far).
    pub resident: Resident,
    /// One more warm publish (and unpublish) at a time with them all mounted, ms: what a mount
    /// costs on a node that already holds many.
    pub publish_ms_while_mounted: Option<Summary>,
}

/// Many identities that came and went: on a fresh node, each of `identities` service principals
/// publishes one volume and unpublishes it again (bounded concurrency); the node's resident set
/// is read before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityChurn {
    /// Distinct service principals, one volume each.
    pub identities: usize,
    /// Objects per volume.
    pub objects: usize,
    /// Publishes (and unpublishes) in flight.
    pub concurrency: usize,
    /// Time from the first publish to the last unpublish, ms.
    pub wall_ms: f64,
    /// Publishes or unpublishes that failed.
    pub failed: usize,
    /// Requests sent to the dev vault.
    pub requests: RequestCounts,
    /// The fresh node before the first publish.
    pub before: Resident,
    /// Right after the last unpublish; `hwm_kib` is the node's peak over the whole churn.
    pub after: Resident,
    /// The node's `--azure-identity-idle` for this phase, seconds.
    #[serde(default)]
    pub identity_idle_secs: u64,
    /// Once that idle time (and the eviction task's next sweep) had passed with nothing
    /// mounted: what the node holds when its tenants have gone.
    #[serde(default)]
    pub evicted: Option<Resident>,
}

/// One rotation round: every mounted volume republished once after the poll interval, as
/// kubelet does with `requiresRepublish` and `--enable-secret-rotation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RotationFigure {
    /// The node's `--rotation-poll-interval`, seconds.
    pub poll_interval_secs: u64,
    /// Volumes republished.
    pub volumes: usize,
    /// Distinct identities among them (1: all share one).
    pub identities: usize,
    /// Objects per volume (the same objects for every volume).
    pub objects: usize,
    /// Latency the dev vault added per request during the round, ms.
    pub added_latency_ms: u64,
    /// Republishes in flight.
    pub concurrency: usize,
    /// Republishes that failed.
    pub failed: usize,
    /// Requests the round sent.
    pub requests: RequestCounts,
    /// Time of the whole round, ms.
    pub wall_ms: f64,
    /// Time of each successful republish, ms.
    pub republish_ms: Option<Summary>,
    /// The node's resident set after the round; `hwm_kib` is its peak (see `peak_of_round`).
    pub node_resident: Option<Resident>,
    /// The peak was reset just before the round (`/proc/<pid>/clear_refs`), so `hwm_kib` is the
    /// round's own peak; otherwise it is the peak since the node started.
    pub peak_of_round: bool,
}

impl Report {
    /// The latency figure for a path, object count, added latency and cache state.
    pub fn find(
        figures: &[LatencyFigure],
        objects: usize,
        added_latency_ms: u64,
        cache: Cache,
    ) -> Option<&LatencyFigure> {
        figures.iter().find(|f| {
            f.objects == objects && f.added_latency_ms == added_latency_ms && f.cache == cache
        })
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! A small report for rendering tests.

    use super::*;

    /// Values are multiples of 1/8, so they survive a JSON round trip exactly.
    fn summary(p50: f64) -> Summary {
        Summary {
            n: 10,
            min: p50 - 0.5,
            mean: p50 + 0.25,
            p50,
            p95: p50 + 1.5,
            p99: p50 + 2.25,
            max: p50 + 4.0,
        }
    }

    fn figure(objects: usize, added: u64, cache: Cache) -> LatencyFigure {
        let cold = cache == Cache::Cold;
        let base = 2.0 + objects as f64 * 0.125 + added as f64 * (1.0 + objects as f64 / 8.0);
        LatencyFigure {
            objects,
            added_latency_ms: added,
            cache,
            latency_ms: summary(if cold {
                base + 2.0 * added as f64 + 5.0
            } else {
                base
            }),
            requests: RequestsPerMount {
                vault: objects as f64 + if cold { 1.0 } else { 0.0 },
                challenges: if cold { 1.0 } else { 0.0 },
                identity: if cold { 1.0 } else { 0.0 },
                failed: 0.0,
                min_total: objects as u64,
                max_total: objects as u64 + 2,
            },
        }
    }

    /// A report with every section filled.
    pub(crate) fn report() -> Report {
        let mut latency = Vec::new();
        for added in [0, 20] {
            for objects in [1, 10, 50] {
                for cache in [Cache::Cold, Cache::Warm] {
                    latency.push(figure(objects, added, cache));
                }
            }
        }
        let resident = Resident {
            rss_kib: 20 * 1024,
            hwm_kib: 24 * 1024,
        };
        Report {
            schema: REPORT_SCHEMA,
            keyvol_version: "0.1.0".into(),
            build_profile: "release".into(),
            command: "keyvol-dev bench".into(),
            started: "2025-01-01T00:00:00Z".into(),
            duration_secs: 180.0,
            smoke: false,
            machine: Machine {
                cpu_model: "Test CPU <fast> & cheap".into(),
                cpus: 2,
                memory_kib: 24 * 1024 * 1024,
                kernel: "6.1.0".into(),
                os: "Test OS".into(),
                root: true,
                load_before: [0.5, 0.4, 0.3],
                load_after: [1.5, 1.0, 0.6],
                other_cpu_percent: Some(2.5),
            },
            settings: Settings {
                samples: 10,
                added_latency_ms: vec![0, 20],
                object_counts: vec![1, 10, 50],
                burst_volumes: vec![200, 1000],
                burst_objects: 10,
                memory_volumes: 1000,
                memory_objects: 10,
                memory_concurrency: 16,
                burst_runs: 3,
                churn_identities: 1000,
                rotation_interval_secs: 10,
            },
            node_latency: latency.clone(),
            provider_latency: latency,
            bursts: vec![BurstFigure {
                identities: Identities::Distinct,
                volumes: 200,
                objects: 10,
                added_latency_ms: 20,
                wall_ms: 1234.5,
                wall_ms_runs: vec![1500.0, 1234.5, 1000.0],
                succeeded: 199,
                failed: 1,
                first_error: Some("Unavailable: boom".into()),
                refused_connects: 72,
                requests: RequestCounts {
                    vault: 2200,
                    challenges: 200,
                    identity: 200,
                    tokens: 200,
                    failed: 0,
                },
                publish_ms: Some(summary(600.0)),
                node_resident: Some(resident),
            }],
            memory: MemoryFigures {
                node_idle: Some(resident),
                node_mounted: Some(MountedFootprint {
                    volumes: 1000,
                    identities: 1,
                    objects: 10,
                    publish_wall_ms: 9000.0,
                    requests: RequestCounts::default(),
                    resident,
                    publish_ms_while_mounted: Some(summary(12.0)),
                }),
                node_mounted_distinct: Some(MountedFootprint {
                    volumes: 1000,
                    identities: 1000,
                    objects: 10,
                    publish_wall_ms: 12000.0,
                    requests: RequestCounts::default(),
                    resident: Resident {
                        rss_kib: 32 * 1024,
                        hwm_kib: 36 * 1024,
                    },
                    publish_ms_while_mounted: None,
                }),
                node_after_identities: Some(IdentityChurn {
                    identities: 1000,
                    objects: 10,
                    concurrency: 16,
                    wall_ms: 8000.0,
                    failed: 0,
                    requests: RequestCounts {
                        vault: 10_000,
                        challenges: 0,
                        identity: 1000,
                        tokens: 1000,
                        failed: 0,
                    },
                    before: Resident {
                        rss_kib: 14 * 1024,
                        hwm_kib: 14 * 1024,
                    },
                    after: resident,
                    identity_idle_secs: 5,
                    evicted: Some(Resident {
                        rss_kib: 17 * 1024,
                        hwm_kib: 30 * 1024,
                    }),
                }),
                provider_idle: Some(resident),
                provider_after: None,
            },
            rotation: vec![
                RotationFigure {
                    poll_interval_secs: 10,
                    volumes: 1000,
                    identities: 1,
                    objects: 10,
                    added_latency_ms: 20,
                    concurrency: 16,
                    failed: 0,
                    requests: RequestCounts {
                        vault: 10,
                        ..RequestCounts::default()
                    },
                    wall_ms: 5000.0,
                    republish_ms: Some(summary(40.0)),
                    node_resident: Some(resident),
                    peak_of_round: true,
                },
                RotationFigure {
                    poll_interval_secs: 10,
                    volumes: 1000,
                    identities: 1000,
                    objects: 10,
                    added_latency_ms: 20,
                    concurrency: 16,
                    failed: 0,
                    requests: RequestCounts {
                        vault: 10_000,
                        ..RequestCounts::default()
                    },
                    wall_ms: 6000.0,
                    republish_ms: None,
                    node_resident: None,
                    peak_of_round: false,
                },
            ],
            notes: vec!["a note".into()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip_through_json_with_camel_case_fields() {
        let r = fixtures::report();
        let text = serde_json::to_string_pretty(&r).expect("json");
        assert!(text.contains("\"nodeLatency\""));
        assert!(text.contains("\"addedLatencyMs\": 20"));
        assert!(text.contains("\"cache\": \"cold\""));
        assert!(text.contains("\"identities\": \"distinct\""));
        let back: Report = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, r);
    }

    #[test]
    fn figures_are_found_by_objects_latency_and_cache() {
        let r = fixtures::report();
        let f = Report::find(&r.node_latency, 10, 20, Cache::Warm).expect("figure");
        assert_eq!(
            (f.objects, f.added_latency_ms, f.cache),
            (10, 20, Cache::Warm)
        );
        assert!(Report::find(&r.node_latency, 7, 20, Cache::Warm).is_none());
    }
}
