//! Tables: a small [`Table`] type rendered as aligned text (the terminal) or as GitHub Markdown
//! (`benchmarks.md`), and [`report_tables`], the tables every report is shown as.

use crate::markdown::thousands;
use crate::report::{Cache, LatencyFigure, Report, RotationFigure};
use crate::resident::{Resident, mib};
use crate::targets::Target;
use crate::upstream::UpstreamRound;

/// How a column is aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text.
    Left,
    /// Numbers.
    Right,
}

/// A titled table of strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Shown above the table.
    pub title: String,
    /// Column headers.
    pub headers: Vec<String>,
    /// Column alignment (one per header).
    pub align: Vec<Align>,
    /// Rows (each as long as `headers`).
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table; columns are `(header, alignment)`.
    pub fn new(title: impl Into<String>, columns: &[(&str, Align)]) -> Self {
        Self {
            title: title.into(),
            headers: columns.iter().map(|(h, _)| (*h).to_owned()).collect(),
            align: columns.iter().map(|(_, a)| *a).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row, padded or cut to the number of columns.
    pub fn push(&mut self, mut row: Vec<String>) {
        row.resize(self.headers.len(), String::new());
        self.rows.push(row);
    }

    fn widths(&self) -> Vec<usize> {
        let mut w: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (wi, cell) in w.iter_mut().zip(row) {
                *wi = (*wi).max(cell.chars().count());
            }
        }
        w
    }

    fn pad(cell: &str, width: usize, align: Align) -> String {
        let fill = " ".repeat(width.saturating_sub(cell.chars().count()));
        match align {
            Align::Left => format!("{cell}{fill}"),
            Align::Right => format!("{fill}{cell}"),
        }
    }

    /// Aligned text: the title, the headers, a rule, the rows.
    pub fn to_text(&self) -> String {
        let w = self.widths();
        let line = |cells: &[String]| -> String {
            let parts: Vec<String> = cells
                .iter()
                .zip(&w)
                .zip(&self.align)
                .map(|((c, w), a)| Self::pad(c, *w, *a))
                .collect();
            parts.join("  ").trim_end().to_owned()
        };
        let mut out = format!("{}\n{}\n", self.title, line(&self.headers));
        let rule: Vec<String> = w.iter().map(|n| "-".repeat(*n)).collect();
        out.push_str(&rule.join("  "));
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row));
            out.push('\n');
        }
        out
    }

    /// A GitHub Markdown table (no title); `|` in cells is escaped.
    pub fn to_markdown(&self) -> String {
        let esc = |s: &str| s.replace('|', "\\|");
        let row = |cells: &[String]| -> String {
            let parts: Vec<String> = cells.iter().map(|c| esc(c)).collect();
            format!("| {} |\n", parts.join(" | "))
        };
        let mut out = row(&self.headers);
        let rule: Vec<&str> = self
            .align
            .iter()
            .map(|a| match a {
                Align::Left => "---",
                Align::Right => "---:",
            })
            .collect();
        out.push_str(&format!("|{}|\n", rule.join("|")));
        for r in &self.rows {
            out.push_str(&row(r));
        }
        out
    }
}

/// A number with one decimal (`12.3`).
pub fn ms(v: f64) -> String {
    format!("{v:.1}")
}

/// A request count per mount: whole numbers without decimals, others with one.
pub fn per_mount(v: f64) -> String {
    if (v - v.round()).abs() < 0.005 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn mib_cell(kib: u64) -> String {
    format!("{:.1}", mib(kib))
}

fn latency_table(title: &str, figures: &[LatencyFigure]) -> Table {
    use Align::*;
    let mut t = Table::new(
        title,
        &[
            ("objects", Right),
            ("added latency", Right),
            ("cold/warm", Left),
            ("p50 ms", Right),
            ("p95 ms", Right),
            ("p99 ms", Right),
            ("samples", Right),
            ("vault req/mount", Right),
            ("of which 401", Right),
            ("identity req/mount", Right),
        ],
    );
    let mut sorted: Vec<&LatencyFigure> = figures.iter().collect();
    sorted.sort_by_key(|f| (f.added_latency_ms, f.objects, f.cache == Cache::Warm));
    for f in sorted {
        t.push(vec![
            f.objects.to_string(),
            format!("{} ms", f.added_latency_ms),
            f.cache.label().to_owned(),
            ms(f.latency_ms.p50),
            ms(f.latency_ms.p95),
            ms(f.latency_ms.p99),
            f.latency_ms.n.to_string(),
            per_mount(f.requests.vault),
            per_mount(f.requests.challenges),
            per_mount(f.requests.identity),
        ]);
    }
    t
}

fn resident_row(t: &mut Table, process: &str, state: &str, r: &Resident) {
    t.push(vec![
        process.to_owned(),
        state.to_owned(),
        mib_cell(r.rss_kib),
        mib_cell(r.hwm_kib),
    ]);
}

/// The targets and the run's verdict on each.
pub fn targets_table(targets: &[Target]) -> Table {
    use Align::*;
    let mut t = Table::new(
        "Targets: computed from this run's figures",
        &[
            ("figure", Left),
            ("target", Left),
            ("measured", Right),
            ("verdict", Left),
        ],
    );
    for target in targets {
        t.push(vec![
            target.figure.clone(),
            target.limit.clone(),
            target.measured.clone(),
            target.verdict.label().to_owned(),
        ]);
    }
    t
}

fn rotation_row(r: &RotationFigure) -> Vec<String> {
    vec![
        "keyvol node (measured)".to_owned(),
        thousands(r.volumes as u64),
        thousands(r.identities as u64),
        r.objects.to_string(),
        format!("{} ms", r.added_latency_ms),
        ms(r.wall_ms),
        r.republish_ms.as_ref().map_or("-".into(), |s| ms(s.p50)),
        r.failed.to_string(),
        thousands(r.requests.vault),
        thousands(r.requests.challenges),
        thousands(r.requests.tokens),
        thousands(r.requests.identity),
        r.node_resident.map_or("-".into(), |r| mib_cell(r.hwm_kib)),
    ]
}

/// Upstream's design for the same round: a model, so no wall time, errors or memory.
fn upstream_rotation_row(volumes: usize, objects: usize, added_latency_ms: u64) -> Vec<String> {
    let m = UpstreamRound::of(volumes, objects);
    vec![
        "upstream's design (model)".to_owned(),
        thousands(volumes as u64),
        "any".to_owned(),
        objects.to_string(),
        format!("{added_latency_ms} ms"),
        "-".to_owned(),
        format!("≥ {}", m.mount.wait_ms(added_latency_ms)),
        "-".to_owned(),
        thousands(m.vault()),
        thousands(m.challenges()),
        thousands(m.tokens()),
        thousands(m.identity()),
        "-".to_owned(),
    ]
}

/// Rotation rounds as measured, then upstream's design for each distinct round shape.
fn rotation_table(rounds: &[RotationFigure]) -> Table {
    use Align::*;
    let mut t = Table::new(
        "Rotation: one republish of every mounted volume after the poll interval",
        &[
            ("design", Left),
            ("volumes", Right),
            ("identities", Right),
            ("objects each", Right),
            ("added latency", Right),
            ("wall ms", Right),
            ("republish p50 ms", Right),
            ("errors", Right),
            ("vault req", Right),
            ("of which 401", Right),
            ("token req", Right),
            ("identity req", Right),
            ("node peak MiB", Right),
        ],
    );
    let mut shapes = Vec::new();
    for r in rounds {
        t.push(rotation_row(r));
        let shape = (r.volumes, r.objects, r.added_latency_ms);
        if !shapes.contains(&shape) {
            shapes.push(shape);
        }
    }
    for (volumes, objects, added) in shapes {
        t.push(upstream_rotation_row(volumes, objects, added));
    }
    t
}

/// The tables of a report, in the order they are shown: targets, node latency, provider latency,
/// bursts, memory, rotation. Empty sections are left out.
pub fn report_tables(report: &Report) -> Vec<Table> {
    use Align::*;
    let mut tables = vec![targets_table(&crate::targets::evaluate(report))];
    if !report.node_latency.is_empty() {
        tables.push(latency_table(
            "Mount latency: NodePublishVolume through keyvol node (CSI socket)",
            &report.node_latency,
        ));
    }
    if !report.provider_latency.is_empty() {
        tables.push(latency_table(
            "Mount latency: Mount through keyvol provider (provider socket)",
            &report.provider_latency,
        ));
    }
    if !report.bursts.is_empty() {
        let mut t = Table::new(
            "Burst: volumes published at once to a fresh keyvol node",
            &[
                ("volumes", Right),
                ("objects", Right),
                ("identities", Left),
                ("added latency", Right),
                ("wall ms", Right),
                ("every run, ms", Right),
                ("ok", Right),
                ("errors", Right),
                ("refused connects", Right),
                ("vault req", Right),
                ("of which 401", Right),
                ("identity req", Right),
                ("publish p50 ms", Right),
                ("publish p99 ms", Right),
                ("node peak MiB", Right),
            ],
        );
        for b in &report.bursts {
            t.push(vec![
                thousands(b.volumes as u64),
                b.objects.to_string(),
                b.identities.label().to_owned(),
                format!("{} ms", b.added_latency_ms),
                ms(b.wall_ms),
                b.wall_ms_runs
                    .iter()
                    .map(|w| format!("{w:.0}"))
                    .collect::<Vec<_>>()
                    .join(" / "),
                b.succeeded.to_string(),
                b.failed.to_string(),
                b.refused_connects.to_string(),
                thousands(b.requests.vault),
                thousands(b.requests.challenges),
                thousands(b.requests.identity),
                b.publish_ms.as_ref().map_or("-".into(), |s| ms(s.p50)),
                b.publish_ms.as_ref().map_or("-".into(), |s| ms(s.p99)),
                b.node_resident.map_or("-".into(), |r| mib_cell(r.hwm_kib)),
            ]);
        }
        tables.push(t);
    }
    let m = &report.memory;
    let mut t = Table::new(
        "Memory: resident set (VmRSS) and its peak so far (VmHWM)",
        &[
            ("process", Left),
            ("state", Left),
            ("VmRSS MiB", Right),
            ("VmHWM MiB", Right),
        ],
    );
    if let Some(r) = &m.node_idle {
        resident_row(&mut t, "keyvol node", "idle (just started, no volume)", r);
    }
    if let Some(f) = &m.node_mounted {
        resident_row(
            &mut t,
            "keyvol node",
            &format!(
                "{} volumes mounted ({} objects each)",
                thousands(f.volumes as u64),
                f.objects
            ),
            &f.resident,
        );
    }
    if let Some(f) = &m.node_mounted_distinct {
        resident_row(
            &mut t,
            "keyvol node",
            &format!(
                "{} volumes mounted, one identity each ({} objects each)",
                thousands(f.volumes as u64),
                f.objects
            ),
            &f.resident,
        );
    }
    if let Some(c) = &m.node_after_identities {
        resident_row(
            &mut t,
            "keyvol node",
            &format!(
                "after {} distinct identities came and went (VmHWM: peak during)",
                thousands(c.identities as u64)
            ),
            &c.after,
        );
        if let Some(evicted) = &c.evicted {
            resident_row(
                &mut t,
                "keyvol node",
                &format!(
                    "the same, once idle for --azure-identity-idle={}s (evicted)",
                    c.identity_idle_secs
                ),
                evicted,
            );
        }
    }
    for b in &report.bursts {
        if let Some(r) = &b.node_resident {
            resident_row(
                &mut t,
                "keyvol node",
                &format!(
                    "after a burst of {} ({}, {} ms)",
                    thousands(b.volumes as u64),
                    b.identities.label(),
                    b.added_latency_ms
                ),
                r,
            );
        }
    }
    if let Some(r) = &m.provider_idle {
        resident_row(&mut t, "keyvol provider", "idle", r);
    }
    if let Some(r) = &m.provider_after {
        resident_row(&mut t, "keyvol provider", "after its latency runs", r);
    }
    if !t.rows.is_empty() {
        tables.push(t);
    }
    if !report.rotation.is_empty() {
        tables.push(rotation_table(&report.rotation));
    }
    tables
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    fn sample() -> Table {
        let mut t = Table::new("T", &[("name", Align::Left), ("ms", Align::Right)]);
        t.push(vec!["a".into(), "1.5".into()]);
        t.push(vec!["longer|x".into(), "12.0".into(), "dropped".into()]);
        t.push(vec!["short".into()]);
        t
    }

    #[test]
    fn text_tables_align_text_left_and_numbers_right() {
        assert_eq!(
            sample().to_text(),
            "T\nname        ms\n--------  ----\na          1.5\nlonger|x  12.0\nshort\n"
        );
    }

    #[test]
    fn markdown_tables_escape_pipes_and_mark_numeric_columns() {
        assert_eq!(
            sample().to_markdown(),
            "| name | ms |\n|---|---:|\n| a | 1.5 |\n| longer\\|x | 12.0 |\n| short |  |\n"
        );
    }

    #[test]
    fn counts_per_mount_drop_needless_decimals() {
        assert_eq!(per_mount(12.0), "12");
        assert_eq!(per_mount(12.5), "12.50");
        assert_eq!(ms(12.345), "12.3");
    }

    #[test]
    fn a_report_becomes_targets_latency_burst_memory_and_rotation_tables() {
        let r = fixtures::report();
        let tables = report_tables(&r);
        let titles: Vec<&str> = tables.iter().map(|t| t.title.as_str()).collect();
        assert_eq!(titles.len(), 6, "{titles:?}");
        assert!(titles[0].starts_with("Targets"));
        assert!(titles[1].contains("keyvol node"));
        assert!(titles[2].contains("keyvol provider"));
        assert!(titles[3].starts_with("Burst"));
        assert!(titles[4].starts_with("Memory"));
        assert!(titles[5].starts_with("Rotation"));
        assert_eq!(tables[0].rows.len(), crate::targets::evaluate(&r).len());
        // 3 object counts × 2 latencies × cold/warm, ordered by latency, objects, cold first.
        let node = &tables[1];
        assert_eq!(node.rows.len(), 12);
        assert_eq!(node.rows[0][..3], ["1", "0 ms", "cold"]);
        assert_eq!(node.rows[1][..3], ["1", "0 ms", "warm"]);
        assert_eq!(node.rows[11][..3], ["50", "20 ms", "warm"]);
        assert_eq!(
            node.rows[0][7], "2",
            "vault requests per cold 1-object mount"
        );
        let burst = &tables[3].rows[0];
        assert_eq!(burst[2], "distinct identities");
        assert_eq!(burst[5], "1500 / 1234 / 1000");
        assert_eq!(burst[7], "1");
        assert_eq!(burst[8], "72", "refused connects");
        assert_eq!(burst[9], "2,200", "vault requests");
        assert!(
            tables[4]
                .rows
                .iter()
                .any(|r| r[1] == "after a burst of 200 (distinct identities, 20 ms)")
        );
        let memory: Vec<&str> = tables[4].rows.iter().map(|r| r[1].as_str()).collect();
        assert!(memory.contains(&"1,000 volumes mounted, one identity each (10 objects each)"));
        let churn = tables[4]
            .rows
            .iter()
            .find(|r| r[1].starts_with("after 1,000 distinct identities came and went"))
            .expect("churn row");
        assert_eq!(churn[2..], ["20.0", "24.0"]);
        for t in &tables {
            assert!(t.rows.iter().all(|r| r.len() == t.headers.len()));
        }
    }

    #[test]
    fn rotation_rounds_are_shown_beside_one_upstream_model_row_per_shape() {
        let r = fixtures::report();
        let t = rotation_table(&r.rotation);
        // Two measured rounds of the same shape (1,000 volumes, 10 objects, 20 ms): one model.
        assert_eq!(t.rows.len(), 3);
        assert_eq!(t.rows[0][..3], ["keyvol node (measured)", "1,000", "1"]);
        assert_eq!(t.rows[0][8], "10", "vault requests of the shared round");
        assert_eq!(t.rows[0][12], "24.0", "node peak");
        assert_eq!(t.rows[1][2], "1,000");
        assert_eq!(t.rows[1][6], "-", "no republish times");
        let model = &t.rows[2];
        assert_eq!(model[0], "upstream's design (model)");
        assert_eq!(model[6], "≥ 280", "14 sequential round trips of 20 ms");
        assert_eq!(model[8..12], ["11,000", "1,000", "1,000", "3,000"]);
        assert_eq!(model[12], "-", "a model has no memory figure");
        let mut other = r.rotation.clone();
        other[1].added_latency_ms = 0;
        let t = rotation_table(&other);
        assert_eq!(t.rows.len(), 4, "two shapes, two model rows");
        assert_eq!(t.rows[3][6], "≥ 0");
    }

    #[test]
    fn empty_sections_are_left_out() {
        let mut r = fixtures::report();
        r.node_latency.clear();
        r.bursts.clear();
        r.rotation.clear();
        r.memory = Default::default();
        let tables = report_tables(&r);
        assert_eq!(tables.len(), 2);
        assert!(tables[0].title.starts_with("Targets"), "always shown");
        assert!(tables[1].title.contains("keyvol provider"));
    }
}
