//! One benchmark run from start to finish: the settings (full and smoke presets), the order of
//! the phases, the report, the smoke check and writing the three output files.
//!
//! Phases: (1) a fresh `keyvol node` — its idle memory, then (as root) its latency figures;
//! (2) a fresh `keyvol provider` — idle memory, latency figures, memory after; (3, root) one
//! burst per size, added latency and identity mode, each on a fresh node; (4, root) a fresh node
//! with many volumes of one identity mounted, and one rotation round; (5, root) a fresh node that
//! many identities come and go on; (6, root) rotation at scale: a fresh node with many volumes
//! of one identity each, and one rotation round. Everything runs in a [`Workspace`] that unmounts
//! whatever is left when the run ends, however it ends.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::burst::{self, Burst};
use crate::driver::Driver;
use crate::error::BenchError;
use crate::latency::{self, Plan, Via};
use crate::machine::{CpuSnapshot, Machine};
use crate::report::{
    Cache, Identities, LatencyFigure, MemoryFigures, REPORT_SCHEMA, Report, Settings,
};
use crate::rig::Rig;
use crate::workspace::Workspace;
use crate::{chart, markdown};
use crate::{churn, footprint};

/// How long a freshly started daemon is left alone before its idle memory is read.
const SETTLE: Duration = Duration::from_millis(500);

/// The node's `--azure-identity-idle` in the identity churn: short, so the run can read the
/// node's memory after its eviction too.
const CHURN_IDENTITY_IDLE: Duration = Duration::from_secs(5);
/// The same for the smoke run.
const CHURN_IDENTITY_IDLE_SMOKE: Duration = Duration::from_secs(1);

/// Samples of the publish-while-mounted figure (at most).
const LOADED_SAMPLES: usize = 30;

/// The most volumes in a burst or on one node, and identities in the churn: kubelet's own
/// limit of pods per node is far below it.
pub const MAX_VOLUMES: usize = 5000;

/// File names of the outputs.
pub const JSON_FILE: &str = "benchmarks.json";
/// The document.
pub const MARKDOWN_FILE: &str = "benchmarks.md";

/// What a run does.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The `keyvol` binary whose `node` and `provider` subcommands are measured.
    pub keyvol: PathBuf,
    /// The command line, recorded in the report.
    pub command: String,
    /// Sizes and counts.
    pub settings: Settings,
    /// A smoke run: any failure fails the run.
    pub smoke: bool,
    /// Measure the rotation rounds: after the memory figure (one identity), and over volumes of
    /// one identity each.
    pub rotation: bool,
}

impl BenchConfig {
    /// The published benchmark: 100 samples per figure, 0 and 20 ms, 1/10/50 objects, bursts of
    /// 200 and 1,000, 1,000 mounted volumes, 1,000 identities coming and going, rotation rounds
    /// over 1,000 volumes. About ten minutes on two cores.
    pub fn full(keyvol: PathBuf, command: String) -> Self {
        Self {
            keyvol,
            command,
            settings: Settings {
                samples: 100,
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
            smoke: false,
            rotation: true,
        }
    }

    /// The CI check: every phase with tiny counts, seconds in all.
    pub fn smoke(keyvol: PathBuf, command: String) -> Self {
        Self {
            keyvol,
            command,
            settings: Settings {
                samples: 3,
                added_latency_ms: vec![0, 20],
                object_counts: vec![1, 10],
                burst_volumes: vec![20],
                burst_objects: 10,
                memory_volumes: 20,
                memory_objects: 10,
                memory_concurrency: 4,
                burst_runs: 1,
                churn_identities: 20,
                rotation_interval_secs: 2,
            },
            smoke: true,
            rotation: true,
        }
    }

    /// Rejects settings that cannot produce a report.
    pub fn check(&self) -> Result<(), BenchError> {
        let s = &self.settings;
        let bad = |m: &str| Err(BenchError::Settings(m.to_owned()));
        if s.samples == 0 {
            return bad("--samples must be at least 1");
        }
        if s.added_latency_ms.is_empty() || s.object_counts.is_empty() {
            return bad("at least one added latency and one object count are needed");
        }
        if s.object_counts.contains(&0) || s.burst_objects == 0 || s.memory_objects == 0 {
            return bad("object counts must be at least 1");
        }
        if s.object_counts.iter().any(|&n| n > 999) {
            return bad("object counts must be at most 999");
        }
        if let Some(&ms) = s
            .added_latency_ms
            .iter()
            .find(|&&ms| ms > keyvol_devvault::faults::MAX_LATENCY_MS)
        {
            return Err(BenchError::Settings(format!(
                "added latency {ms} ms is above the dev vault's cap of {} ms",
                keyvol_devvault::faults::MAX_LATENCY_MS
            )));
        }
        if s.memory_concurrency == 0 || s.burst_runs == 0 {
            return bad("concurrency and burst runs must be at least 1");
        }
        if s.rotation_interval_secs == 0 {
            return bad("the rotation poll interval must be at least 1 s");
        }
        if s.burst_volumes.contains(&0) {
            return bad("burst sizes must be at least 1");
        }
        if s.burst_volumes.iter().any(|&n| n > MAX_VOLUMES)
            || s.memory_volumes > MAX_VOLUMES
            || s.churn_identities > MAX_VOLUMES
        {
            return Err(BenchError::Settings(format!(
                "bursts, mounted volumes and identities are at most {MAX_VOLUMES}"
            )));
        }
        Ok(())
    }

    /// Every object count a class is needed for.
    fn class_sizes(&self) -> Vec<usize> {
        let s = &self.settings;
        let mut v = s.object_counts.clone();
        v.extend([s.burst_objects, s.memory_objects]);
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The added latency of the rotation rounds: the largest the run measures.
    pub fn rotation_latency_ms(&self) -> u64 {
        self.settings
            .added_latency_ms
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
    }

    /// Service principals the run hands out: one per cold sample on each path; per burst a
    /// warm-up and a shared one, and one per volume of a distinct-identity burst; one per volume
    /// of the distinct-identity rotation round and per churned identity (and its warm-up); and a
    /// few warm ones.
    pub fn identities_needed(&self) -> usize {
        let s = &self.settings;
        let latencies = s.added_latency_ms.len();
        let cold_per_path = latencies * s.object_counts.len() * s.samples;
        let bursts: usize =
            s.burst_volumes.iter().map(|n| n + 4).sum::<usize>() * latencies * s.burst_runs;
        2 * cold_per_path + bursts + s.memory_volumes + s.churn_identities + 17
    }
}

/// Raises this process's soft limit on open files to its hard limit, as container runtimes
/// set it for kubelet and the node plugin: a burst of 1,000 publishes holds a connection per
/// volume in the harness (and the dev vault in it), and the daemons inherit the limit.
fn raise_open_files_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

/// The keyvol version and build profile of this harness (the same as the binary's, which is
/// built with it).
fn build_profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

/// Runs the benchmark; `progress` hears what is going on, a line at a time.
pub async fn run(
    config: &BenchConfig,
    progress: &(dyn Fn(String) + Sync),
) -> Result<Report, BenchError> {
    config.check()?;
    raise_open_files_limit();
    let started_at = SystemTime::now();
    let started = Instant::now();
    let mut machine = Machine::probe();
    let cpu_before = CpuSnapshot::take();
    let workspace = Workspace::create()?;
    let pods_on_tmpfs = workspace.scratch(crate::rig::PODS_DIR)?;
    let rig = Rig::start(
        &config.keyvol,
        workspace.path(),
        &config.class_sizes(),
        config.identities_needed(),
    )
    .await?;
    let mut report = Report {
        schema: REPORT_SCHEMA,
        keyvol_version: env!("CARGO_PKG_VERSION").to_owned(),
        build_profile: build_profile().to_owned(),
        command: config.command.clone(),
        started: humantime::format_rfc3339_seconds(started_at).to_string(),
        duration_secs: 0.0,
        smoke: config.smoke,
        machine: machine.clone(),
        settings: config.settings.clone(),
        node_latency: Vec::new(),
        provider_latency: Vec::new(),
        bursts: Vec::new(),
        memory: MemoryFigures::default(),
        rotation: Vec::new(),
        notes: Vec::new(),
    };
    if machine.root && !pods_on_tmpfs {
        report.notes.push(
            "The pod directories could not be put on a tmpfs, so removing them at the end of \
the run may take minutes on a disk mounted with `discard`."
                .into(),
        );
    }
    let result = phases(config, &rig, machine.root, &mut report, progress).await;
    progress("stopping the dev vault".into());
    rig.shutdown().await;
    progress("unmounting and removing the working directory".into());
    let stuck = workspace.sweep();
    drop(workspace);
    progress("done".into());
    result?;
    if !stuck.is_empty() {
        report.notes.push(format!(
            "{} mount(s) were still present after the run and had to be swept up",
            stuck.len()
        ));
    }
    machine.finish(cpu_before);
    report.machine = machine;
    report.duration_secs = started.elapsed().as_secs_f64();
    Ok(report)
}

async fn phases(
    config: &BenchConfig,
    rig: &Rig,
    root: bool,
    report: &mut Report,
    progress: &(dyn Fn(String) + Sync),
) -> Result<(), BenchError> {
    let s = &config.settings;
    let plan = Plan {
        samples: s.samples,
        added_latency_ms: &s.added_latency_ms,
        object_counts: &s.object_counts,
    };
    if build_profile() == "debug" {
        report.notes.push(
            "Debug build: figures are several times slower than a release build's and only check \
             that the harness works."
                .into(),
        );
    }

    progress("keyvol node: idle memory".into());
    let mut node = rig.start_node(&[]).await?;
    tokio::time::sleep(SETTLE).await;
    report.memory.node_idle = Some(node.resident()?);
    if root {
        progress(format!(
            "keyvol node: mount latency, {} samples per figure",
            s.samples
        ));
        let mut via = Via::Node {
            socket: node.socket().to_path_buf(),
        };
        report.node_latency = latency::measure(rig, &mut via, &plan, progress).await?;
        node.check_running()?;
    } else {
        report.notes.push(
            "Not run as root: mounting tmpfs needs root, so the keyvol node figures (mount \
             latency, bursts, memory with mounted volumes, rotation) were skipped — not \
             simulated. The provider figures and the node's idle memory were measured."
                .into(),
        );
    }
    node.stop().await;

    challenge_note(&report.node_latency, "keyvol node", &mut report.notes);

    progress(format!(
        "keyvol provider: mount latency, {} samples per figure",
        s.samples
    ));
    let mut provider = rig.start_provider().await?;
    tokio::time::sleep(SETTLE).await;
    report.memory.provider_idle = Some(provider.resident()?);
    let mut via = Via::Provider(Driver::connect(provider.socket()).await?);
    report.provider_latency = latency::measure(rig, &mut via, &plan, progress).await?;
    report.memory.provider_after = Some(provider.resident()?);
    if report.node_latency.is_empty() {
        challenge_note(
            &report.provider_latency,
            "keyvol provider",
            &mut report.notes,
        );
    }
    provider.stop().await;

    if !root {
        return Ok(());
    }
    let warm_up_objects = s
        .object_counts
        .iter()
        .copied()
        .find(|&n| n != s.burst_objects)
        .unwrap_or(s.memory_objects);
    for &volumes in &s.burst_volumes {
        for &added in &s.added_latency_ms {
            for identities in [Identities::Shared, Identities::Distinct] {
                progress(format!(
                    "burst: {volumes} volumes, {}, +{added} ms",
                    identities.label()
                ));
                let figure = burst::run_median(
                    rig,
                    &Burst {
                        identities,
                        volumes,
                        objects: s.burst_objects,
                        warm_up_objects,
                        added_latency_ms: added,
                    },
                    s.burst_runs,
                )
                .await?;
                progress(format!(
                    "  {:.0} ms, {} ok, {} errors, {} refused connects, {} requests",
                    figure.wall_ms,
                    figure.succeeded,
                    figure.failed,
                    figure.refused_connects,
                    figure.requests.total()
                ));
                report.bursts.push(figure);
            }
        }
    }

    let rotation_latency_ms = config.rotation.then(|| config.rotation_latency_ms());
    for identities in [Identities::Shared, Identities::Distinct] {
        // The distinct-identity node is there for its rotation round.
        if identities == Identities::Distinct && rotation_latency_ms.is_none() {
            continue;
        }
        progress(format!(
            "keyvol node: {} volumes mounted, {}{}",
            s.memory_volumes,
            identities.label(),
            match rotation_latency_ms {
                Some(ms) => format!(", then one rotation round at +{ms} ms"),
                None => String::new(),
            }
        ));
        let (mounted, rotation) = footprint::run(
            rig,
            &footprint::Plan {
                volumes: s.memory_volumes,
                identities,
                objects: s.memory_objects,
                concurrency: s.memory_concurrency,
                rotation_latency_ms,
                poll_interval: Duration::from_secs(s.rotation_interval_secs),
                loaded_samples: match identities {
                    Identities::Shared => s.samples.min(LOADED_SAMPLES),
                    Identities::Distinct => 0,
                },
            },
        )
        .await?;
        progress(format!(
            "  VmRSS {:.1} MiB mounted{}",
            crate::resident::mib(mounted.resident.rss_kib),
            rotation
                .as_ref()
                .map(|r| format!(
                    "; round {:.0} ms, {} vault and {} token requests, {} errors",
                    r.wall_ms, r.requests.vault, r.requests.tokens, r.failed
                ))
                .unwrap_or_default()
        ));
        match identities {
            Identities::Shared => report.memory.node_mounted = Some(mounted),
            Identities::Distinct => report.memory.node_mounted_distinct = Some(mounted),
        }
        report.rotation.extend(rotation);
        if identities == Identities::Shared {
            progress(format!(
                "keyvol node: {} distinct identities come and go, {} at a time",
                s.churn_identities, s.memory_concurrency
            ));
            let churn = churn::run(
                rig,
                &churn::Plan {
                    identities: s.churn_identities,
                    objects: s.memory_objects,
                    concurrency: s.memory_concurrency,
                    identity_idle: if config.smoke {
                        CHURN_IDENTITY_IDLE_SMOKE
                    } else {
                        CHURN_IDENTITY_IDLE
                    },
                },
            )
            .await?;
            progress(format!(
                "  VmRSS {:.1} MiB before, {:.1} MiB after (peak {:.1} MiB), {:.1} MiB once idle, {} errors",
                crate::resident::mib(churn.before.rss_kib),
                crate::resident::mib(churn.after.rss_kib),
                crate::resident::mib(churn.after.hwm_kib),
                churn
                    .evicted
                    .map_or(0.0, |r| crate::resident::mib(r.rss_kib)),
                churn.failed
            ));
            report.memory.node_after_identities = Some(churn);
        }
    }
    Ok(())
}

/// Notes what the figures show about 401 challenges on cold mounts, if more than one is sent.
fn challenge_note(figures: &[LatencyFigure], daemon: &str, notes: &mut Vec<String>) {
    let most = figures
        .iter()
        .filter(|f| f.cache == Cache::Cold)
        .max_by(|a, b| a.requests.challenges.total_cmp(&b.requests.challenges));
    if let Some(f) = most
        && f.requests.challenges > 1.0
    {
        notes.push(format!(
            "Through {daemon}, a cold {}-object mount received {} 401 challenges on average: its \
             first concurrent requests all leave before the new vault client has learned the \
             challenge (at most the fetch concurrency of them). Warm mounts receive none.",
            f.objects,
            crate::table::per_mount(f.requests.challenges)
        ));
    }
}

/// Fails a smoke run that saw any failure: burst or rotation errors, or failed requests.
pub fn smoke_check(report: &Report) -> Result<(), BenchError> {
    let mut problems = Vec::new();
    if report.provider_latency.is_empty() {
        problems.push("no provider latency figures".to_owned());
    }
    if report.machine.root && report.node_latency.is_empty() {
        problems.push("no node latency figures although running as root".to_owned());
    }
    for f in report.node_latency.iter().chain(&report.provider_latency) {
        if f.requests.failed > 0.0 {
            problems.push(format!(
                "failed requests in the {}-object {} figure",
                f.objects,
                f.cache.label()
            ));
        }
    }
    for b in &report.bursts {
        if b.failed > 0 {
            problems.push(format!(
                "{} of {} burst publishes failed ({}): {}",
                b.failed,
                b.volumes,
                b.identities.label(),
                b.first_error.as_deref().unwrap_or("")
            ));
        }
    }
    for b in &report.bursts {
        if b.refused_connects > 0 {
            problems.push(format!(
                "{} refused connects in a burst of {} ({}), with a listen backlog of {}",
                b.refused_connects,
                b.volumes,
                b.identities.label(),
                keyvol_proto::uds::LISTEN_BACKLOG
            ));
        }
    }
    for r in &report.rotation {
        if r.failed > 0 {
            problems.push(format!(
                "{} of {} republishes failed (rotation round, {} identities)",
                r.failed, r.volumes, r.identities
            ));
        }
    }
    if report.machine.root {
        let m = &report.memory;
        if m.node_mounted.is_none() {
            problems.push("no mounted-memory figure although running as root".to_owned());
        }
        match &m.node_after_identities {
            None => problems.push("no after-identities memory figure".to_owned()),
            Some(c) if c.failed > 0 => problems.push(format!(
                "{} of {} identity churn publishes failed",
                c.failed, c.identities
            )),
            Some(_) => {}
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(BenchError::SmokeFailures(problems.join("; ")))
    }
}

fn write(path: PathBuf, text: &str) -> Result<PathBuf, BenchError> {
    std::fs::write(&path, text).map_err(|source| BenchError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// The three outputs as `(file name, contents)`: `benchmarks.json`, `benchmarks-latency.svg`
/// and `benchmarks.md`.
pub fn render_outputs(report: &Report) -> Result<Vec<(&'static str, String)>, BenchError> {
    let mut json = serde_json::to_string_pretty(report)?;
    json.push('\n');
    Ok(vec![
        (JSON_FILE, json),
        (markdown::CHART_FILE, chart::latency_chart(report)),
        (MARKDOWN_FILE, markdown::render(report)),
    ])
}

/// The most of an earlier `benchmarks.md` read to carry its hand-written sections over.
const OLD_MARKDOWN_CAP: u64 = 1024 * 1024;

/// The text of `path` up to [`OLD_MARKDOWN_CAP`]; empty when missing or unreadable.
fn read_capped(path: &Path) -> String {
    use std::io::Read as _;
    let mut text = String::new();
    if let Ok(file) = std::fs::File::open(path) {
        let _ = file.take(OLD_MARKDOWN_CAP).read_to_string(&mut text);
    }
    text
}

/// Writes the outputs into `dir` (created if needed), keeping the hand-written sections of an
/// earlier `benchmarks.md` there; returns their paths.
pub fn write_outputs(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, BenchError> {
    std::fs::create_dir_all(dir).map_err(|source| BenchError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    render_outputs(report)?
        .into_iter()
        .map(|(name, text)| {
            let path = dir.join(name);
            let text = if name == MARKDOWN_FILE {
                markdown::carry_hand_written(&read_capped(&path), &text)
            } else {
                text
            };
            write(path, &text)
        })
        .collect()
}

/// The report's tables as text, for the terminal.
pub fn render_text(report: &Report) -> String {
    crate::table::report_tables(report)
        .iter()
        .map(|t| t.to_text())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    #[test]
    fn presets_pass_their_own_checks_and_bad_settings_are_named() {
        let full = BenchConfig::full("keyvol".into(), "keyvol-dev bench".into());
        full.check().expect("full");
        BenchConfig::smoke("keyvol".into(), "keyvol-dev bench --smoke".into())
            .check()
            .expect("smoke");
        let mut bad = full.clone();
        bad.settings.samples = 0;
        assert!(
            bad.check()
                .expect_err("refused")
                .to_string()
                .contains("--samples")
        );
        let mut bad = full.clone();
        bad.settings.added_latency_ms = vec![60_001];
        assert!(
            bad.check()
                .expect_err("refused")
                .to_string()
                .contains("60001 ms")
        );
        let mut bad = full.clone();
        bad.settings.object_counts = vec![0];
        assert!(bad.check().is_err());
        let mut bad = full.clone();
        bad.settings.burst_volumes = vec![200, 0];
        assert!(bad.check().is_err());
        let mut bad = full;
        bad.settings.churn_identities = MAX_VOLUMES + 1;
        assert!(bad.check().is_err());
    }

    #[test]
    fn the_full_run_seeds_enough_identities_for_every_cold_sample() {
        let full = BenchConfig::full("keyvol".into(), String::new());
        // 2 paths × 2 latencies × 3 counts × 100 samples; bursts of 200 and 1,000 at 2
        // latencies, 3 runs each, 4 more per size (warm-up and shared identities of both
        // modes); 1,000 volumes of one identity each; 1,000 churned identities.
        assert_eq!(
            full.identities_needed(),
            1200 + (204 + 1004) * 2 * 3 + 1000 + 1000 + 17
        );
        assert_eq!(full.class_sizes(), vec![1, 10, 50]);
        assert_eq!(full.rotation_latency_ms(), 20);
        let smoke = BenchConfig::smoke("keyvol".into(), String::new());
        assert_eq!(smoke.class_sizes(), vec![1, 10], "smoke classes stay few");
    }

    #[test]
    fn the_smoke_check_fails_on_burst_errors_and_refused_connects_only_when_there_are_some() {
        let mut r = fixtures::report();
        let err = smoke_check(&r).expect_err("refused").to_string();
        assert!(err.contains("1 of 200 burst publishes failed"), "{err}");
        assert!(
            err.contains("72 refused connects in a burst of 200 (distinct identities)"),
            "{err}"
        );
        r.bursts[0].failed = 0;
        r.bursts[0].refused_connects = 0;
        smoke_check(&r).expect("clean");
        r.rotation[1].failed = 3;
        let err = smoke_check(&r).expect_err("refused").to_string();
        assert!(
            err.contains("3 of 1000 republishes failed (rotation round, 1000 identities)"),
            "{err}"
        );
        r.rotation[1].failed = 0;
        if let Some(c) = r.memory.node_after_identities.as_mut() {
            c.failed = 2;
        }
        let err = smoke_check(&r).expect_err("refused").to_string();
        assert!(
            err.contains("2 of 1000 identity churn publishes failed"),
            "{err}"
        );
        r.memory.node_after_identities = None;
        let err = smoke_check(&r).expect_err("refused").to_string();
        assert!(err.contains("no after-identities memory figure"), "{err}");
        let mut r = fixtures::report();
        r.bursts[0].failed = 0;
        r.bursts[0].refused_connects = 0;
        r.provider_latency.clear();
        assert!(smoke_check(&r).is_err());
    }

    #[test]
    fn several_challenges_on_cold_mounts_are_noted() {
        let mut r = fixtures::report();
        let mut notes = Vec::new();
        challenge_note(&r.node_latency, "keyvol node", &mut notes);
        assert!(notes.is_empty(), "one challenge per cold mount is expected");
        let f = r
            .node_latency
            .iter_mut()
            .find(|f| f.objects == 50 && f.cache == Cache::Cold)
            .expect("figure");
        f.requests.challenges = 8.0;
        challenge_note(&r.node_latency, "keyvol node", &mut notes);
        assert!(
            notes[0].contains("a cold 50-object mount received 8 401 challenges"),
            "{notes:?}"
        );
    }

    #[test]
    fn outputs_are_written_and_the_json_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("docs");
        let r = fixtures::report();
        std::fs::create_dir_all(&out).expect("dir");
        std::fs::write(
            out.join(MARKDOWN_FILE),
            "# old\n\n## Image\n\n<!-- Written by hand -->\n\nsizes\n\n## Reproduce\n",
        )
        .expect("old markdown");
        let paths = write_outputs(&r, &out).expect("write");
        assert_eq!(paths.len(), 3);
        let md = std::fs::read_to_string(out.join(MARKDOWN_FILE)).expect("md");
        assert!(md.contains("## Image\n\n<!-- Written by hand -->\n\nsizes\n\n## Reproduce"));
        assert!(!md.contains("# old"));
        let back: Report =
            serde_json::from_str(&std::fs::read_to_string(out.join(JSON_FILE)).expect("json"))
                .expect("parse");
        assert_eq!(back, r);
        assert!(
            std::fs::read_to_string(out.join(markdown::CHART_FILE))
                .expect("svg")
                .starts_with("<svg")
        );
        assert!(render_text(&r).contains("p50 ms"));
    }
}
