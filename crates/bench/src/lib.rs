//! keyvol-bench: the benchmark harness behind `keyvol-dev bench`. It measures the real `keyvol node`
//! and `keyvol provider` processes against the dev vault (with added latency) and the fake
//! Kubernetes API, and writes `benchmarks.json`, `benchmarks-latency.svg` and `benchmarks.md`.
//! Benchmarks are measurements, never tests: nothing here asserts on speed.
//!
//! Where to start: [`run::run`] with a [`BenchConfig`] ([`BenchConfig::full`] or
//! [`BenchConfig::smoke`]), then [`run::write_outputs`].
//!
//! - Set-up: [`workspace`] (a temporary directory that unmounts everything below it when
//!   dropped), [`workload`] (vault contents, classes, service principals), [`rig`] (the
//!   in-process dev vault and fake API, and the daemons' flags), [`daemon`] (child processes).
//! - The two callers the daemons expect: [`kubelet`] (CSI NodePublishVolume) and [`driver`]
//!   (provider Mount).
//! - Scenarios: [`latency`] (cold and warm mounts), [`burst`] (many at once), [`footprint`]
//!   (many mounted, one rotation round, with one identity or one each), [`churn`] (many
//!   identities come and go).
//! - Figures: [`requests`] (dev-vault counters), [`resident`] (`/proc/<pid>/status`),
//!   [`machine`], [`stats`] (percentiles), [`report`] (the JSON).
//! - Judgement: [`targets`] (the limits and whether the figures meet them), [`upstream`]
//!   (upstream's design as a model, for comparison).
//! - Rendering: [`table`], [`chart`] (hand-written SVG), [`markdown`].

pub mod burst;
pub mod chart;
pub mod churn;
pub mod daemon;
pub mod driver;
pub mod error;
pub mod footprint;
pub mod kubelet;
pub mod latency;
pub mod machine;
pub mod markdown;
pub mod report;
pub mod requests;
pub mod resident;
pub mod rig;
pub mod run;
pub mod stats;
pub mod table;
pub mod targets;
pub mod upstream;
pub mod workload;
pub mod workspace;

pub use error::BenchError;
pub use report::Report;
pub use run::{BenchConfig, render_text, run, smoke_check, write_outputs};
