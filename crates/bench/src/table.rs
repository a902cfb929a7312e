//! Tables: a small [`Table`] type rendered as aligned text (the terminal) or as GitHub Markdown
//! (`benchmarks.md`), and [`report_tables`], the tables every report is shown as.

use crate::report::{Cache, LatencyFigure, Report};
use crate::resident::{Resident, mib};

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

/// The tables of a report, in the order they are shown: node latency, provider latency, bursts,
/// memory, rotation. Empty sections are left out.
pub fn report_tables(report: &Report) -> Vec<Table> {
    use Align::*;
    let mut tables = Vec::new();
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
                b.volumes.to_string(),
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
                b.requests.vault.to_string(),
                b.requests.challenges.to_string(),
                b.requests.identity.to_string(),
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
                crate::markdown::thousands(f.volumes as u64),
                f.objects
            ),
            &f.resident,
        );
    }
    for b in &report.bursts {
        if let Some(r) = &b.node_resident {
            resident_row(
                &mut t,
                "keyvol node",
                &format!(
                    "after a burst of {} ({}, {} ms)",
                    b.volumes,
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
    if let Some(r) = &report.rotation {
        let mut t = Table::new(
            "Rotation: one republish of every mounted volume after the poll interval",
            &[
                ("volumes", Right),
                ("objects each", Right),
                ("wall ms", Right),
                ("errors", Right),
                ("vault req", Right),
                ("identity req", Right),
                ("vault req per volume", Right),
            ],
        );
        t.push(vec![
            r.volumes.to_string(),
            r.objects.to_string(),
            ms(r.wall_ms),
            r.failed.to_string(),
            r.requests.vault.to_string(),
            r.requests.identity.to_string(),
            per_mount(r.requests.vault as f64 / r.volumes.max(1) as f64),
        ]);
        tables.push(t);
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
    fn a_report_becomes_latency_burst_memory_and_rotation_tables() {
        let r = fixtures::report();
        let tables = report_tables(&r);
        let titles: Vec<&str> = tables.iter().map(|t| t.title.as_str()).collect();
        assert_eq!(titles.len(), 5, "{titles:?}");
        assert!(titles[0].contains("keyvol node"));
        assert!(titles[1].contains("keyvol provider"));
        assert!(titles[2].starts_with("Burst"));
        assert!(titles[3].starts_with("Memory"));
        assert!(titles[4].starts_with("Rotation"));
        // 3 object counts × 2 latencies × cold/warm, ordered by latency, objects, cold first.
        let node = &tables[0];
        assert_eq!(node.rows.len(), 12);
        assert_eq!(node.rows[0][..3], ["1", "0 ms", "cold"]);
        assert_eq!(node.rows[1][..3], ["1", "0 ms", "warm"]);
        assert_eq!(node.rows[11][..3], ["50", "20 ms", "warm"]);
        assert_eq!(
            node.rows[0][7], "2",
            "vault requests per cold 1-object mount"
        );
        let burst = &tables[2].rows[0];
        assert_eq!(burst[2], "distinct identities");
        assert_eq!(burst[5], "1500 / 1234 / 1000");
        assert_eq!(burst[7], "1");
        assert_eq!(burst[8], "72", "refused connects");
        assert_eq!(tables[4].rows[0][6], "10");
        for t in &tables {
            assert!(t.rows.iter().all(|r| r.len() == t.headers.len()));
        }
    }

    #[test]
    fn empty_sections_are_left_out() {
        let mut r = fixtures::report();
        r.node_latency.clear();
        r.bursts.clear();
        r.rotation = None;
        r.memory = Default::default();
        let tables = report_tables(&r);
        assert_eq!(tables.len(), 1);
        assert!(tables[0].title.contains("keyvol provider"));
    }
}
