//! `keyvol-dev bench`: the benchmark harness (crate `keyvol-bench`) run against the production
//! binary's `node` and `provider` subcommands (`keyvol` next to this binary, or `--keyvol`).
//! Tables on stdout, progress on stderr, and `benchmarks.{json,md}` plus
//! `benchmarks-latency.svg` in `--out` (default `docs`).

use std::path::PathBuf;

use keyvol_bench::{BenchConfig, BenchError};

use keyvol_cli::Failure;

/// Arguments of `keyvol-dev bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// The `keyvol` binary to measure [default: `keyvol` in this binary's directory].
    #[arg(long, value_name = "PATH")]
    pub keyvol: Option<PathBuf>,
    /// A seconds-long run with tiny counts that checks every phase works (what CI runs); fails
    /// on any error. Writes files only when --out is given.
    #[arg(long)]
    pub smoke: bool,
    /// Directory for benchmarks.json, benchmarks-latency.svg and benchmarks.md
    /// [default: docs; with --smoke, none].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Samples per latency figure, cold and warm each [default: 100; smoke 3].
    #[arg(long)]
    pub samples: Option<usize>,
    /// Latencies the dev vault adds to every request, ms, comma-separated [default: 0,20].
    #[arg(long, value_delimiter = ',', value_name = "MS,…")]
    pub latency_ms: Option<Vec<u64>>,
    /// Objects per volume for the latency figures, comma-separated [default: 1,10,50].
    #[arg(long, value_delimiter = ',', value_name = "N,…")]
    pub objects: Option<Vec<usize>>,
    /// Burst sizes: volumes published at once, comma-separated [default: 200,1000; smoke 20].
    #[arg(long, value_delimiter = ',', value_name = "N,…")]
    pub burst: Option<Vec<usize>>,
    /// Objects per burst volume [default: 10].
    #[arg(long)]
    pub burst_objects: Option<usize>,
    /// Runs of each burst, each on a fresh node; the median run is reported [default: 3; smoke 1].
    #[arg(long)]
    pub burst_runs: Option<usize>,
    /// Volumes mounted for the memory figure and the rotation rounds [default: 1000; smoke 20].
    #[arg(long)]
    pub memory_volumes: Option<usize>,
    /// Distinct identities that each publish and unpublish a volume for the
    /// memory-after-identities figure [default: 1000; smoke 20].
    #[arg(long)]
    pub churn_identities: Option<usize>,
    /// Skip the rotation rounds (one identity, and one identity per volume).
    #[arg(long)]
    pub no_rotation: bool,
}

fn config(args: &BenchArgs, keyvol: PathBuf, command: String) -> BenchConfig {
    let mut c = if args.smoke {
        BenchConfig::smoke(keyvol, command)
    } else {
        BenchConfig::full(keyvol, command)
    };
    let s = &mut c.settings;
    if let Some(n) = args.samples {
        s.samples = n;
    }
    if let Some(v) = &args.latency_ms {
        s.added_latency_ms.clone_from(v);
    }
    if let Some(v) = &args.objects {
        s.object_counts.clone_from(v);
    }
    if let Some(v) = &args.burst {
        s.burst_volumes.clone_from(v);
    }
    if let Some(n) = args.burst_objects {
        s.burst_objects = n;
    }
    if let Some(n) = args.burst_runs {
        s.burst_runs = n;
    }
    if let Some(n) = args.memory_volumes {
        s.memory_volumes = n;
    }
    if let Some(n) = args.churn_identities {
        s.churn_identities = n;
    }
    c.rotation = !args.no_rotation;
    c
}

fn failure(e: &BenchError) -> Failure {
    Failure::chain(e, matches!(e, BenchError::Settings(_)))
}

/// The production binary beside this one (cargo builds both into one directory).
fn sibling_keyvol() -> Result<PathBuf, Failure> {
    let me = std::env::current_exe()
        .map_err(|e| Failure::internal(format!("failed to find this binary: {e}")))?;
    let keyvol = me.with_file_name("keyvol");
    if keyvol.is_file() {
        Ok(keyvol)
    } else {
        Err(Failure::input(format!(
            "no keyvol binary at {} (build it with `cargo build -p keyvol`, or pass --keyvol PATH)",
            keyvol.display()
        )))
    }
}

/// `keyvol-dev bench`.
pub async fn run(args: BenchArgs) -> Result<(), Failure> {
    let keyvol = match &args.keyvol {
        Some(path) => path.clone(),
        None => sibling_keyvol()?,
    };
    let command = std::iter::once("keyvol-dev".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let config = config(&args, keyvol, command);
    // Seconds since the start on every line: where a run spends its time.
    let started = std::time::Instant::now();
    let progress = |line: String| {
        eprintln!(
            "keyvol-dev bench: [{:>5.0} s] {line}",
            started.elapsed().as_secs_f64()
        );
    };
    // Ctrl-C drops the run: its guards kill the daemons and unmount every volume.
    let report = tokio::select! {
        r = keyvol_bench::run(&config, &progress) => r.map_err(|e| failure(&e))?,
        _ = tokio::signal::ctrl_c() => {
            return Err(Failure::internal("interrupted; daemons stopped and volumes unmounted"));
        }
    };
    println!("{}", keyvol_bench::render_text(&report));
    for note in &report.notes {
        println!("note: {note}");
    }
    match (&args.out, args.smoke) {
        // A smoke run without --out still renders every output, and discards it.
        (None, true) => {
            keyvol_bench::run::render_outputs(&report).map_err(|e| failure(&e))?;
            eprintln!("keyvol-dev bench: smoke run: outputs rendered, not written (use --out DIR)");
        }
        (out, _) => {
            let dir = out.clone().unwrap_or_else(|| PathBuf::from("docs"));
            for path in keyvol_bench::write_outputs(&report, &dir).map_err(|e| failure(&e))? {
                eprintln!("keyvol-dev bench: wrote {}", path.display());
            }
        }
    }
    if args.smoke {
        keyvol_bench::smoke_check(&report).map_err(|e| failure(&e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }

    #[test]
    fn flags_override_the_presets() {
        let cli = Cli::parse_from([
            "bench",
            "--samples=7",
            "--latency-ms=0,5,50",
            "--objects=2,4",
            "--burst=20,40",
            "--churn-identities=30",
            "--no-rotation",
        ]);
        let c = config(&cli.args, "keyvol".into(), "keyvol-dev bench".into());
        assert_eq!(c.settings.samples, 7);
        assert_eq!(c.settings.added_latency_ms, vec![0, 5, 50]);
        assert_eq!(c.settings.object_counts, vec![2, 4]);
        assert_eq!(c.settings.burst_volumes, vec![20, 40]);
        assert_eq!(c.settings.churn_identities, 30);
        assert_eq!(c.settings.memory_volumes, 1000);
        assert!(!c.rotation && !c.smoke);
        let smoke = Cli::parse_from(["bench", "--smoke"]);
        let c = config(&smoke.args, "keyvol".into(), String::new());
        assert!(c.smoke);
        assert_eq!(c.settings.samples, 3);
        assert_eq!(c.settings.burst_volumes, vec![20]);
        let full = Cli::parse_from(["bench"]);
        let c = config(&full.args, "keyvol".into(), String::new());
        assert_eq!(c.settings.burst_volumes, vec![200, 1000]);
    }
}
