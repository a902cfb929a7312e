//! The performance targets the figures are held to, and whether a report meets each — computed
//! from the report's figures, never written by hand. A target the run did not measure (a size
//! or latency it was not asked for, or a phase it skipped) is "not measured", never met.

use crate::report::{Cache, LatencyFigure, Report};
use crate::resident::mib;
use crate::table::{ms, per_mount};

/// The object count of the latency targets.
pub const LATENCY_OBJECTS: usize = 10;
/// The added latency of the round-trip targets, ms.
pub const ROUND_TRIP_LATENCY_MS: u64 = 20;
/// Warm 10-object mount at 20 ms, p50, ms: one round trip plus local work.
pub const WARM_PROVIDER_MS: f64 = 25.0;
/// The same through the node (tmpfs, atomic write and status write on top).
pub const WARM_NODE_MS: f64 = 30.0;
/// Cold 10-object mount at 20 ms, p50, ms: two round trips (token, then the reads).
pub const COLD_MS: f64 = 50.0;
/// Warm 10-object mount with no added latency, p50, ms: the local cost.
pub const LOCAL_PROVIDER_MS: f64 = 2.0;
/// The same through the node.
pub const LOCAL_NODE_MS: f64 = 3.0;
/// Node idle, VmRSS MiB.
pub const IDLE_MIB: f64 = 15.0;
/// Volumes of the mounted-memory target.
pub const MOUNTED_VOLUMES: usize = 1000;
/// Node with that many volumes mounted, VmRSS MiB.
pub const MOUNTED_MIB: f64 = 30.0;
/// Identities of the after-identities target.
pub const CHURN_IDENTITIES: usize = 1000;
/// Node after that many identities came and went, VmRSS MiB.
pub const AFTER_IDENTITIES_MIB: f64 = 40.0;
/// Burst sizes that must see no refused connect.
pub const BURST_SIZES: [usize; 2] = [200, 1000];

/// Whether a target is met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The figure is within the limit.
    Met,
    /// The figure is past the limit.
    NotMet,
    /// The run has no such figure.
    NotMeasured,
}

impl Verdict {
    /// Words for tables.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::NotMet => "**not met**",
            Verdict::NotMeasured => "not measured",
        }
    }

    fn at_most(value: f64, limit: f64) -> Self {
        if value <= limit {
            Verdict::Met
        } else {
            Verdict::NotMet
        }
    }
}

/// One target and how the run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// What is measured.
    pub figure: String,
    /// The limit, in words (`≤ 25 ms p50`).
    pub limit: String,
    /// The figure the run measured, or why there is none.
    pub measured: String,
    /// Met, not met or not measured.
    pub verdict: Verdict,
}

fn not_measured(figure: String, limit: String, why: &str) -> Target {
    Target {
        figure,
        limit,
        measured: why.to_owned(),
        verdict: Verdict::NotMeasured,
    }
}

/// A p50 latency target for one path, cache state and added latency.
fn latency(
    figures: &[LatencyFigure],
    path: &str,
    cache: Cache,
    added_latency_ms: u64,
    limit_ms: f64,
) -> Target {
    let figure = if added_latency_ms == 0 {
        format!(
            "{path}: {} {LATENCY_OBJECTS}-object mount, no added latency (local cost)",
            cache.label()
        )
    } else {
        format!(
            "{path}: {} {LATENCY_OBJECTS}-object mount, +{added_latency_ms} ms per request",
            cache.label()
        )
    };
    let limit = format!("≤ {} ms p50", ms(limit_ms));
    match Report::find(figures, LATENCY_OBJECTS, added_latency_ms, cache) {
        Some(f) => Target {
            figure,
            limit,
            measured: format!("{} ms", ms(f.latency_ms.p50)),
            verdict: Verdict::at_most(f.latency_ms.p50, limit_ms),
        },
        None => not_measured(figure, limit, "no such figure in this run"),
    }
}

/// Cold mounts of a path: no 401 challenge once the vault's challenge is known (the harness's
/// warm-up mounts have met it before any cold sample).
fn cold_challenges(figures: &[LatencyFigure], path: &str) -> Target {
    let figure = format!("{path}: 401 challenges per cold mount (the vault already known)");
    let limit = "0".to_owned();
    let worst = figures
        .iter()
        .filter(|f| f.cache == Cache::Cold)
        .map(|f| f.requests.challenges)
        .max_by(f64::total_cmp);
    match worst {
        Some(c) => Target {
            figure,
            limit,
            measured: format!("{} (most of any cold figure)", per_mount(c)),
            verdict: Verdict::at_most(c, 0.0),
        },
        None => not_measured(figure, limit, "no cold figure in this run"),
    }
}

fn mib_target(figure: String, limit_mib: f64, rss_kib: Option<u64>, why: &str) -> Target {
    let limit = format!("≤ {limit_mib:.0} MiB VmRSS");
    match rss_kib {
        Some(kib) => Target {
            figure,
            limit,
            measured: format!("{:.1} MiB", mib(kib)),
            verdict: Verdict::at_most(mib(kib), limit_mib),
        },
        None => not_measured(figure, limit, why),
    }
}

/// Every target, in the order they are shown, with the report's verdict on each.
pub fn evaluate(report: &Report) -> Vec<Target> {
    let mut out = Vec::new();
    let paths = [
        (
            "keyvol provider",
            &report.provider_latency,
            WARM_PROVIDER_MS,
            LOCAL_PROVIDER_MS,
        ),
        (
            "keyvol node",
            &report.node_latency,
            WARM_NODE_MS,
            LOCAL_NODE_MS,
        ),
    ];
    for (path, figures, warm, _) in paths {
        out.push(latency(
            figures,
            path,
            Cache::Warm,
            ROUND_TRIP_LATENCY_MS,
            warm,
        ));
    }
    for (path, figures, _, _) in paths {
        out.push(latency(
            figures,
            path,
            Cache::Cold,
            ROUND_TRIP_LATENCY_MS,
            COLD_MS,
        ));
    }
    for (path, figures, _, _) in paths {
        out.push(cold_challenges(figures, path));
    }
    for (path, figures, _, local) in paths {
        out.push(latency(figures, path, Cache::Warm, 0, local));
    }
    for size in BURST_SIZES {
        let figure = format!(
            "keyvol node: burst of {} simultaneous publishes",
            crate::markdown::thousands(size as u64)
        );
        let limit = "0 refused connects, 0 errors".to_owned();
        let bursts: Vec<_> = report.bursts.iter().filter(|b| b.volumes == size).collect();
        if bursts.is_empty() {
            out.push(not_measured(
                figure,
                limit,
                "no burst of this size in this run",
            ));
            continue;
        }
        let refused: u64 = bursts.iter().map(|b| b.refused_connects).sum();
        let failed: usize = bursts.iter().map(|b| b.failed).sum();
        out.push(Target {
            figure,
            limit,
            measured: format!(
                "{refused} refused, {failed} errors over {} bursts",
                bursts.len()
            ),
            verdict: if refused == 0 && failed == 0 {
                Verdict::Met
            } else {
                Verdict::NotMet
            },
        });
    }
    let m = &report.memory;
    out.push(mib_target(
        "keyvol node: idle".into(),
        IDLE_MIB,
        m.node_idle.map(|r| r.rss_kib),
        "not measured in this run",
    ));
    let mounted = m
        .node_mounted
        .as_ref()
        .filter(|f| f.volumes >= MOUNTED_VOLUMES);
    out.push(mib_target(
        format!(
            "keyvol node: {} volumes mounted",
            crate::markdown::thousands(MOUNTED_VOLUMES as u64)
        ),
        MOUNTED_MIB,
        mounted.map(|f| f.resident.rss_kib),
        &match &m.node_mounted {
            Some(f) => format!("this run mounted {} volumes", f.volumes),
            None => "not measured in this run".to_owned(),
        },
    ));
    let churn = m
        .node_after_identities
        .as_ref()
        .filter(|c| c.identities >= CHURN_IDENTITIES);
    out.push(mib_target(
        format!(
            "keyvol node: after {} distinct identities came and went (idle eviction)",
            crate::markdown::thousands(CHURN_IDENTITIES as u64)
        ),
        AFTER_IDENTITIES_MIB,
        churn.and_then(|c| c.evicted.map(|r| r.rss_kib)),
        &match &m.node_after_identities {
            Some(c) if c.identities < CHURN_IDENTITIES => {
                format!("this run had {} identities", c.identities)
            }
            Some(_) => "no reading once the identities went idle".to_owned(),
            None => "not measured in this run".to_owned(),
        },
    ));
    out
}

/// Counts of met, not met and not measured targets.
pub fn tally(targets: &[Target]) -> (usize, usize, usize) {
    let count = |v: Verdict| targets.iter().filter(|t| t.verdict == v).count();
    (
        count(Verdict::Met),
        count(Verdict::NotMet),
        count(Verdict::NotMeasured),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    fn find<'a>(targets: &'a [Target], figure: &str) -> &'a Target {
        targets
            .iter()
            .find(|t| t.figure == figure)
            .unwrap_or_else(|| panic!("no target {figure:?} in {targets:#?}"))
    }

    fn set_p50(figures: &mut [LatencyFigure], objects: usize, added: u64, cache: Cache, p50: f64) {
        let f = figures
            .iter_mut()
            .find(|f| f.objects == objects && f.added_latency_ms == added && f.cache == cache)
            .expect("figure");
        f.latency_ms.p50 = p50;
    }

    #[test]
    fn latency_targets_compare_the_p50_with_the_limit_inclusively() {
        let mut r = fixtures::report();
        set_p50(&mut r.provider_latency, 10, 20, Cache::Warm, 25.0);
        set_p50(&mut r.node_latency, 10, 20, Cache::Warm, 30.1);
        set_p50(&mut r.provider_latency, 10, 20, Cache::Cold, 49.9);
        set_p50(&mut r.node_latency, 10, 20, Cache::Cold, 116.3);
        set_p50(&mut r.provider_latency, 10, 0, Cache::Warm, 2.0);
        set_p50(&mut r.node_latency, 10, 0, Cache::Warm, 5.8);
        let t = evaluate(&r);
        let warm_p = find(
            &t,
            "keyvol provider: warm 10-object mount, +20 ms per request",
        );
        assert_eq!(warm_p.verdict, Verdict::Met, "exactly at the limit is met");
        assert_eq!(warm_p.limit, "≤ 25.0 ms p50");
        assert_eq!(warm_p.measured, "25.0 ms");
        let warm_n = find(&t, "keyvol node: warm 10-object mount, +20 ms per request");
        assert_eq!(warm_n.verdict, Verdict::NotMet);
        assert_eq!(warm_n.limit, "≤ 30.0 ms p50");
        assert_eq!(
            find(
                &t,
                "keyvol provider: cold 10-object mount, +20 ms per request"
            )
            .verdict,
            Verdict::Met
        );
        let cold_n = find(&t, "keyvol node: cold 10-object mount, +20 ms per request");
        assert_eq!(
            (cold_n.verdict, cold_n.measured.as_str()),
            (Verdict::NotMet, "116.3 ms")
        );
        assert_eq!(
            find(
                &t,
                "keyvol provider: warm 10-object mount, no added latency (local cost)"
            )
            .verdict,
            Verdict::Met
        );
        let local_n = find(
            &t,
            "keyvol node: warm 10-object mount, no added latency (local cost)",
        );
        assert_eq!(
            (local_n.verdict, local_n.limit.as_str()),
            (Verdict::NotMet, "≤ 3.0 ms p50")
        );
    }

    #[test]
    fn a_figure_the_run_did_not_take_is_not_measured_rather_than_met() {
        let mut r = fixtures::report();
        r.node_latency.retain(|f| f.objects != 10);
        r.provider_latency.clear();
        r.bursts.clear();
        r.memory = Default::default();
        let t = evaluate(&r);
        let (met, not_met, not_measured) = tally(&t);
        assert_eq!(met + not_met + not_measured, t.len());
        for figure in [
            "keyvol node: warm 10-object mount, +20 ms per request",
            "keyvol provider: cold 10-object mount, +20 ms per request",
            "keyvol provider: 401 challenges per cold mount (the vault already known)",
            "keyvol node: burst of 1,000 simultaneous publishes",
            "keyvol node: idle",
            "keyvol node: 1,000 volumes mounted",
            "keyvol node: after 1,000 distinct identities came and went (idle eviction)",
        ] {
            assert_eq!(find(&t, figure).verdict, Verdict::NotMeasured, "{figure}");
        }
        // The node's cold 1- and 50-object figures still count for the challenge target.
        assert_ne!(
            find(
                &t,
                "keyvol node: 401 challenges per cold mount (the vault already known)"
            )
            .verdict,
            Verdict::NotMeasured
        );
    }

    #[test]
    fn challenges_on_cold_mounts_fail_their_target() {
        let mut r = fixtures::report();
        let figure = "keyvol node: 401 challenges per cold mount (the vault already known)";
        // The fixture's cold mounts each see one challenge.
        assert_eq!(find(&evaluate(&r), figure).verdict, Verdict::NotMet);
        for f in &mut r.node_latency {
            f.requests.challenges = 0.0;
        }
        let t = evaluate(&r);
        assert_eq!(find(&t, figure).verdict, Verdict::Met);
        assert_eq!(find(&t, figure).measured, "0 (most of any cold figure)");
    }

    #[test]
    fn bursts_meet_their_target_only_without_refused_connects_or_errors() {
        let mut r = fixtures::report();
        let figure = "keyvol node: burst of 200 simultaneous publishes";
        // The fixture's burst has 72 refused connects and one error.
        let t = evaluate(&r);
        assert_eq!(find(&t, figure).verdict, Verdict::NotMet);
        assert_eq!(
            find(&t, figure).measured,
            "72 refused, 1 errors over 1 bursts"
        );
        r.bursts[0].refused_connects = 0;
        assert_eq!(find(&evaluate(&r), figure).verdict, Verdict::NotMet);
        r.bursts[0].failed = 0;
        assert_eq!(find(&evaluate(&r), figure).verdict, Verdict::Met);
        assert_eq!(
            find(
                &evaluate(&r),
                "keyvol node: burst of 1,000 simultaneous publishes"
            )
            .verdict,
            Verdict::NotMeasured
        );
    }

    #[test]
    fn memory_targets_need_the_full_size_and_compare_vm_rss() {
        let mut r = fixtures::report();
        // Fixture: 20 MiB resident everywhere, 1,000 volumes and 1,000 identities.
        let t = evaluate(&r);
        assert_eq!(find(&t, "keyvol node: idle").verdict, Verdict::NotMet);
        assert_eq!(find(&t, "keyvol node: idle").measured, "20.0 MiB");
        assert_eq!(
            find(&t, "keyvol node: 1,000 volumes mounted").verdict,
            Verdict::Met
        );
        let churn = "keyvol node: after 1,000 distinct identities came and went (idle eviction)";
        assert_eq!(find(&t, churn).verdict, Verdict::Met);
        assert_eq!(
            find(&t, churn).measured,
            "17.0 MiB",
            "the reading once idle, not right after"
        );
        r.memory.node_idle = Some(crate::resident::Resident {
            rss_kib: 15 * 1024,
            hwm_kib: 99 * 1024,
        });
        if let Some(f) = r.memory.node_mounted.as_mut() {
            f.volumes = 10;
        }
        let t = evaluate(&r);
        assert_eq!(
            find(&t, "keyvol node: idle").verdict,
            Verdict::Met,
            "VmRSS, not the peak"
        );
        let mounted = find(&t, "keyvol node: 1,000 volumes mounted");
        assert_eq!(mounted.verdict, Verdict::NotMeasured);
        assert_eq!(mounted.measured, "this run mounted 10 volumes");
        if let Some(c) = r.memory.node_after_identities.as_mut() {
            c.evicted = None;
        }
        let t = evaluate(&r);
        assert_eq!(find(&t, churn).verdict, Verdict::NotMeasured);
        assert_eq!(
            find(&t, churn).measured,
            "no reading once the identities went idle"
        );
    }
}
