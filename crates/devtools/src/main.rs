//! `keyvol-dev`: keyvol's developer tools, kept out of the production `keyvol` binary and image —
//! the README's `demo`, the local Key Vault / Entra ID stand-in (`dev-vault`) and the benchmark
//! harness (`bench`). Parses the command line, sets up logging and the runtime, and hands each
//! subcommand to the crate that implements it.

mod bench;
mod demo;
mod devvault;

use clap::{Parser, Subcommand};

/// Name in error lines.
const PROGRAM: &str = "keyvol-dev";

/// keyvol's developer tools: the demo, a local Key Vault and Entra ID, and the benchmarks.
#[derive(Parser)]
#[command(name = "keyvol-dev", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    log: keyvol_cli::logging::LogArgs,
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

fn main() -> std::process::ExitCode {
    let cli: Cli = match keyvol_cli::run::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    keyvol_cli::run::run(PROGRAM, cli.log, async move {
        match cli.command {
            Command::Demo(args) => demo::run(args).await,
            Command::DevVault(args) => devvault::run(args).await,
            Command::Bench(args) => bench::run(args).await,
        }
    })
}
