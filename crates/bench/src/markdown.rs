//! `benchmarks.md`: the report as a document — how to reproduce it, the machine, how each figure
//! is measured, the tables, the chart, and the comparison with upstream's documented design.
//! Generated in full from a [`Report`], so one command reproduces it.

use std::fmt::Write as _;

use crate::report::{Cache, Report};
use crate::resident::mib;
use crate::table::{Table, ms, per_mount, report_tables};
use crate::targets::{self, Verdict};
use crate::upstream::{UpstreamMount, UpstreamRound};

/// The command the documentation tells people to run.
pub const REPRODUCE: &str = "cargo run --release --bin keyvol-dev -- bench";

/// File name of the chart, linked from the document.
pub const CHART_FILE: &str = "benchmarks-latency.svg";

fn section(out: &mut String, title: &str, table: Option<&Table>, text: &str) {
    let _ = writeln!(out, "## {title}\n");
    if !text.is_empty() {
        let _ = writeln!(out, "{text}\n");
    }
    if let Some(t) = table {
        let _ = writeln!(out, "{}", t.to_markdown());
    }
}

fn load_words(report: &Report) -> String {
    let m = &report.machine;
    let [one, five, fifteen] = m.load_before;
    let busy = match m.other_cpu_percent {
        Some(p) => p > OTHER_WORK_PERCENT,
        None => m.cpus > 0 && one > 0.25 * m.cpus as f64,
    };
    let other = m
        .other_cpu_percent
        .map(|p| {
            format!("{p:.0} % of the machine's CPU time during the run went to other processes; ")
        })
        .unwrap_or_default();
    format!(
        "{other}load average {one:.2} / {five:.2} / {fifteen:.2} (1 / 5 / 15 min) before the run and \
{:.2} / {:.2} / {:.2} after it (the benchmark's own work included) — {}",
        m.load_after[0],
        m.load_after[1],
        m.load_after[2],
        if busy {
            "**the machine was shared with other work**, so tails (p95, p99) are noisier than on an idle machine"
        } else {
            "the machine was otherwise quiet"
        },
    )
}

/// Other work above this share of CPU time makes a run "shared".
const OTHER_WORK_PERCENT: f64 = 10.0;

/// `12345` as `12,345`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The comparison with upstream, with this run's figures where they exist.
fn upstream_comparison(report: &Report) -> String {
    let mut s = String::new();
    let upstream = UpstreamMount::of(10);
    let trips = upstream.round_trips();
    let _ = write!(
        s,
        "These are upstream's documented design facts, not measurements: upstream cannot run \
here. The upstream Azure provider fetches a volume's objects strictly one after another and \
builds a new credential and new Key Vault clients on every Mount, so neither its token cache nor \
the learned 401 challenge outlives one mount (rotation polls are ordinary Mounts and pay it all \
again): a 10-object volume costs ≈{trips} sequential round trips (the challenge, MSAL's instance \
and tenant discovery, the token, ten GETs), every time. At 20 ms per round trip that is at least \
{} ms of waiting per mount before any other work.",
        upstream.wait_ms(20)
    );
    let figures = if report.node_latency.is_empty() {
        (&report.provider_latency, "keyvol provider")
    } else {
        (&report.node_latency, "keyvol node")
    };
    let cold = Report::find(figures.0, 10, 20, Cache::Cold);
    let warm = Report::find(figures.0, 10, 20, Cache::Warm);
    if let (Some(c), Some(w)) = (cold, warm) {
        let _ = write!(
            s,
            " Measured here through {}, a 10-object mount with 20 ms added to every request took \
p50 {} ms cold ({} requests: {} to Key Vault including {} challenge, {} to the token endpoint) \
and p50 {} ms warm ({} requests), because keyvol fetches the objects concurrently and keeps \
credentials, tokens and learned challenges for the life of the process — where upstream's \
design waits at least {} ms and sends ≈{trips} requests on every mount, warm or not.",
            figures.1,
            ms(c.latency_ms.p50),
            per_mount(c.requests.total()),
            per_mount(c.requests.vault),
            per_mount(c.requests.challenges),
            per_mount(c.requests.identity),
            ms(w.latency_ms.p50),
            per_mount(w.requests.total()),
            upstream.wait_ms(20),
        );
    }
    let _ = write!(
        s,
        "\n\nUpstream's node footprint is three containers in the driver pod (secrets-store, \
node-driver-registrar, liveness-probe) plus the Azure provider pod, 50–100 MiB each: the \
driver's chart requests 100 MiB for secrets-store and 20 MiB for each sidecar (limits 200 / 100 \
/ 100 MiB), the provider requests 100 MiB, and upstream's own load test saw 51–54 MiB for the \
secrets-store container alone."
    );
    let m = &report.memory;
    match (&m.node_idle, &m.node_mounted) {
        (Some(idle), Some(mounted)) => {
            let _ = write!(
                s,
                " keyvol node is one process with registration, health and the Azure provider \
built in: {:.1} MiB resident idle and {:.1} MiB with {} volumes mounted (peak {:.1} MiB).",
                mib(idle.rss_kib),
                mib(mounted.resident.rss_kib),
                thousands(mounted.volumes as u64),
                mib(mounted.resident.hwm_kib),
            );
        }
        (Some(idle), None) => {
            let _ = write!(
                s,
                " keyvol node is one process with registration, health and the Azure provider \
built in: {:.1} MiB resident idle.",
                mib(idle.rss_kib)
            );
        }
        _ => {}
    }
    s
}

/// Sizes as `200 and 1,000`.
fn sizes(list: &[usize]) -> String {
    let words: Vec<String> = list.iter().map(|&n| thousands(n as u64)).collect();
    sizes_of_words(&words)
}

/// Words as `a, b and c`.
fn sizes_of_words<S: AsRef<str>>(words: &[S]) -> String {
    match words.split_last() {
        None => String::new(),
        Some((last, [])) => last.as_ref().to_owned(),
        Some((last, rest)) => {
            let rest: Vec<&str> = rest.iter().map(AsRef::as_ref).collect();
            format!("{} and {}", rest.join(", "), last.as_ref())
        }
    }
}

/// The words above the targets table: the tally, and whether the run can be held to them.
fn targets_words(report: &Report) -> String {
    let all = targets::evaluate(report);
    let (met, not_met, not_measured) = targets::tally(&all);
    let mut s = format!(
        "The limits this run is held to, each checked by the harness against the figures below \
(never written by hand): **{met} of {} met**",
        all.len()
    );
    if not_met > 0 {
        let _ = write!(s, ", {not_met} not met");
    }
    if not_measured > 0 {
        let _ = write!(
            s,
            ", {not_measured} not measured (this run has no figure of that size, latency or phase)"
        );
    }
    s.push('.');
    let mut caveats = Vec::new();
    if report.smoke {
        caveats.push("a smoke run");
    }
    if report.build_profile != "release" {
        caveats.push("a debug build");
    }
    if load_words(report).contains("shared with other work") {
        caveats.push("a machine shared with other work");
    }
    if caveats.is_empty() {
        s.push_str(" The figures come from a release build on a quiet machine.");
    } else {
        let _ = write!(
            s,
            " These figures come from {}, so the verdicts only show that the checks work: the \
targets are for a release build on a quiet machine.",
            sizes_of_words(&caveats)
        );
    }
    if all.iter().any(|t| t.verdict == Verdict::NotMet) {
        s.push_str(" Targets not met are in bold.");
    }
    s
}

fn burst_words(report: &Report) -> String {
    let settings = &report.settings;
    let mut s = format!(
        "Bursts of {} volumes of the same {}-object class published at once (one connection \
each) to a `keyvol node` started for the burst, with one service principal for all of them or \
one each. Wall time runs from the first call to the last answer; each burst ran {} on a fresh \
node and the run with the median wall time is shown (requests, publish times and peak memory \
are that run's). Requests are everything the dev vault saw meanwhile. The node's class cache \
was warmed by one unrelated publish; the burst's identities were cold. Node peak is `VmHWM` \
after the burst. With no added latency a burst is bound by CPU — the dev vault and the API \
server run in the harness's process on the same cores as the node, and each volume is a tmpfs \
mount — so it need not finish sooner than with 20 ms per request. *Refused connects* are dials \
the kernel refused because the socket's listen backlog was full (the harness redials with a \
short backoff, as gRPC clients do, and counts them): the node's CSI socket listens with a \
backlog of {} (keyvol-proto's `uds`), so no burst up to that size should see one.",
        sizes(&settings.burst_volumes),
        settings.burst_objects,
        match settings.burst_runs {
            1 => "once".to_owned(),
            n => format!("{n} times"),
        },
        thousands(keyvol_proto::uds::LISTEN_BACKLOG.unsigned_abs().into()),
    );
    if report.bursts.iter().any(|b| b.refused_connects > 0) {
        s.push_str(
            " This run saw refused connects: the time of those publishes includes the redials.",
        );
    }
    s
}

fn memory_words(report: &Report) -> String {
    let settings = &report.settings;
    let m = &report.memory;
    let mut s = format!(
        "`keyvol node` idle is a freshly started node with no volume. The mounted figure is a \
fresh node (rotation enabled, so its fetch share window is the {} s poll interval) after {} \
publishes of the same {}-object class and identity, {} at a time",
        settings.rotation_interval_secs,
        thousands(settings.memory_volumes as u64),
        settings.memory_objects,
        settings.memory_concurrency,
    );
    if let Some(f) = &m.node_mounted {
        let _ = write!(
            s,
            " ({:.1} s, {} vault and {} identity requests in all)",
            f.publish_wall_ms / 1000.0,
            f.requests.vault,
            f.requests.identity
        );
        if let Some(l) = &f.publish_ms_while_mounted {
            let _ = write!(
                s,
                ". With them all mounted, one more warm publish at a time took p50 {} ms, p99 {} \
ms ({} samples, no added latency)",
                ms(l.p50),
                ms(l.p99),
                l.n
            );
        }
    }
    s.push('.');
    if let Some(f) = &m.node_mounted_distinct {
        let _ = write!(
            s,
            " The figure with one identity each is the rotation-at-scale node below, before its \
round: {} volumes of {} distinct service principals ({:.1} s to publish).",
            thousands(f.volumes as u64),
            thousands(f.identities as u64),
            f.publish_wall_ms / 1000.0
        );
    }
    if let Some(c) = &m.node_after_identities {
        let _ = write!(
            s,
            " *After identities came and went*: on a fresh node ({:.1} MiB before), each of {} \
service principals the node had never seen published one {}-object volume and unpublished it \
again, {} at a time ({:.1} s; {} token and {} Key Vault requests, {} errors); VmRSS is read \
right after the last unpublish and VmHWM is the peak during. The node keeps what it learned \
about an identity (credential, token, vault client) until the identity has gone unused for \
`--azure-identity-idle` (10 minutes by default; {} s on this node, so the run can wait for \
it): the figure right after is what those caches cost at their fullest, and the *evicted* \
figure is read once that idle time and the eviction task's next sweep have passed with nothing \
mounted — the target is held to it. VmRSS need not fall with eviction: what is freed stays \
with the process's allocator (glibc) for the next allocations rather than going back to the \
kernel, so eviction does not show as a drop here; it bounds what the node holds (its caches' \
tests count the entries).",
            mib(c.before.rss_kib),
            thousands(c.identities as u64),
            c.objects,
            c.concurrency,
            c.wall_ms / 1000.0,
            thousands(c.requests.tokens),
            thousands(c.requests.vault),
            c.failed,
            c.identity_idle_secs
        );
    }
    s
}

fn rotation_words(report: &Report) -> String {
    let Some(first) = report.rotation.first() else {
        return String::new();
    };
    let upstream = UpstreamRound::of(first.volumes, first.objects);
    let reset = report.rotation.iter().filter(|r| r.peak_of_round).count();
    let peak = if reset == report.rotation.len() {
        "the round's own (its `VmHWM` was reset just before the round)"
    } else if reset == 0 {
        "the node's since it started (its `VmHWM` could not be reset before the round)"
    } else {
        "the round's own where its `VmHWM` could be reset just before the round, else the node's \
since it started"
    };
    format!(
        "Rotation model (a), as upstream v1.6: kubelet republishes every volume \
(`requiresRepublish`), and with `--enable-secret-rotation` the node re-fetches each volume \
older than `--rotation-poll-interval` ({} s here). Each round republishes all {} mounted \
volumes once, {} at a time, after the interval has passed, with {} ms added to every request; \
the volumes share the same {} objects, and either one identity or one each (every identity's \
token still valid from its mount). `keyvol node` shares one fetch per object, version and \
identity for a window (`--azure-fetch-share-window`, by default the poll interval) and \
coalesces identical fetches in flight. Node peak is {peak}.\n\n\
*Upstream's design* is a model computed from upstream's documented behaviour, not a \
measurement: every republish is an ordinary Mount with a new credential and new clients, so \
per volume the 401 challenge, MSAL's instance and tenant discovery, a token request and one GET \
per object, one after another — whatever the identities, the round costs {} Key Vault requests \
({} of them challenges) and {} token requests, and each volume waits at least {} round trips \
({} ms at {} ms each). Its wall time depends on how kubelet spreads the republishes and is not \
modelled.",
        first.poll_interval_secs,
        thousands(first.volumes as u64),
        first.concurrency,
        first.added_latency_ms,
        first.objects,
        thousands(upstream.vault()),
        thousands(upstream.challenges()),
        thousands(upstream.tokens()),
        upstream.mount.round_trips(),
        upstream.mount.wait_ms(first.added_latency_ms),
        first.added_latency_ms,
    )
}

/// The marker that opens a section written by hand in `benchmarks.md` (the image size, which
/// the harness does not measure): such sections are carried over when the file is regenerated.
pub const HAND_WRITTEN: &str = "<!-- Written by hand";

/// `new` with every hand-written section of `old` (a `## ` heading whose text opens with
/// [`HAND_WRITTEN`]) put back before `## Reproduce`, unless `new` already has a section of that
/// heading.
pub fn carry_hand_written(old: &str, new: &str) -> String {
    let carried: Vec<&str> = old
        .split("\n## ")
        .skip(1)
        .filter(|chunk| {
            chunk
                .split_once('\n')
                .is_some_and(|(_, body)| body.trim_start().starts_with(HAND_WRITTEN))
        })
        .filter(|chunk| {
            let heading = chunk.lines().next().unwrap_or_default();
            !new.contains(&format!("\n## {heading}\n"))
        })
        .collect();
    if carried.is_empty() {
        return new.to_owned();
    }
    let block: String = carried
        .iter()
        .map(|c| format!("## {}\n\n", c.trim_end()))
        .collect();
    match new.find("\n## Reproduce\n") {
        Some(at) => format!("{}\n{block}{}", &new[..at], &new[at + 1..]),
        None => format!("{}\n{block}", new.trim_end()),
    }
}

/// Renders the whole document.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let settings = &report.settings;
    let _ = writeln!(
        out,
        "# keyvol-dev benchmarks\n\n<!-- Generated by `keyvol-dev bench` ({}); regenerate it rather than editing by hand. -->\n",
        report.command
    );
    if report.smoke {
        let _ = writeln!(
            out,
            "**Smoke run**: tiny counts that check the harness works; these figures mean nothing.\n"
        );
    }
    let _ = writeln!(
        out,
        "Mount latency, vault requests, bursts and memory of `keyvol node` and `keyvol provider` \
against the dev vault, from one run of `{}` started {} and lasting {:.0} s (keyvol {}, {} build). \
The JSON behind every figure is [benchmarks.json](benchmarks.json).\n",
        report.command,
        report.started,
        report.duration_secs,
        report.keyvol_version,
        report.build_profile
    );
    section(
        &mut out,
        "Reproduce",
        None,
        &format!(
            "```sh\n{REPRODUCE}\n```\n\nRun from the repository root, as root (the node \
figures mount tmpfs volumes; without root they are skipped, with a note). It writes \
`docs/benchmarks.md`, `docs/benchmarks.json` and `docs/{CHART_FILE}` (`--out DIR` elsewhere) and \
prints the tables; it takes about ten minutes on two cores. `keyvol-dev bench --smoke` is the \
seconds-long check CI runs; `keyvol-dev bench --help` lists the knobs (samples, added latencies, \
object counts, burst sizes, mounted volumes, churned identities)."
        ),
    );
    let m = &report.machine;
    section(
        &mut out,
        "Machine",
        None,
        &format!(
            "- CPU: {} × {}\n- Memory: {:.1} GiB\n- Kernel: Linux {}{}\n- Ran as root: {}\n- Other work: {}",
            m.cpus,
            if m.cpu_model.is_empty() {
                "unknown"
            } else {
                &m.cpu_model
            },
            m.memory_kib as f64 / (1024.0 * 1024.0),
            m.kernel,
            if m.os.is_empty() {
                String::new()
            } else {
                format!(" ({})", m.os)
            },
            if m.root { "yes" } else { "no" },
            load_words(report),
        ),
    );
    let tables = report_tables(report);
    let find = |prefix: &str| tables.iter().find(|t| t.title.starts_with(prefix));
    section(&mut out, "Targets", find("Targets"), &targets_words(report));
    section(
        &mut out,
        "How it measures",
        None,
        &format!(
            "- **Dev vault**: `keyvol-dev dev-vault` in the harness's process, HTTPS on loopback, one \
vault of {}-byte secrets. *Added latency* is a fault rule that delays every Key Vault and Entra ID \
request by that many milliseconds before it is handled — a network round trip per request (TCP \
and TLS handshakes are not delayed, and connections are pooled by the daemon).\n\
- **Kubernetes API**: keyvol's in-process fake API server holding one plain upstream Azure \
SecretProviderClass per object count.\n\
- **Daemons**: the real `keyvol node` and `keyvol provider` as child processes of the harness \
(the same binary), with a clean environment.\n\
- **Node path**: the harness plays kubelet — NodePublishVolume over the CSI socket, each call \
on a new connection as kubelet's CSI client makes it, with pod info and a nodePublishSecretRef \
(`clientid`/`clientsecret`). A mount is timed from dialling to the answer: class lookup, tmpfs \
mount, fetch, atomic write and the SecretProviderClassPodStatus write included. Each sample is a \
new volume, unpublished afterwards (not timed); as kubelet does, the harness creates the \
volume's directory (the target's parent) before the call, and the target is the node's to \
create. The kubelet-style pod directories are on a tmpfs \
of the harness's (as root), so that thousands of them cost nothing to remove.\n\
- **Provider path**: the harness plays the upstream driver — one Mount over the provider socket \
with the class parameters and pod attributes as JSON, over a kept connection.\n\
- **Cold and warm**: a cold sample uses a service principal the daemon has never seen, so it \
pays for the credential and the token request (and the 401 challenge, unless the daemon already \
knows the vault's: the warm-up mounts before each figure have met it); a warm sample reuses the \
daemon's warm identity. Cold and warm samples alternate. {} samples each; p50/p95/p99 are \
nearest-rank percentiles (every figure is an observed latency). Samples are paced to the \
daemon's per-vault request rate ({} requests a second, keyvol-azure's `RATE_PER_SECOND`, within \
Key Vault's documented 4,000 per 10 s per vault): a \
mount of n objects starts no sooner than n / {} s after the one before, so no sample waits on \
that budget and the figures measure keyvol's work, not its throttle.\n\
- **Requests** come from the dev vault's counters (route, status, identity), reset before and \
read after each mount: Key Vault requests (401 challenges included) and identity-endpoint \
requests (token, discovery, IMDS, NMI; *token req* counts the token requests alone).\n\
- **Memory** is `VmRSS` / `VmHWM` from `/proc/<pid>/status` of the daemon process.",
            crate::workload::SECRET_BYTES,
            settings.samples,
            keyvol_azure::provider::RATE_PER_SECOND,
            keyvol_azure::provider::RATE_PER_SECOND
        ),
    );
    let node_table = tables
        .iter()
        .find(|t| t.title.contains("keyvol node") && t.title.starts_with("Mount latency"));
    let provider_table = tables
        .iter()
        .find(|t| t.title.contains("keyvol provider") && t.title.starts_with("Mount latency"));
    let chart = format!(
        "![Mount latency against object count, cold and warm]({CHART_FILE})\n\nThe chart draws \
the p50 and p99 of each figure against the round-trip limit: a warm mount needs one vault round \
trip whatever its object count, a cold one two (the token, then the reads), so the dotted lines \
at the added latency × 1 and × 2 are the floor no mount can go below; the distance above them is \
the daemon's own work and any extra round trips."
    );
    if node_table.is_some() {
        section(
            &mut out,
            "Mount latency and requests per mount: keyvol node",
            node_table,
            &format!(
                "{chart}\n\nOne NodePublishVolume through the real daemon over its CSI socket; objects fetched \
concurrently (`--azure-fetch-concurrency`)."
            ),
        );
    }
    if provider_table.is_some() {
        section(
            &mut out,
            "Mount latency and requests per mount: keyvol provider",
            provider_table,
            &if node_table.is_some() {
                "One Mount through `keyvol provider` as the upstream driver would ask it: no \
tmpfs, no API server, the files come back in the answer."
                    .to_owned()
            } else {
                format!(
                    "{chart}\n\nOne Mount through `keyvol provider` as the upstream driver would \
ask it: no tmpfs, no API server, the files come back in the answer."
                )
            },
        );
    }
    if let Some(t) = find("Burst") {
        section(&mut out, "Burst", Some(t), &burst_words(report));
    }
    if let Some(t) = find("Memory") {
        section(&mut out, "Memory", Some(t), &memory_words(report));
    }
    if let Some(t) = find("Rotation") {
        section(
            &mut out,
            "Rotation: vault requests per interval",
            Some(t),
            &rotation_words(report),
        );
    }
    section(
        &mut out,
        "Against upstream's design",
        None,
        &upstream_comparison(report),
    );
    let mut notes = report.notes.clone();
    if report.bursts.iter().any(|b| b.failed > 0) {
        notes.push(
            "Some burst publishes failed; the first error of each burst is in the JSON.".into(),
        );
    }
    if !notes.is_empty() {
        let list: Vec<String> = notes.iter().map(|n| format!("- {n}")).collect();
        section(&mut out, "Notes", None, &list.join("\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    #[test]
    fn the_document_has_every_section_the_chart_and_the_command() {
        let md = render(&fixtures::report());
        for heading in [
            "# keyvol-dev benchmarks",
            "## Reproduce",
            "## Machine",
            "## Targets",
            "## How it measures",
            "## Mount latency and requests per mount: keyvol node",
            "## Mount latency and requests per mount: keyvol provider",
            "## Burst",
            "## Memory",
            "## Rotation: vault requests per interval",
            "## Against upstream's design",
            "## Notes",
        ] {
            assert!(md.contains(heading), "missing {heading}");
        }
        assert!(md.contains(REPRODUCE));
        assert!(md.contains("](benchmarks-latency.svg)"));
        assert!(md.contains("≈14 sequential round trips"));
        assert!(md.contains("at least 280 ms"));
        assert!(md.contains(
            "the round costs 11,000 Key Vault requests (1,000 of them challenges) and 1,000 token \
requests, and each volume waits at least 14 round trips (280 ms at 20 ms each)"
        ));
        assert!(md.contains("(10 s here)"));
        assert!(md.contains("Node peak is the round's own where its `VmHWM` could be reset"));
        assert!(md.contains("Bursts of 200 and 1,000 volumes"));
        assert!(md.contains("listens with a backlog of 1,024"));
        assert!(!md.contains("backlog of 128"));
        assert!(md.contains("each of 1,000 service principals the node had never seen"));
        assert!(md.contains("1,000 volumes of 1,000 distinct service principals"));
        // Section order: targets right after the machine, before the figures.
        let at = |h: &str| md.find(h).expect(h);
        assert!(at("## Machine") < at("## Targets"));
        assert!(at("## Targets") < at("## How it measures"));
        assert!(md.contains("- a note"));
        assert!(!md.contains("Smoke run"));
        assert!(md.contains("the machine was otherwise quiet"));
        assert!(
            md.contains("2 % of the machine's CPU time during the run went to other processes")
        );
    }

    #[test]
    fn a_busy_machine_and_a_smoke_run_are_called_out() {
        let mut r = fixtures::report();
        r.machine.other_cpu_percent = Some(35.0);
        r.smoke = true;
        let md = render(&r);
        assert!(md.contains("the machine was shared with other work"));
        assert!(md.contains("**Smoke run**"));
    }

    #[test]
    fn the_targets_section_tallies_the_verdicts_and_names_what_weakens_them() {
        let r = fixtures::report();
        let all = targets::evaluate(&r);
        let (met, not_met, not_measured) = targets::tally(&all);
        let md = render(&r);
        let section = md
            .split("## Targets")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .expect("targets section");
        assert!(
            section.contains(&format!(
                "**{met} of {} met**, {not_met} not met",
                all.len()
            )),
            "{section}"
        );
        assert_eq!(not_measured, 1, "the fixture has no burst of 1,000");
        assert!(section.contains("1 not measured"));
        assert!(section.contains("release build on a quiet machine"));
        assert!(
            section.contains("| keyvol node: idle | ≤ 15 MiB VmRSS | 20.0 MiB | **not met** |")
        );
        assert!(section.contains("Targets not met are in bold."));
        let mut r = fixtures::report();
        r.build_profile = "debug".into();
        r.smoke = true;
        let md = render(&r);
        assert!(md.contains("These figures come from a smoke run and a debug build, so"));
        r.machine.other_cpu_percent = Some(50.0);
        let md = render(&r);
        assert!(
            md.contains("from a smoke run, a debug build and a machine shared with other work, so")
        );
    }

    #[test]
    fn lists_of_sizes_read_as_words() {
        assert_eq!(sizes(&[]), "");
        assert_eq!(sizes(&[20]), "20");
        assert_eq!(sizes(&[200, 1000]), "200 and 1,000");
        assert_eq!(sizes(&[1, 2, 3]), "1, 2 and 3");
    }

    #[test]
    fn hand_written_sections_survive_regeneration() {
        let old = "# t\n\nintro\n\n## Image\n\n<!-- Written by hand, not by the harness -->\n\n\
10.9 MiB compressed.\n\n## Reproduce\n\nold\n\n## Memory\n\nold figures\n";
        let new = render(&fixtures::report());
        let merged = carry_hand_written(old, &new);
        assert!(merged.contains(
            "\n## Image\n\n<!-- Written by hand, not by the harness -->\n\n10.9 MiB compressed.\n\n## Reproduce\n"
        ));
        assert!(
            !merged.contains("old figures"),
            "generated sections are replaced"
        );
        assert_eq!(merged.matches("## Image").count(), 1);
        assert_eq!(
            carry_hand_written(&merged, &merged),
            merged,
            "never doubled"
        );
        assert_eq!(carry_hand_written("", &new), new);
        // Without a Reproduce heading the section goes at the end.
        assert!(carry_hand_written(old, "# x\n").ends_with("10.9 MiB compressed.\n\n"));
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn without_node_figures_the_chart_moves_to_the_provider_section() {
        let mut r = fixtures::report();
        r.node_latency.clear();
        let md = render(&r);
        assert!(!md.contains("## Mount latency and requests per mount: keyvol node"));
        let provider = md
            .split("## Mount latency and requests per mount: keyvol provider")
            .nth(1)
            .expect("provider section");
        assert!(provider.contains("](benchmarks-latency.svg)"));
        assert!(md.contains("through keyvol provider, a 10-object mount"));
    }
}
