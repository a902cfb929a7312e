//! `keyvol-dev`: keyvol's developer tools, kept out of the production `keyvol` binary and image —
//! the README's `demo`, the local Key Vault / Entra ID stand-in (`dev-vault`) and the benchmark
//! harness (`bench`). Parses the command line, sets up logging and the runtime, and hands each
//! subcommand to the crate that implements it.

mod bench;
mod demo;
mod devvault;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use keyvol_cli::{Failure, flags, logging};

/// Name in error lines.
const PROGRAM: &str = "keyvol-dev";

/// keyvol's developer tools: the demo, a local Key Vault and Entra ID, and the benchmarks.
#[derive(Parser)]
#[command(name = "keyvol-dev", version, about, propagate_version = true)]
struct Cli {
    /// Log verbosity, klog-style: 0 info and warnings, 2–4 debug, 5 trace including other
    /// libraries.
    #[arg(short = 'v', long = "v", global = true, default_value_t = 0)]
    verbosity: u8,
    /// Log as JSON lines (keys ts, level, msg, then fields) instead of text.
    #[arg(long, global = true)]
    log_format_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a local Key Vault and Entra ID stand-in, mount the example class from it, show the result.
    Demo(demo::DemoArgs),
    /// Serve a local stand-in for Azure Key Vault, Entra ID, IMDS and NMI over HTTPS.
    DevVault(keyvol_devvault::cli::DevVaultArgs),
    /// Measure mount latency, vault requests, bursts and memory of `keyvol` against the dev vault.
    Bench(bench::BenchArgs),
}

fn parse_cli() -> Result<Cli, clap::Error> {
    let matches = flags::go_style(Cli::command()).try_get_matches()?;
    Cli::from_arg_matches(&matches)
}

fn main() -> std::process::ExitCode {
    let cli = match parse_cli() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return std::process::ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    logging::init(cli.verbosity, cli.log_format_json);
    // One crypto provider for the whole process (aws-lc-rs); a second call is harmless.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return keyvol_cli::report(
                PROGRAM,
                Failure::internal(format!("failed to start the async runtime: {e}")),
            );
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Demo(args) => demo::run(args).await,
            Command::DevVault(args) => devvault::run(args).await,
            Command::Bench(args) => bench::run(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(failure) => keyvol_cli::report(PROGRAM, failure),
    }
}
