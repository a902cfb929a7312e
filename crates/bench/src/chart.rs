//! The chart `benchmarks-latency.svg`: mount latency against object count, cold and warm, one
//! line per added vault latency, against the one- and two-round-trip reference lines (the added
//! latency × 1 and × 2: the least a warm and a cold mount can take) — drawn by hand as SVG
//! (axes, grid, polylines, markers, legend), with no plotting library. [`render`] draws any
//! [`Chart`]; [`latency_chart`] builds the one for a report.

use std::fmt::Write as _;

use crate::report::{Cache, LatencyFigure, Report};

/// Canvas size, px.
const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 440.0;
/// Plot area margins, px: the right one holds the legend.
const LEFT: f64 = 64.0;
const RIGHT: f64 = 230.0;
const TOP: f64 = 56.0;
const BOTTOM: f64 = 56.0;
/// Horizontal ticks on the y axis (besides 0).
const Y_TICKS: u32 = 5;

/// How a line is stroked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineStyle {
    /// Solid, with a marker on every point: a measured p50.
    Solid,
    /// Dashed, no markers: a measured p99.
    Dashed,
    /// Dotted and thin, no markers: a reference line, not a measurement.
    Dotted,
}

impl LineStyle {
    /// The stroke attributes after the colour.
    fn stroke(self) -> &'static str {
        match self {
            LineStyle::Solid => r#" stroke-width="2""#,
            LineStyle::Dashed => r#" stroke-width="2" stroke-dasharray="6 4""#,
            LineStyle::Dotted => r#" stroke-width="1.5" stroke-dasharray="2 3""#,
        }
    }
}

/// One line.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// Stroke colour (`#rrggbb`).
    pub color: String,
    /// How it is drawn.
    pub style: LineStyle,
    /// Points `(x, y)`; x must be positive (the x axis is logarithmic).
    pub points: Vec<(f64, f64)>,
}

/// A line chart with a logarithmic x axis and a linear y axis from 0.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Title.
    pub title: String,
    /// Second line under the title.
    pub subtitle: String,
    /// x axis label.
    pub x_label: String,
    /// y axis label.
    pub y_label: String,
    /// x values that get a tick and a label.
    pub x_ticks: Vec<f64>,
    /// The lines.
    pub series: Vec<Series>,
}

/// Escapes text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The smallest 1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 × 10ⁿ at or above `v` (at least 1): a round
/// axis end that wastes little of the plot.
pub fn nice_ceiling(v: f64) -> f64 {
    if !v.is_finite() || v <= 1.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    for step in [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0] {
        if step * magnitude >= v {
            return step * magnitude;
        }
    }
    10.0 * magnitude
}

/// A number for a tick label: no decimals when whole, else at most two.
fn tick_label(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    }
}

/// Draws the chart.
pub fn render(chart: &Chart) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let xs = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .chain(chart.x_ticks.iter().copied())
        .filter(|x| x.is_finite() && *x > 0.0);
    let (x_min, x_max) = xs.fold((f64::INFINITY, 0.0f64), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    let (lx_min, lx_max) = if x_max > 0.0 {
        (x_min.log10(), x_max.log10())
    } else {
        (0.0, 1.0)
    };
    // A little room left and right of the outermost points.
    let span = if lx_max > lx_min {
        lx_max - lx_min
    } else {
        1.0
    };
    let (lo, hi) = (lx_min - span * 0.06, lx_min + span * 1.06);
    let px = |x: f64| LEFT + (x.log10() - lo) / (hi - lo) * plot_w;
    let y_max = nice_ceiling(
        chart
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .filter(|y| y.is_finite())
            .fold(0.0, f64::max)
            * 1.05,
    );
    let py = |y: f64| TOP + plot_h - (y.clamp(0.0, y_max) / y_max) * plot_h;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r##"<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{}</text>"#,
        esc(&chart.title)
    );
    let _ = writeln!(
        s,
        r##"<text x="{LEFT}" y="40" fill="#555555">{}</text>"##,
        esc(&chart.subtitle)
    );
    // Grid and y ticks.
    for i in 0..=Y_TICKS {
        let v = y_max * f64::from(i) / f64::from(Y_TICKS);
        let y = py(v);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e0e0e0"/>"##,
            LEFT + plot_w
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            y + 4.0,
            tick_label(v)
        );
    }
    // x ticks.
    for &x in chart.x_ticks.iter().filter(|x| x.is_finite() && **x > 0.0) {
        let xp = px(x);
        let _ = writeln!(
            s,
            r##"<line x1="{xp:.1}" y1="{TOP}" x2="{xp:.1}" y2="{:.1}" stroke="#f0f0f0"/>"##,
            TOP + plot_h
        );
        let _ = writeln!(
            s,
            r#"<text x="{xp:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            TOP + plot_h + 18.0,
            tick_label(x)
        );
    }
    // Axes.
    let _ = writeln!(
        s,
        r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{:.1}" stroke="#333333"/>"##,
        TOP + plot_h
    );
    let _ = writeln!(
        s,
        r##"<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#333333"/>"##,
        TOP + plot_h,
        LEFT + plot_w,
        TOP + plot_h
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 14.0,
        esc(&chart.x_label)
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{:.1}" text-anchor="middle" transform="rotate(-90 16 {:.1})">{}</text>"#,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0,
        esc(&chart.y_label)
    );
    // Lines, markers and legend.
    for (i, series) in chart.series.iter().enumerate() {
        let color = esc(&series.color);
        let stroke = series.style.stroke();
        let points: Vec<String> = series
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && *x > 0.0 && y.is_finite())
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}"{stroke} points="{}"/>"#,
            points.join(" ")
        );
        if series.style == LineStyle::Solid {
            for p in &points {
                if let Some((cx, cy)) = p.split_once(',') {
                    let _ = writeln!(s, r#"<circle cx="{cx}" cy="{cy}" r="3.5" fill="{color}"/>"#);
                }
            }
        }
        let ly = TOP + 8.0 + 20.0 * i as f64;
        let lx = LEFT + plot_w + 16.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}"{stroke}/>"#,
            lx + 26.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 32.0,
            ly + 4.0,
            esc(&series.label)
        );
    }
    if chart.series.is_empty() {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">no data</text>"#,
            LEFT + plot_w / 2.0,
            TOP + plot_h / 2.0
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Colours per (added latency index, cache): cold in oranges, warm in blues, darker for more
/// latency.
fn color(latency_index: usize, cache: Cache) -> &'static str {
    const COLD: [&str; 3] = ["#fd8d3c", "#d94801", "#7f2704"];
    const WARM: [&str; 3] = ["#6baed6", "#2171b5", "#08306b"];
    let i = latency_index.min(2);
    match cache {
        Cache::Cold => COLD[i],
        Cache::Warm => WARM[i],
    }
}

/// Colours of the reference lines: one round trip lighter, two darker.
const ONE_ROUND_TRIP: &str = "#969696";
const TWO_ROUND_TRIPS: &str = "#252525";

/// The report's chart: node latency (provider latency when the node was not measured), p50
/// solid with markers and p99 dashed, per added latency, cold and warm; and per non-zero added
/// latency, dotted horizontal lines at one round trip (the least a warm mount can take) and two
/// (the least for a cold one) across the object counts.
pub fn latency_chart(report: &Report) -> String {
    let (figures, what): (&[LatencyFigure], &str) = if report.node_latency.is_empty() {
        (&report.provider_latency, "Mount through keyvol provider")
    } else {
        (
            &report.node_latency,
            "NodePublishVolume through keyvol node",
        )
    };
    let mut series = Vec::new();
    let mut references = Vec::new();
    for (li, &added) in report.settings.added_latency_ms.iter().enumerate() {
        let mut xs = Vec::new();
        for cache in [Cache::Cold, Cache::Warm] {
            let mut p50 = Vec::new();
            let mut p99 = Vec::new();
            for &objects in &report.settings.object_counts {
                if let Some(f) = Report::find(figures, objects, added, cache) {
                    p50.push((objects as f64, f.latency_ms.p50));
                    p99.push((objects as f64, f.latency_ms.p99));
                    xs.push(objects as f64);
                }
            }
            if p50.is_empty() {
                continue;
            }
            let c = color(li, cache).to_owned();
            series.push(Series {
                label: format!("{}, +{added} ms vault: p50", cache.label()),
                color: c.clone(),
                style: LineStyle::Solid,
                points: p50,
            });
            series.push(Series {
                label: format!("{}, +{added} ms vault: p99", cache.label()),
                color: c,
                style: LineStyle::Dashed,
                points: p99,
            });
        }
        let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = xs.iter().copied().fold(0.0, f64::max);
        if added == 0 || xs.is_empty() {
            continue;
        }
        for (trips, c, words) in [
            (1, ONE_ROUND_TRIP, "1 round trip"),
            (2, TWO_ROUND_TRIPS, "2 round trips"),
        ] {
            let y = (added * trips) as f64;
            references.push(Series {
                label: format!("{words}: {y:.0} ms"),
                color: c.to_owned(),
                style: LineStyle::Dotted,
                points: vec![(lo, y), (hi, y)],
            });
        }
    }
    series.extend(references);
    render(&Chart {
        title: format!("Mount latency against object count: {what}"),
        subtitle: format!(
            "p50 solid, p99 dashed, round-trip limits dotted; {} samples per point; {} × {}; {} build",
            report.settings.samples,
            report.machine.cpus,
            if report.machine.cpu_model.is_empty() {
                "unknown CPU"
            } else {
                &report.machine.cpu_model
            },
            report.build_profile
        ),
        x_label: "objects in the volume (log scale)".into(),
        y_label: "latency, ms".into(),
        x_ticks: report
            .settings
            .object_counts
            .iter()
            .map(|&n| n as f64)
            .collect(),
        series,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    /// Every number inside `points="…"`, `cx`/`cy`, `x1`… attributes.
    fn coordinates(svg: &str) -> Vec<f64> {
        let mut out = Vec::new();
        for attr in [
            " points=\"",
            " cx=\"",
            " cy=\"",
            " x1=\"",
            " y1=\"",
            " x2=\"",
            " y2=\"",
        ] {
            for part in svg.split(attr).skip(1) {
                let value = part.split('"').next().unwrap_or_default();
                for n in value.split([' ', ',']).filter(|n| !n.is_empty()) {
                    out.push(n.parse().expect("number"));
                }
            }
        }
        out
    }

    #[test]
    fn nice_ceilings_are_round_and_tick_labels_short() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(f64::NAN), 1.0);
        assert_eq!(nice_ceiling(1.4), 1.5);
        assert_eq!(nice_ceiling(3.0), 3.0);
        assert_eq!(nice_ceiling(7.0), 8.0);
        assert_eq!(nice_ceiling(10.0), 10.0);
        assert_eq!(nice_ceiling(101.0), 150.0);
        assert_eq!(nice_ceiling(258.0), 300.0);
        assert_eq!(nice_ceiling(810.0), 1000.0);
        assert_eq!(tick_label(0.3000000001), "0.3");
        assert_eq!(tick_label(60.0), "60");
        assert_eq!(tick_label(0.25), "0.25");
    }

    #[test]
    fn the_report_chart_has_one_line_per_series_and_a_legend() {
        let svg = latency_chart(&fixtures::report());
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<svg").count(), 1);
        // 2 latencies × cold/warm × p50/p99, and two reference lines for the 20 ms latency.
        assert_eq!(svg.matches("<polyline").count(), 10);
        assert_eq!(
            svg.matches("stroke-dasharray=\"6 4\"").count(),
            8,
            "p99 lines and legend"
        );
        assert_eq!(
            svg.matches("stroke-dasharray=\"2 3\"").count(),
            4,
            "reference lines and legend"
        );
        // Markers on the p50 lines only: 4 lines × 3 object counts.
        assert_eq!(svg.matches("<circle").count(), 12);
        for label in [
            "cold, +0 ms vault: p50",
            "warm, +20 ms vault: p99",
            "1 round trip: 20 ms",
            "2 round trips: 40 ms",
            "NodePublishVolume through keyvol node",
            "objects in the volume (log scale)",
        ] {
            assert!(svg.contains(label), "missing {label:?}");
        }
        assert!(!svg.contains("round trip: 0 ms"), "no limit line for 0 ms");
        for tick in [">1</text>", ">10</text>", ">50</text>"] {
            assert!(svg.contains(tick), "missing x tick {tick}");
        }
        // The machine's name is escaped.
        assert!(svg.contains("Test CPU &lt;fast&gt; &amp; cheap"));
        assert!(!svg.contains("<fast>"));
    }

    #[test]
    fn reference_lines_are_flat_at_one_and_two_round_trips_across_the_object_counts() {
        let svg = latency_chart(&fixtures::report());
        let dotted: Vec<Vec<f64>> = svg
            .lines()
            .filter(|l| l.starts_with("<polyline") && l.contains("stroke-dasharray=\"2 3\""))
            .map(coordinates)
            .collect();
        assert_eq!(dotted.len(), 2);
        let measured: Vec<Vec<f64>> = svg
            .lines()
            .filter(|l| l.starts_with("<polyline") && !l.contains("stroke-dasharray"))
            .map(coordinates)
            .collect();
        let (left, right) = (measured[0][0], measured[0][measured[0].len() - 2]);
        for line in &dotted {
            assert_eq!(line.len(), 4, "two points");
            assert_eq!((line[0], line[2]), (left, right), "spans the object counts");
            assert_eq!(line[1], line[3], "horizontal");
        }
        // Two round trips are drawn higher (smaller y) than one, at twice the height above the
        // x axis.
        let axis = TOP + (HEIGHT - TOP - BOTTOM);
        let (one, two) = (axis - dotted[0][1], axis - dotted[1][1]);
        assert!(two > one);
        assert!((two - 2.0 * one).abs() < 0.2, "{one} {two}");
    }

    #[test]
    fn every_coordinate_lies_on_the_canvas() {
        let svg = latency_chart(&fixtures::report());
        let coords = coordinates(&svg);
        assert!(coords.len() > 50);
        for c in coords {
            assert!((0.0..=WIDTH).contains(&c), "{c} off the canvas");
        }
    }

    #[test]
    fn more_objects_are_further_right_and_slower_points_higher() {
        let chart = Chart {
            title: "t".into(),
            subtitle: String::new(),
            x_label: "x".into(),
            y_label: "y".into(),
            x_ticks: vec![1.0, 10.0],
            series: vec![Series {
                label: "s".into(),
                color: "#000000".into(),
                style: LineStyle::Solid,
                points: vec![(1.0, 5.0), (10.0, 50.0)],
            }],
        };
        let svg = render(&chart);
        let line = svg
            .lines()
            .find(|l| l.starts_with("<polyline"))
            .expect("polyline");
        let pts: Vec<f64> = coordinates(line);
        let (x1, y1, x2, y2) = (pts[0], pts[1], pts[2], pts[3]);
        assert!(x2 > x1, "x grows to the right");
        assert!(y2 < y1, "larger values are drawn higher");
    }

    #[test]
    fn a_chart_without_data_still_renders() {
        let mut r = fixtures::report();
        r.node_latency.clear();
        r.provider_latency.clear();
        let svg = latency_chart(&r);
        assert!(svg.contains("no data"));
        assert_eq!(svg.matches("<polyline").count(), 0);
        assert!(svg.ends_with("</svg>\n"));
        for c in coordinates(&svg) {
            assert!(c.is_finite());
        }
    }
}
